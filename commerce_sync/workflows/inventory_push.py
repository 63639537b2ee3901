"""Inventory push: the store shows what the ERP can sell, never more, within every budget.

Workflow id `inventory:{pair}`, one long-running run per pair, so pushes of a pair never
overlap. It is fed three ways:

- signal `stock_changed` from ERP stock webhooks (Brightpearl
  `product.modified.on-hand-modified` ID sets, Acumatica `CS-StockChanges` push
  notifications), gathered for the pair's `inventory.gather_window` before one push;
- signal `push` with a `PushRequest`: SKUs, `all` (the nightly full reconciliation,
  `resync inventory`, `POST /inventory/{pair}/push`) or `incremental` (every few minutes,
  from the workflow's cursor); the Temporal Schedules signal through a tick run;
- its own retry timer for SKUs whose read or write failed.

A push cycle: refresh the store orders not yet in the ERP (their quantities are held
back) -> per batch of `inventory.batch_size`: one ERP read, sellable = available -
safety stock - held back, never below 0, one batched absolute store write -> when it
wrote a SKU, list the store's orders again and, when one arrived during the cycle, write
the SKUs it touches
again (the oversell race; README "Inventory: how the store never shows more than the ERP
can sell"). A failed read pushes nothing for its batch (those SKUs are pushed again after
`inventory.retry_after`, with one alert per failure streak); a SKU the store refuses
becomes a dead letter and the rest go on; a later push that lands the SKU resolves its
letters. While store orders are held back, the run looks
again every `retry_after` and pushes the SKUs of holds that ended (the order reached the
ERP, was cancelled, or grew old).

The run continues as new after `inventory.cycles_per_run` cycles or when Temporal
suggests it, carrying pending SKUs, the cursor, held-back orders and queued requests.
Deterministic code only: activities are called by name on their system's queue.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from commerce_sync.contracts import search_attributes as sa
    from commerce_sync.contracts.activities import ActivityRef, Config, Inventory, Ops
    from commerce_sync.contracts.inventory import (
        CycleRecord,
        ErpIdsInput,
        InventoryCarry,
        InventoryPushInput,
        InventoryState,
        InventoryStatus,
        LandedSkus,
        LinkedOrdersInput,
        LinkedSince,
        LinkedSinceInput,
        OrderListing,
        OrderListingInput,
        PushCounts,
        PushMode,
        PushPhase,
        PushProgress,
        PushRequest,
        PushSignalInput,
        RequestState,
        ReservationsInput,
        ScheduleTick,
        StockChanged,
        StockChangesInput,
        StockReadInput,
        StockRejection,
        StockRejections,
        StockWriteInput,
    )
    from commerce_sync.contracts.steps import AlertInput
    from commerce_sync.contracts.stock import (
        Availability,
        OrderReservation,
        StockWriteResult,
    )
    from commerce_sync.domain import stock_echo
    from commerce_sync.domain.pair_rules import InventoryRules, PairRules
    from commerce_sync.domain.stock_echo import StockBase
    from commerce_sync.workflows.requeue import execute_bounded
    from commerce_sync.workflows.saga import HEARTBEAT_TIMEOUT

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")

BATCHES_PER_CYCLE = 20
"""A cycle pushes at most this many batches, then verifies: long pushes verify as they go."""
VERIFY_ROUNDS = 3
"""Listings of new store orders after a cycle's writes before leaving the rest to the next."""
RECENT_REQUESTS = 20
MAX_HISTORY_EVENTS = 10_000
"""Continue as new past this (a cycle adds at most a few hundred events), whatever the
server suggests: a run's history stays quick to replay."""
LOOKUP_TIMEOUT = timedelta(seconds=60)
WRITE_TIMEOUT = timedelta(minutes=3)
# Runs recorded before this step leave inventory dead letters open when their SKU lands.
RESOLVE_LETTERS_PATCH = "resolve-inventory-dead-letters-per-sku"
# Only SKUs the cycle wrote are verified against orders placed meanwhile: a SKU the store
# already had at the right quantity was not written, so no order's decrement was
# overwritten, and a cycle that wrote nothing lists the store's orders once, not twice.
VERIFY_WRITTEN_PATCH = "verify-only-written-skus"
# Runs recorded before this checked every SKU the cycle wrote in each verification round;
# now a round checks only the SKUs the round before it wrote (the cycle's own writes, then
# each correction's). An order placed after a round's listing came after every write but
# that round's correction, so only those SKUs can have had a decrement overwritten, and a
# round whose correction found the store right (nothing written) ends the verification.
VERIFY_LAST_WRITES_PATCH = "verify-only-the-last-rounds-writes"
# Runs recorded before this pushed every SKU an ERP stock webhook named through a full
# cycle. Now a SKU whose ERP change equals minus the quantities of the orders linked since
# its last clean push (the ERP's echo of orders the store counted itself) is read in the
# ERP only: the store is right and is not asked (`_skip_echoes`).
SKIP_ECHOES_PATCH = "skip-the-store-for-echoes-of-linked-orders"
MAX_ECHO_BASES = 1000
"""SKUs whose last clean push the run remembers for `_skip_echoes` (the oldest are let
go): what the run carries over a continue-as-new stays small."""
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)


def workflow_id(pair: str) -> str:
    return f"inventory:{pair}"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _cause(error: BaseException) -> str:
    cause = error.cause if isinstance(error, ActivityError) and error.cause else error
    return str(cause)


@dataclass
class _Work:
    kind: str  # "request", "pending" or "watch"
    request: RequestState | None = None


@workflow.defn(name="InventoryPush")
class InventoryPushWorkflow:
    @workflow.init
    def __init__(self, input: InventoryPushInput) -> None:
        carry = input.carry or InventoryCarry()
        self._pair_id = input.pair
        self._pair: PairRules | None = None
        self._pending: dict[str, None] = dict.fromkeys(carry.pending)
        self._pending_ids: dict[str, None] = dict.fromkeys(carry.pending_ids)
        self._gather_from: datetime | None = carry.gather_from
        self._retry: dict[str, None] = dict.fromkeys(carry.retry)
        self._retry_ids: dict[str, None] = dict.fromkeys(carry.retry_ids)
        self._retry_at: datetime | None = carry.retry_at
        self._watch_at: datetime | None = carry.watch_at
        self._cursor = carry.cursor
        self._orders_cursor = carry.orders_cursor
        self._reservations: dict[str, OrderReservation] = {
            each.order_id: each for each in carry.reservations
        }
        self._queue: list[RequestState] = list(carry.queue)
        self._recent: list[PushProgress] = list(carry.recent)
        self._totals = carry.totals
        self._cycles = carry.cycles
        self._run = carry.run
        self._run_cycles = 0
        self._last_cycle = carry.last_cycle
        self._last_error = carry.last_error
        self._troubles: dict[str, datetime] = dict(carry.troubles)
        self._state = InventoryState.IDLE
        self._state_shown = False
        # Per cycle: when its first order listing began, and the orders it classified.
        self._cycle_listed_at: datetime | None = None
        self._cycle_known: set[str] = set()
        # SKUs with an unresolved dead letter (read once per run): writing one resolves it.
        self._resolves_letters = False
        self._lettered: set[str] = set()
        # The ERP's echo of linked orders (`_skip_echoes`): what each SKU's store figure was
        # last set from, pending SKUs that need a full cycle, store orders read as not open.
        self._skips_echoes = False
        self._echo_bases: dict[str, StockBase] = dict(carry.echo_bases)
        self._forced: dict[str, None] = dict.fromkeys(carry.forced)
        self._unheld: dict[str, datetime] = dict(carry.unheld)
        self._cycle_mark: int | None = None
        self._cycle_available: dict[str, int] = {}
        if input.request is not None:
            self.push(input.request)

    # ---- messages ------------------------------------------------------------------

    @workflow.signal(name="stock_changed")
    def stock_changed(self, change: StockChanged) -> None:
        if not self._pending and not self._pending_ids:
            self._gather_from = workflow.now()
        for sku in change.skus:
            if sku:
                self._pending[sku] = None
        for erp_id in change.erp_ids:
            if erp_id:
                self._pending_ids[erp_id] = None

    @workflow.signal(name="push")
    def push(self, request: PushRequest) -> None:
        known = {state.request.request_id for state in self._queue}
        known |= {progress.request_id for progress in self._recent}
        if request.request_id in known:
            return  # the same request delivered again (a retried activity, a resent API call)
        progress = PushProgress(
            request_id=request.request_id,
            mode=request.mode,
            requested_by=request.requested_by,
            queued_at=workflow.now(),
        )
        self._queue.append(RequestState(progress=progress, request=request))

    @workflow.query(name="status")
    def status(self) -> InventoryStatus:
        running = next(
            (s.progress for s in self._queue if s.progress.phase == PushPhase.RUNNING), None
        )
        queued = [state.progress for state in self._queue if state.progress is not running]
        return InventoryStatus(
            pair=self._pair_id,
            state=self._state,
            run=self._run,
            cursor=self._cursor,
            pending=len(self._pending) + len(self._pending_ids),
            retrying=len(self._retry) + len(self._retry_ids),
            retry_at=self._retry_at,
            reserved=self._reserved(),
            reserved_orders=sorted(self._reservations),
            current=running,
            queued=queued,
            recent=list(self._recent),
            totals=self._totals,
            cycles=self._cycles,
            last_cycle=self._last_cycle,
            last_error=self._last_error,
        )

    # ---- the run -------------------------------------------------------------------

    @workflow.run
    async def run(self, input: InventoryPushInput) -> None:
        workflow.upsert_search_attributes([sa.INTEGRATION_PAIR.value_set(input.pair)])
        self._set_state(InventoryState.IDLE)
        self._pair = await self._db(Config.pair, input.pair)
        if workflow.patched(RESOLVE_LETTERS_PATCH):
            self._resolves_letters = True
            self._lettered = set(await self._db(Inventory.lettered_skus, input.pair))
        self._skips_echoes = workflow.patched(SKIP_ECHOES_PATCH)
        while not self._should_continue_as_new():
            work = await self._next_work()
            if work is None:
                continue
            if work.kind == "request":
                assert work.request is not None
                await self._run_request(work.request)
            elif work.kind == "watch":
                await self._watch_holds()
            else:
                await self._push_pending()
            self._arm_watch()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(InventoryPushInput(pair=input.pair, carry=self._carry()))

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return (
            self._run_cycles >= self._rules.cycles_per_run
            or info.get_current_history_length() >= MAX_HISTORY_EVENTS
            or info.is_continue_as_new_suggested()
        )

    async def _next_work(self) -> _Work | None:
        """The next thing to do, waiting for it when there is none (None: look again)."""
        now = workflow.now()
        if self._retry_at is not None and now >= self._retry_at:
            self._release_retries()
        if self._queue:
            return _Work("request", self._queue[0])
        if self._pending or self._pending_ids:
            due = (self._gather_from or now) + self._rules.gather_window
            if now >= due:
                return _Work("pending")
            self._set_state(InventoryState.GATHERING)
            await self._wait(lambda: bool(self._queue), due - now)
            return None
        if self._watch_at is not None and now >= self._watch_at:
            return _Work("watch")
        self._set_state(InventoryState.IDLE)
        wake = min((t for t in (self._retry_at, self._watch_at) if t is not None), default=None)
        timeout = None if wake is None else max(wake - now, timedelta(0))
        await self._wait(
            lambda: (
                bool(self._queue or self._pending or self._pending_ids)
                or self._should_continue_as_new()
            ),
            timeout,
        )
        return None

    def _arm_watch(self) -> None:
        """While store orders are held back, look again every `retry_after` (see
        `_watch_holds`); with none held there is nothing to watch."""
        if not self._reservations:
            self._watch_at = None
        elif self._watch_at is None:
            self._watch_at = workflow.now() + self._rules.retry_after

    async def _watch_holds(self) -> None:
        """Held-back orders end by reaching the ERP (a link), by being cancelled in the
        store, or by growing old. The ERP's stock webhook may come before the link is
        recorded, so the push that followed it still held the order back: when a hold
        ends, its SKUs are pushed again. Costs one store listing and one database query
        (and a read of each held order that changed)."""
        self._watch_at = None
        before = self._reserved()
        if not await self._refresh_before():
            return
        after = self._reserved()
        # A new order's hold needs no push: the store has counted that order itself.
        released = [sku for sku in before if after.get(sku, 0) < before[sku]]
        if released and not self._pending and not self._pending_ids:
            self._gather_from = workflow.now() - self._rules.gather_window
        for sku in released:
            self._force(sku)

    @staticmethod
    async def _wait(condition: Callable[[], bool], at_most: timedelta | None) -> None:
        try:
            await workflow.wait_condition(condition, timeout=at_most)
        except TimeoutError:
            pass

    def _release_retries(self) -> None:
        """Failed SKUs come back as pending, due at once."""
        if not self._pending and not self._pending_ids:
            self._gather_from = workflow.now() - self._rules.gather_window
        for sku in self._retry:
            self._force(sku)
        for erp_id in self._retry_ids:
            self._pending_ids[erp_id] = None
        self._retry.clear()
        self._retry_ids.clear()
        self._retry_at = None

    def _force(self, sku: str) -> None:
        """Push this SKU again through a full cycle: what made it due is no echo."""
        self._pending[sku] = None
        self._forced[sku] = None

    def _to_retry(self, skus: Sequence[str] = (), erp_ids: Sequence[str] = ()) -> None:
        for sku in skus:
            self._retry[sku] = None
        for erp_id in erp_ids:
            self._retry_ids[erp_id] = None
        if self._retry_at is None:
            self._retry_at = workflow.now() + self._rules.retry_after

    # ---- requests ------------------------------------------------------------------

    async def _run_request(self, state: RequestState) -> None:
        progress = state.progress
        if not state.expanded:
            progress.phase, progress.started_at = PushPhase.RUNNING, workflow.now()
            try:
                state.remaining = await self._expand(state.request)
            except ActivityError as error:
                self._finish(
                    state, PushPhase.FAILED, f"listing the ERP's SKUs failed: {_cause(error)}"
                )
                await self._alert("inventory_listing_failed", progress.error)
                return
            state.expanded = True
            progress.total = len(state.remaining)
        size = self._rules.batch_size * BATCHES_PER_CYCLE
        chunk, state.remaining = state.remaining[:size], state.remaining[size:]
        if chunk:
            counts = await self._cycle(chunk)
            progress.counts.add(counts)
            progress.done += len(chunk)
        if not state.remaining:
            self._finish(state, PushPhase.DONE)

    async def _expand(self, request: PushRequest) -> list[str]:
        """The SKUs a request means; `all` and `incremental` also move the cursor."""
        if request.mode == PushMode.SKUS:
            return _unique(request.skus)
        since = {
            PushMode.ALL: None,
            PushMode.INCREMENTAL: self._cursor,
            PushMode.CHANGED: request.since,
        }[request.mode]
        changes = await self._system(
            Inventory.stock_changed_since,
            StockChangesInput(pair=self._pair_id, since=since),
            queue=self._erp,
            time_limit=WRITE_TIMEOUT,
        )
        if request.mode != PushMode.CHANGED and changes.cursor is not None:
            if self._cursor is None or changes.cursor > self._cursor:
                self._cursor = changes.cursor
        return _unique(changes.skus)

    def _finish(self, state: RequestState, phase: PushPhase, error: str = "") -> None:
        state.progress.phase, state.progress.error = phase, error
        state.progress.finished_at = workflow.now()
        state.remaining = []
        self._queue.remove(state)
        self._recent = [state.progress, *self._recent][:RECENT_REQUESTS]

    # ---- webhook-fed pushes --------------------------------------------------------

    async def _push_pending(self) -> None:
        if self._pending_ids:
            erp_ids = list(self._pending_ids)
            self._pending_ids.clear()
            try:
                skus = await self._system(
                    Inventory.stock_skus,
                    ErpIdsInput(pair=self._pair_id, erp_ids=erp_ids),
                    queue=self._erp,
                )
            except ActivityError as error:
                self._last_error = f"looking up ERP items failed: {_cause(error)}"
                self._to_retry(erp_ids=erp_ids)
                skus = {}
            for sku in skus.values():
                self._pending[sku] = None
        size = self._rules.batch_size * BATCHES_PER_CYCLE
        chunk = list(self._pending)[:size]
        leftover = len(self._pending) > size
        if chunk and self._skips_echoes:
            chunk = await self._skip_echoes(chunk)
        if chunk:
            await self._cycle(chunk, webhook_fed=True)
        if not self._pending and not self._pending_ids:
            self._gather_from = None
        elif not leftover:
            # What arrived during the cycle gathers afresh; a leftover is due at once.
            self._gather_from = workflow.now()

    # ---- one push cycle ------------------------------------------------------------

    async def _cycle(self, skus: list[str], *, webhook_fed: bool = False) -> PushCounts:
        """Hold back unallocated store orders, read and write in batches, then verify.

        Then (`SKIP_ECHOES_PATCH`) each SKU the cycle set exactly is remembered for
        `_skip_echoes`: every SKU of a webhook-fed cycle, and in other cycles those
        remembered before (a nightly full push does not crowd out the SKUs that sell)."""
        self._set_state(InventoryState.PUSHING)
        counts = PushCounts()
        note = ""
        remembered = {sku for sku in skus if self._echo_bases.pop(sku, None) is not None}
        for sku in skus:
            self._forced.pop(sku, None)
        self._cycle_mark, self._cycle_available = None, {}
        if not await self._refresh_before(mark=self._skips_echoes):
            counts.read_failed += len(skus)
            for sku in skus:
                self._pending.pop(sku, None)
            self._to_retry(skus)
            note = "store orders could not be listed: nothing pushed"
        else:
            base = await self._push_batches(skus, counts)
            note = await self._verify(base, counts)
            if self._skips_echoes and not note:
                self._remember_bases(None if webhook_fed else remembered)
        self._cycles += 1
        self._run_cycles += 1
        self._totals.add(counts)
        self._last_cycle = CycleRecord(
            at=workflow.now(),
            skus=len(skus),
            counts=counts,
            reserved_orders=len(self._reservations),
            note=note,
        )
        return counts

    async def _push_batches(self, skus: list[str], counts: PushCounts) -> dict[str, int]:
        """Every batch: one ERP read, one store write. Answers the ERP's sellable quantity
        (before holding back orders) of each SKU written, for the verification (before
        `VERIFY_WRITTEN_PATCH`: of each SKU the store now has, written or unchanged)."""
        rules = self._rules
        base: dict[str, int] = {}
        read_failures: list[str] = []
        written_only = workflow.patched(VERIFY_WRITTEN_PATCH)
        for batch in _chunks(skus, rules.batch_size):
            try:
                levels = await self._read_erp(batch)
            except ActivityError as error:
                # Nothing of this batch is pushed: a failed read is not a zero.
                counts.read_failed += len(batch)
                read_failures.append(_cause(error))
                self._to_retry(batch)
                continue
            found = {level.sku: level for level in levels if level.sku in batch}
            counts.read += len(found)
            counts.not_in_erp += len(batch) - len(found)
            sellable = {
                sku: max(0, found[sku].available - rules.safety_stock)
                for sku in batch
                if sku in found
            }
            if not sellable:
                continue
            reserved = self._reserved()
            quantities = {sku: max(0, qty - reserved.get(sku, 0)) for sku, qty in sellable.items()}
            result = await self._write(quantities, counts)
            if result is None:
                continue
            for sku in [*result.written, *result.unchanged]:
                self._cycle_available[sku] = found[sku].available
            for sku in result.written if written_only else [*result.written, *result.unchanged]:
                base[sku] = sellable[sku]
        if read_failures:
            self._last_error = f"ERP read failed: {read_failures[-1]}"
            await self._trouble(
                "inventory_read_failed",
                f"{counts.read_failed} SKUs of {self._pair_id} not pushed, tried again every "
                f"{rules.retry_after}: {read_failures[-1]}",
            )
        elif counts.read:
            self._troubles.pop("inventory_read_failed", None)
        return base

    async def _read_erp(self, batch: list[str]) -> list[Availability]:
        """One availability read of a batch in the ERP. A change signalled for these SKUs
        from now on is pushed again."""
        for sku in batch:
            self._pending.pop(sku, None)
        return await self._system(
            Inventory.read_stock, StockReadInput(pair=self._pair_id, skus=batch), queue=self._erp
        )

    async def _write(
        self, quantities: dict[str, int], counts: PushCounts
    ) -> StockWriteResult | None:
        try:
            result = await self._system(
                Inventory.set_stock,
                StockWriteInput(pair=self._pair_id, quantities=quantities),
                queue=self._store,
                time_limit=WRITE_TIMEOUT,
            )
        except ActivityError as error:
            counts.write_failed += len(quantities)
            self._last_error = f"store write failed: {_cause(error)}"
            self._to_retry(list(quantities))
            await self._trouble(
                "inventory_write_failed",
                f"{len(quantities)} SKUs of {self._pair_id} not written to {self._store}, "
                f"tried again every {self._rules.retry_after}: {_cause(error)}",
            )
            return None
        self._troubles.pop("inventory_write_failed", None)
        counts.written += len(result.written)
        counts.unchanged += len(result.unchanged)
        if result.rejected:
            counts.rejected += len(result.rejected)
            await self._db(
                Inventory.record_rejections,
                StockRejections(
                    pair=self._pair_id,
                    store=self._store,
                    rejections=[
                        StockRejection(sku=sku, quantity=quantities[sku], error=error)
                        for sku, error in result.rejected.items()
                    ],
                ),
            )
            if self._resolves_letters:
                self._lettered.update(result.rejected)
        await self._resolve_letters([*result.written, *result.unchanged])
        return result

    async def _resolve_letters(self, landed: list[str]) -> None:
        """The store took these SKUs: the dead letters of those that had one are resolved."""
        skus = [sku for sku in landed if sku in self._lettered]
        if not self._resolves_letters or not skus:
            return
        await self._db(Inventory.resolve_letters, LandedSkus(pair=self._pair_id, skus=skus))
        self._lettered.difference_update(skus)

    def _remember_bases(self, only: set[str] | None) -> None:
        """The SKUs this clean cycle set exactly (store = available - safety stock - held,
        nothing cut off at 0) become echo bases, marked with the cycle's links query."""
        if self._cycle_mark is None:
            return
        held = self._reserved()
        safety = self._rules.safety_stock
        for sku, available in self._cycle_available.items():
            if only is not None and sku not in only:
                continue
            if sku in self._retry or sku in self._forced:
                continue
            if available - safety - held.get(sku, 0) < 0:
                continue
            self._echo_bases[sku] = StockBase(
                available=available, safety_stock=safety, mark=self._cycle_mark
            )
        for sku in list(self._echo_bases)[: max(0, len(self._echo_bases) - MAX_ECHO_BASES)]:
            del self._echo_bases[sku]

    async def _skip_echoes(self, chunk: list[str]) -> list[str]:
        """The SKUs of `chunk` that still need a full cycle.

        A SKU whose last clean cycle set the store exactly (its echo base) and whose ERP
        change since is exactly minus the quantities of the orders linked since is the
        ERP's echo of orders the store counted itself (`domain/stock_echo.py`): it costs
        its share of one batched ERP read and one database query, and no store call.
        Anything else is pushed in full. Holds of linked orders end here; their SKUs not
        shown right are pushed in full (as `_watch_holds` would). The incremental push
        still checks every SKU the ERP changed, and the nightly one every SKU."""
        rules = self._rules
        candidates = [
            sku
            for sku in chunk
            if sku in self._echo_bases
            and sku not in self._forced
            and self._echo_bases[sku].safety_stock == rules.safety_stock
        ]
        if not candidates:
            return chunk
        since: LinkedSince = await self._db(
            Inventory.linked_since,
            LinkedSinceInput(
                pair=self._pair_id,
                mark=min(self._echo_bases[sku].mark for sku in candidates),
                skus=candidates,
            ),
        )
        # A base older than the answer is whole for is pushed in full.
        candidates = [s for s in candidates if self._echo_bases[s].mark >= since.whole_after]
        if not candidates:
            return chunk
        bases = {sku: self._echo_bases[sku] for sku in candidates}
        available: dict[str, int] = {}
        for batch in _chunks(candidates, rules.batch_size):
            try:
                levels = await self._read_erp(batch)
            except ActivityError:
                return chunk  # the full cycle reads again, and handles the failure
            available.update({level.sku: level.available for level in levels})
        still_held = self._reserved(excluding={order.order_id for order in since.orders})
        for sku in candidates:  # each gets a new base below, or a full cycle
            del self._echo_bases[sku]
        shown_right = stock_echo.shown_right(
            candidates,
            bases=bases,
            available=available,
            linked=since.orders,
            still_held=still_held,
            unheld=self._unheld,
            safety_stock=rules.safety_stock,
        )
        for sku in [sku for sku in candidates if sku in shown_right]:  # in a replayable order
            self._echo_bases[sku] = StockBase(
                available=available[sku], safety_stock=rules.safety_stock, mark=since.mark
            )
        for order in since.orders:
            ended = self._reservations.pop(order.order_id, None)
            for sku in ended.lines if ended is not None else {}:
                if not (sku in shown_right and order.link_id > bases[sku].mark):
                    self._force(sku)
        self._totals.echoes += len(shown_right)
        return [sku for sku in chunk if sku not in shown_right]

    async def _verify(self, base: dict[str, int], counts: PushCounts) -> str:
        """Orders placed while the cycle ran have left the store's count but may not be in
        what the ERP answered: write their SKUs again until a listing finds none new."""
        if not base:
            return ""
        last_writes_only = workflow.patched(VERIFY_LAST_WRITES_PATCH)
        for _ in range(VERIFY_ROUNDS):
            grown = await self._refresh_after()
            if grown is None:
                for sku in base:
                    self._force(sku)
                self._gather_from = self._gather_from or workflow.now()
                return "store orders could not be listed after writing: pushed again"
            affected = [sku for sku in base if sku in grown]
            if not affected:
                return ""
            reserved = self._reserved()
            quantities = {sku: max(0, base[sku] - reserved.get(sku, 0)) for sku in affected}
            result = await self._write(quantities, PushCounts())
            if result is not None:
                counts.corrected += len(result.written)
            if last_writes_only:
                # A failed write may still have landed: what it tried stays checked.
                checked = affected if result is None else result.written
                base = {sku: base[sku] for sku in checked}
                if not base:
                    return ""
        for sku in base:
            self._force(sku)
        self._gather_from = self._gather_from or workflow.now()
        return "store orders kept arriving: pushed again"

    # ---- store orders not yet in the ERP -------------------------------------------

    def _reserved(self, excluding: Container[str] = ()) -> dict[str, int]:
        """SKU -> quantity held back by open store orders (but those `excluding` names)."""
        held: dict[str, int] = {}
        for order_id, reservation in self._reservations.items():
            if reservation.open and order_id not in excluding:
                for sku, quantity in reservation.lines.items():
                    held[sku] = held.get(sku, 0) + quantity
        return held

    async def _list_orders(self, since: datetime) -> OrderListing | None:
        try:
            return await self._system(
                Inventory.store_orders,
                OrderListingInput(pair=self._pair_id, since=since),
                queue=self._store,
            )
        except ActivityError as error:
            self._last_error = f"listing store orders failed: {_cause(error)}"
            return None

    async def _read_orders(self, order_ids: list[str]) -> bool:
        """Read these orders' lines: open ones are held back, the others let go."""
        if not order_ids:
            return True
        try:
            found = await self._system(
                Inventory.order_reservations,
                ReservationsInput(pair=self._pair_id, order_ids=order_ids),
                queue=self._store,
            )
        except ActivityError as error:
            self._last_error = f"reading store orders failed: {_cause(error)}"
            return False
        read = set()
        for reservation in found:
            read.add(reservation.order_id)
            if reservation.open and reservation.lines:
                self._reservations[reservation.order_id] = reservation
                self._unheld.pop(reservation.order_id, None)
            else:
                self._reservations.pop(reservation.order_id, None)
                self._unheld[reservation.order_id] = reservation.placed_at
        for order_id in order_ids:
            if order_id not in read:  # gone from the store
                self._reservations.pop(order_id, None)
                self._unheld[order_id] = workflow.now()
        return True

    async def _refresh_before(self, *, mark: bool = False) -> bool:
        """Before any ERP read: which store orders hold stock the ERP has not allocated.

        An order the links table knows reached the ERP, and the ERP read that follows
        includes it; any other open order placed within `order_lookback` is held back.
        With `mark`, the links query also answers the cycle's mark (`_skip_echoes`).
        False when the store could not be asked (then nothing is pushed)."""
        rules = self._rules
        now = workflow.now()
        since = (self._orders_cursor or now - rules.order_lookback) - rules.order_overlap
        listing = await self._list_orders(since)
        if listing is None:
            return False
        self._cycle_listed_at = listing.listed_at
        oldest = listing.listed_at - rules.order_lookback
        for order_id in [i for i, r in self._reservations.items() if r.placed_at < oldest]:
            del self._reservations[order_id]
        for order_id in [i for i, placed in self._unheld.items() if placed < oldest]:
            del self._unheld[order_id]
        changed = {stamp.order_id: stamp for stamp in listing.stamps if stamp.placed_at >= oldest}
        candidates = _unique([*changed, *self._reservations])
        linked: set[str] = set()
        if mark:
            answer = await self._db(
                Inventory.linked_orders_marked,
                LinkedOrdersInput(pair=self._pair_id, order_ids=candidates),
            )
            linked, self._cycle_mark = set(answer.linked), answer.mark
        elif candidates:
            linked = set(
                await self._db(
                    Inventory.linked_orders,
                    LinkedOrdersInput(pair=self._pair_id, order_ids=candidates),
                )
            )
        for order_id in linked:
            self._reservations.pop(order_id, None)
        to_read = [order_id for order_id in changed if order_id not in linked]
        if not await self._read_orders(to_read):
            return False
        self._orders_cursor = listing.listed_at
        self._cycle_known = set(changed) | set(self._reservations)
        return True

    async def _refresh_after(self) -> set[str] | None:
        """After the writes: SKUs of orders placed since the cycle began (held back whether
        or not they reached the ERP since: the read may predate them). None on failure."""
        assert self._cycle_listed_at is not None
        start = self._cycle_listed_at - self._rules.order_overlap
        listing = await self._list_orders(start)
        if listing is None:
            return None
        before = self._reserved()
        new = [
            stamp.order_id
            for stamp in listing.stamps
            if stamp.placed_at >= start and stamp.order_id not in self._cycle_known
        ]
        changed_held = [s.order_id for s in listing.stamps if s.order_id in self._reservations]
        if not await self._read_orders(_unique([*new, *changed_held])):
            return None
        self._cycle_known.update(new)
        after = self._reserved()
        return {sku for sku, quantity in after.items() if quantity > before.get(sku, 0)}

    # ---- helpers -------------------------------------------------------------------

    @property
    def _rules(self) -> InventoryRules:
        assert self._pair is not None
        return self._pair.inventory

    @property
    def _store(self) -> str:
        assert self._pair is not None
        return self._pair.store

    @property
    def _erp(self) -> str:
        assert self._pair is not None
        return self._pair.erp

    async def _system(
        self,
        ref: ActivityRef[InputT, OutputT],
        arg: InputT,
        *,
        queue: str,
        time_limit: timedelta = LOOKUP_TIMEOUT,
    ) -> OutputT:
        """An outside system's activity, tried `inventory.attempts` times (budget
        hand-backs not counted, `requeue.py`)."""
        result: OutputT = await execute_bounded(
            ref.name,
            arg,
            result_type=ref.result_type,
            task_queue=queue,
            start_to_close_timeout=time_limit,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=self._rules.attempts,
            ),
        )
        return result

    async def _db(self, ref: ActivityRef[InputT, OutputT], arg: InputT) -> OutputT:
        """A database activity on the workflow's own queue, retried until it works."""
        result: OutputT = await workflow.execute_activity(
            ref.name,
            arg,
            result_type=ref.result_type,
            start_to_close_timeout=LOOKUP_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        return result

    async def _trouble(self, kind: str, message: str) -> None:
        """Alert when a kind of failure starts; its retries stay quiet until it clears."""
        if kind in self._troubles:
            return
        self._troubles[kind] = workflow.now()
        await self._alert(kind, message)

    async def _alert(self, kind: str, message: str) -> None:
        await self._db(
            Ops.alert,
            AlertInput(kind=kind, key=workflow.info().workflow_id, message=message),
        )

    def _set_state(self, state: InventoryState) -> None:
        """Keep `SyncState` searchable; upserted only when it changes (each is an event)."""
        if state != self._state or not self._state_shown:
            self._state, self._state_shown = state, True
            workflow.upsert_search_attributes([sa.SYNC_STATE.value_set(state.value)])

    def _carry(self) -> InventoryCarry:
        return InventoryCarry(
            pending=list(self._pending),
            pending_ids=list(self._pending_ids),
            gather_from=self._gather_from,
            retry=list(self._retry),
            retry_ids=list(self._retry_ids),
            retry_at=self._retry_at,
            watch_at=self._watch_at,
            cursor=self._cursor,
            orders_cursor=self._orders_cursor,
            reservations=list(self._reservations.values()),
            queue=self._queue,
            recent=self._recent,
            totals=self._totals,
            cycles=self._cycles,
            run=self._run + 1,
            last_cycle=self._last_cycle,
            last_error=self._last_error,
            troubles=self._troubles,
            echo_bases=self._echo_bases,
            forced=list(self._forced),
            unheld=self._unheld,
        )


@workflow.defn(name="InventoryScheduleTick")
class InventoryScheduleTickWorkflow:
    """What a Temporal Schedule starts: ask `inventory:{pair}` for a push (signal-with-start,
    from an activity), so the long-running push stays the only writer of the pair's stock."""

    @workflow.run
    async def run(self, tick: ScheduleTick) -> str:
        request = PushRequest(
            request_id=workflow.info().workflow_id, mode=tick.mode, requested_by="schedule"
        )
        await workflow.execute_activity(
            Inventory.request_push.name,
            PushSignalInput(pair=tick.pair, request=request),
            start_to_close_timeout=LOOKUP_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        return request.request_id
