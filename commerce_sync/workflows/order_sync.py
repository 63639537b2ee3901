"""Order sync: every store order reaches the ERP exactly once, and the store hears back.

Workflow id `order:{pair}:{store_order_id}`. Steps (compensation in brackets):
read the order from the store -> cleanse its addresses, phones and e-mail -> validate
(dead letter when invalid) -> risk rules and anomaly flags -> approval when they say so
(update `approve`; escalation alert; rejection at the final timeout) -> ensure the ERP
customer [delete it if this run created it] -> create the ERP sales order, idempotent on
the store order number [cancel it] -> record the payment [reverse it] -> ERP number and
status back to the store [restore the status] -> wait for the shipment (signal
`shipment`, and a slow poll in case a webhook is lost) -> tracking and shipped status to
the store.

A permanent failure runs the compensations in reverse, records a dead letter, alerts
and fails the run (so a fixed replay may reuse the id). A replay may carry an
operator's corrections (`OrderSyncInput.corrections`), applied right after the order is
read; once the order is in the ERP, the open dead letters of the id are resolved. A store cancellation before
shipment (signal `cancel`) runs the same compensations and ends the run cancelled.
Deterministic code only: activities are called by name on their system's queue.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from commerce_sync.contracts import search_attributes as sa
    from commerce_sync.contracts.activities import (
        ActivityRef,
        Checks,
        Codec,
        Config,
        Database,
        Erp,
        Store,
    )
    from commerce_sync.contracts.documents import ErpOrderHandle
    from commerce_sync.contracts.orders import (
        ApprovalDecision,
        CancelRequest,
        OrderAssessment,
        OrderAssessmentInput,
        OrderCleansing,
        OrderSyncInput,
        OrderSyncStatus,
        ShipmentNotice,
        StepRecord,
        SyncState,
    )
    from commerce_sync.contracts.steps import (
        CustomerCreate,
        CustomerCreated,
        CustomerLookup,
        CustomerRef,
        ErpOrderCreate,
        ErpOrderLookup,
        ErpOrderRefInput,
        LinkInput,
        OrderBookkeeping,
        OrderErpCheck,
        OrderSeen,
        OrderTwinCheck,
        PaymentRecord,
        PaymentReversal,
        ResolveDeadLetters,
        SkuCheck,
        StoreOrderRef,
        StoreStatusUpdate,
        TrackingUpdate,
    )
    from commerce_sync.domain.anomalies import AnomalyFlag, needs_approval
    from commerce_sync.domain.cleansing import CleansedOrder
    from commerce_sync.domain.models import Order, OrderStatus, Shipment
    from commerce_sync.domain.pair_rules import PairRules
    from commerce_sync.domain.rules import (
        RiskInputs,
        RiskRuleSet,
        risk_reasons,
        unknown_sku_problems,
        validate_order,
    )
    from commerce_sync.workflows.saga import (
        Compensation,
        InputT,
        OutputT,
        PairSaga,
        permanent_failure,
    )


SHIPMENT_POLL_EVERY = timedelta(hours=6)
# Runs recorded before this wait for the shipment without looking for duplicate orders.
TWIN_CHECK_PATCH = "cancel-duplicate-erp-orders"
# Runs recorded before this check replay without it (workflow.patched).
SKIP_CANCELLED_PATCH = "skip-orders-cancelled-in-the-store"
# Runs recorded before this step resolve their dead letters only once shipped.
RESOLVE_WHEN_SYNCED_PATCH = "resolve-dead-letters-once-in-the-erp"
# Runs recorded before the payload codec upsert the plain email as `CustomerEmail`.
EMAIL_SEARCH_VALUE_PATCH = "customer-email-search-value"
# Runs recorded before this failed bare when the store refused the first read (an order
# that does not exist); now they leave a dead letter and an alert like any failure.
UNREADABLE_ORDER_PATCH = "dead-letter-an-unreadable-order"
# Runs recorded before this send the order to the ERP as read and weigh it only by the
# fixed risk rules; now it is cleansed first and its anomaly flags may ask for approval.
CLEANSE_AND_FLAG_PATCH = "cleanse-and-flag-orders"
# Runs recorded before this looked the customer up again right before ensuring it; now the
# risk checks' lookup is used when no wait for approval came between.
REUSE_CUSTOMER_LOOKUP_PATCH = "reuse-the-risk-checks-customer-lookup"
# Runs recorded before this checked the SKUs and then, after the validation, looked the
# customer up; now both ERP reads run side by side.
PARALLEL_ERP_READS_PATCH = "parallel-erp-reads"
# Runs recorded before this let the store's status and tracking writes read the order
# first; now they merge into the notes field the run read (or last wrote) while the store
# announced no change of the order since, and read nothing.
WRITES_FROM_READ_PATCH = "store-writes-from-the-runs-read"
# Runs recorded before this ran every bookkeeping step as an activity of its own; now
# the e-mail's search value comes with the cleansing (`Checks.prepare_order`), the ERP's
# SKU check and customer lookup are one step (`Erp.check_order`), and the ERP order create
# records the links and resolves the dead letters (`ErpOrderCreate.bookkeeping`), and the
# assessment runs beside the ERP check, weighed both ways (`OrderAssessment.if_new_customer`).
# A run with it takes every earlier patch's new branch without asking (its history holds
# only this marker).
BOOKKEEPING_PATCH = "fold-order-bookkeeping"
# Runs recorded before this looked for twins of their creates at `duplicate_check_after`
# and at every wake before shipping; now a run whose creates went through on a first
# attempt of its first run (`CustomerCreated.twin_possible`, `ErpOrderCreated.twin_possible`
# both False: each create sent once and answered) looks for none, and waits for the
# shipment as runs did before the twin check. Asked only by such a run.
NO_TWIN_CHECK_AFTER_CLEAN_CREATES_PATCH = "no-twin-check-after-clean-creates"
# Runs recorded before this ran the cleansing, the assessment and the last resolution of
# dead letters as activities on the task queue; now they run as local activities (in the
# workflow task, recorded as markers): a shipped order's run has three fewer activity
# tasks and three fewer workflow tasks (13 -> 10, `tests/histories/*-shipped-v12.json`).
# Taken only when the starter had it (`_started_with`), never asked: a patch marker asked
# beside local-activity markers failed replay under load when local activities were first
# tried (issue #15's notes).
LOCAL_BOOKKEEPING_PATCH = "bookkeeping-as-local-activities"
# Each patch's level: a run whose starter had it (`OrderSyncInput.patch_level`, recorded
# with the start) takes its new branch without asking, so it records no marker and sdk-core
# adds no `TemporalChangeVersion` upsert (a visibility write each). A new patch gets the
# next level, and `ORDER_RUN_PATCH_LEVEL` becomes that level in the same change.
PATCH_LEVELS = {
    BOOKKEEPING_PATCH: 1,
    NO_TWIN_CHECK_AFTER_CLEAN_CREATES_PATCH: 2,
    LOCAL_BOOKKEEPING_PATCH: 3,
}


class OrderCancelled(Exception):
    """The store cancelled the order; unwind what this run did."""


@workflow.defn(name="OrderSync")
class OrderSyncWorkflow(PairSaga):
    @workflow.init
    def __init__(self, input: OrderSyncInput) -> None:
        self._input = input
        self._status = OrderSyncStatus(
            pair=input.pair, store_order_id=input.store_order_id, state=SyncState.STARTED
        )
        self._pair: PairRules | None = None
        self._decision: ApprovalDecision | None = None
        self._cancel: CancelRequest | None = None
        self._shipment_hint = False
        self._compensations: list[Compensation] = []
        self._created_customer_id = ""  # the customer this run created: its twin is checked
        # Whether a twin of the customer or of the ERP order this run created may appear
        # (a create sent again after a lost answer, or by an earlier run).
        self._customer_twin_possible = False
        self._order_twin_possible = True
        # What the risk checks' lookup found (the ERP customer id, or None), while it is
        # still fresh: not after a wait for approval.
        self._looked_up: tuple[str | None] | None = None
        # No earlier run of this store order reached the ERP (the assessment says).
        self._first_run = False
        # The customer lookup made beside the SKU check (PARALLEL_ERP_READS_PATCH).
        self._early_lookup: tuple[str | None] | None = None
        # `order.updated` announcements from the store so far, and the store's notes
        # field (`Order.store_notes`) as the run last read or wrote it, with how many
        # announcements had come when that read or write was sent (WRITES_FROM_READ_PATCH).
        self._store_changes = 0
        self._store_notes: tuple[str | None, int] = (None, 0)
        # The run has BOOKKEEPING_PATCH (taken by its patch level or asked, at its start).
        self._folded = False
        # The assessment made beside the ERP check (folded runs), weighed both ways.
        self._assessment: OrderAssessment | None = None
        # The run's bookkeeping steps are local activities (LOCAL_BOOKKEEPING_PATCH).
        self._local = False

    # ---- messages ------------------------------------------------------------------

    @workflow.query(name="status")
    def status(self) -> OrderSyncStatus:
        return self._status

    @workflow.update(name="approve")
    async def approve(self, decision: ApprovalDecision) -> OrderSyncStatus:
        self._decision = decision
        self._status.decision = decision
        await workflow.wait_condition(lambda: self._status.state != SyncState.AWAITING_APPROVAL)
        return self._status

    @approve.validator
    def _validate_approve(self, decision: ApprovalDecision) -> None:
        if not decision.by.strip():
            raise ValueError("'by' is required: who approves or rejects")
        if self._status.state != SyncState.AWAITING_APPROVAL or self._decision is not None:
            raise ValueError(f"nothing waits for approval (state: {self._status.state.value})")

    @workflow.signal(name="cancel")
    def cancel(self, request: CancelRequest | None = None) -> None:
        if self._cancel is None:
            self._cancel = request or CancelRequest()

    @workflow.signal(name="shipment")
    def shipment(self, notice: ShipmentNotice | None = None) -> None:
        self._shipment_hint = True

    @workflow.signal(name="store_order_changed")
    def store_order_changed(self) -> None:
        """The store says the order changed: the run's copy of its notes field is no
        longer trusted, so the next status or tracking write reads the order first."""
        self._store_changes += 1

    # ---- the run -------------------------------------------------------------------

    @workflow.run
    async def run(self, input: OrderSyncInput) -> OrderSyncStatus:
        self._folded = self._has(BOOKKEEPING_PATCH)
        self._local = self._started_with(LOCAL_BOOKKEEPING_PATCH)
        if input.searchable_at_start:  # recorded with the start: either way replays
            self._status.state = SyncState.VALIDATING  # as the starter set it
        else:
            workflow.upsert_search_attributes(
                [
                    sa.INTEGRATION_PAIR.value_set(input.pair),
                    sa.STORE_ORDER_ID.value_set(input.store_order_id),
                ]
            )
            self._set_state(SyncState.VALIDATING)
        # Started with the pair's rules (webhooks, resync), or reading them first (runs
        # started before starters passed them, dead-letter replays): the input, recorded
        # with the start, decides, so either replays.
        if input.rules is not None:
            self._pair = input.rules
        else:
            self._pair = await self._act(Config.pair, input.pair, queue=None)
        if self._cancel is not None:  # signal-with-start from a cancellation: nothing to undo
            return self._end(SyncState.CANCELLED, self._cancel.reason)
        try:
            order = await self._read_order()
        except ActivityError as error:
            failure = permanent_failure(error)
            if failure is None or not self._patched(UNREADABLE_ORDER_PATCH):
                raise
            return await self._end_unreadable(failure)
        if order.status == OrderStatus.CANCELLED and self._patched(SKIP_CANCELLED_PATCH):
            # A late order.created, or a resync, for an order the shopper already cancelled.
            return self._end(SyncState.CANCELLED, "cancelled in the store before it was synced")
        checked = await self._valid(order)
        if checked is None:
            return await self._end_failed(
                "invalid_order", self._status.error, order, dead_letter=True, compensate=False
            )
        order = checked  # cleansed: what the ERP receives
        if self._cancel is not None:
            return self._end(SyncState.CANCELLED, "cancelled before sync")
        if not await self._approved(order):
            return self._status

        try:
            await self._sync(order)
            if not self._folded and workflow.patched(RESOLVE_WHEN_SYNCED_PATCH):
                # The order is in the ERP: what the earlier failed runs left is fixed.
                # (Folded runs: the ERP order create resolved them.)
                await self._resolve_dead_letters("order synced to the ERP")
            await self._await_shipment(order)
        except OrderCancelled:
            await self._compensate(restore_store_status=False)
            return self._end(SyncState.CANCELLED, self._cancel.reason if self._cancel else "")
        except ActivityError as error:
            failure = permanent_failure(error)
            if failure is None:
                raise
            return await self._end_failed(failure.type or "failed", str(failure), order)
        await self._resolve_dead_letters("order shipped")
        return self._end(SyncState.SHIPPED, "shipped")

    async def _resolve_dead_letters(self, note: str) -> None:
        await self._bookkeeping(
            Database.resolve_dead_letters,
            ResolveDeadLetters(business_key=workflow.info().workflow_id, note=note),
        )

    async def _read_order(self) -> Order:
        changes = self._store_changes
        order = await self._act(
            Store.get_order,
            StoreOrderRef(pair=self._input.pair, order_id=self._input.store_order_id),
            queue=self._store,
        )
        self._step("read order", f"{len(order.lines)} lines, {order.total} {order.currency}")
        self._store_notes = (order.store_notes, changes)
        corrections = self._input.corrections
        if corrections is not None:  # an operator's fixes from a dead-letter replay
            order = corrections.apply(order)
            self._step("apply corrections", corrections.describe())
        self._status.store_order_number = order.number
        self._status.customer_email = order.customer.email
        if self._folded:
            pass  # the search value comes with the cleansing (`_cleanse`)
        elif workflow.patched(EMAIL_SEARCH_VALUE_PATCH):
            # Search attributes are not encrypted: with codec keys this is a keyed hash.
            value = await self._act(
                Codec.email_search_value,
                order.customer.email,
                queue=None,
            )
            if value:
                workflow.upsert_search_attributes([sa.CUSTOMER_EMAIL.value_set(value)])
        else:
            workflow.upsert_search_attributes([sa.CUSTOMER_EMAIL.value_set(order.customer.email)])
        return order

    async def _valid(self, order: Order) -> Order | None:
        """The order cleansed and checked, or None (the problems in the status) when no
        retry can fix it."""
        pair = self._pair_config
        problems: list[str] = []
        cleansed = await self._cleanse(order)
        if cleansed is not None:
            order = cleansed.order
            self._status.cleansed = cleansed.changes
            changed = sorted({change.field for change in cleansed.changes})
            self._step("cleanse", ", ".join(changed) if changed else "nothing to change")
            problems += [str(problem) for problem in cleansed.problems]
        named = {problem.split(":", 1)[0] for problem in problems}
        problems += [
            str(problem)
            for problem in validate_order(order, pair.currencies)
            if problem.field not in named  # cleansing said it more precisely
        ]
        skus = sorted({line.sku for line in order.lines if line.sku})
        if self._folded:
            # The risk checks use the customer (looked up even when the order turns out
            # invalid: no ERP call more, the two reads are one step). Beside it, unless
            # the order is already refused, the assessment weighs the order both ways
            # (new customer or not): one step less to wait for. An order the ERP then
            # refuses only for its SKUs is recorded in the order history all the same.
            check = self._act(
                Erp.check_order,
                OrderErpCheck(pair=pair.id, skus=skus, email=order.customer.email),
                queue=self._erp,
            )
            if problems:
                facts = await check
            else:
                facts, self._assessment = await asyncio.gather(check, self._assess(order, None))
            unknown = facts.unknown_skus
            self._early_lookup = (facts.customer_id,)
        elif workflow.patched(PARALLEL_ERP_READS_PATCH):
            # Independent reads of the ERP, side by side: the risk checks use the customer
            # (looked up even when the order turns out invalid: one ERP read more for it).
            unknown, found = await asyncio.gather(
                self._unknown_skus(skus),
                self._act(
                    Erp.find_customer,
                    CustomerLookup(pair=pair.id, email=order.customer.email),
                    queue=self._erp,
                ),
            )
            self._early_lookup = (found,)
        else:
            unknown = await self._unknown_skus(skus)
        problems += [str(problem) for problem in unknown_sku_problems(order, unknown)]
        if problems:
            self._status.error = "; ".join(problems)
            self._step("validate", self._status.error, outcome="failed")
            return None
        self._step("validate")
        return order

    async def _cleanse(self, order: Order) -> CleansedOrder | None:
        """The order cleansed by the pair's rules (None in runs recorded before cleansing);
        in folded runs the same step gives the `CustomerEmail` search value."""
        request = OrderCleansing(pair=self._pair_config.id, order=order)
        if self._folded:
            prepared = await self._bookkeeping(Checks.prepare_order, request)
            if prepared.email_search_value:
                # Search attributes are not encrypted: with codec keys this is a keyed hash.
                workflow.upsert_search_attributes(
                    [sa.CUSTOMER_EMAIL.value_set(prepared.email_search_value)]
                )
            return prepared.cleansed
        if workflow.patched(CLEANSE_AND_FLAG_PATCH):
            return await self._act(Checks.cleanse_order, request, queue=None)
        return None

    async def _assess(self, order: Order, is_new_customer: bool | None) -> OrderAssessment:
        return await self._bookkeeping(
            Database.assess_order,
            OrderAssessmentInput(
                pair=self._pair_config.id,
                store_order_id=self._input.store_order_id,
                order=order,
                is_new_customer=is_new_customer,
            ),
        )

    async def _unknown_skus(self, skus: list[str]) -> list[str]:
        return await self._act(
            Erp.unknown_skus, SkuCheck(pair=self._pair_config.id, skus=skus), queue=self._erp
        )

    async def _approved(self, order: Order) -> bool:
        """Risk checks, then a person's decision when a rule asks for one."""
        pair = self._pair_config
        if self._early_lookup is not None:
            existing = self._early_lookup[0]
        else:
            existing = await self._act(
                Erp.find_customer,
                CustomerLookup(pair=pair.id, email=order.customer.email),
                queue=self._erp,
            )
        flagged: list[str] = []
        if self._assessment is not None or self._patched(CLEANSE_AND_FLAG_PATCH):
            assessment = self._assessment
            if assessment is None:
                assessment = await self._assess(order, existing is None)
            flags, score = assessment.flags, assessment.score
            if existing is None and assessment.if_new_customer is not None:
                flags, score = assessment.if_new_customer.flags, assessment.if_new_customer.score
            recent = assessment.orders_from_email_last_hour
            self._first_run = assessment.first_run
            flagged = self._weigh_flags(flags, score)
            self._step(
                "anomaly checks",
                f"score {score:.2f} (waits from {pair.anomalies.approve_at:.2f}) "
                f"against {assessment.history_orders} earlier orders"
                + "".join(f"; {flag.reason}" for flag in flags),
                outcome="approval required" if flagged else "ok",
            )
        else:
            recent = await self._act(
                Database.note_order,
                OrderSeen(
                    pair=pair.id,
                    store_order_id=self._input.store_order_id,
                    email=order.customer.email,
                    placed_at=order.placed_at,
                ),
                queue=None,
            )
        rules = RiskRuleSet(
            total_over=pair.risk.total_over,
            countries_differ=pair.risk.countries_differ,
            new_customer_first_order_over=pair.risk.new_customer_first_order_over,
            max_orders_per_email_per_hour=pair.risk.max_orders_per_email_per_hour,
        )
        reasons = risk_reasons(
            order,
            rules,
            RiskInputs(is_new_customer=existing is None, orders_from_email_last_hour=recent),
        )
        reasons += flagged
        if not reasons:
            self._step("risk checks", "no rule asks for approval")
            self._looked_up = (existing,)
            return True
        self._step("risk checks", "; ".join(reasons), outcome="approval required")
        self._set_state(SyncState.AWAITING_APPROVAL)
        await self._wait_for_decision(
            self._status,
            reasons,
            f"order {order.number}",
            lambda: self._decision is not None or self._cancel is not None,
        )
        if self._cancel is not None:
            self._status.approval = None
            self._end(SyncState.CANCELLED, self._cancel.reason)
            return False
        decision = self._decision
        assert decision is not None
        self._status.approval = None
        # A merchant may have edited the order while it waited: nothing read is reused.
        self._store_notes = (None, self._store_changes)
        if decision.approved:
            self._step("approval", f"approved by {decision.by}")
            self._set_state(SyncState.SYNCING)
            return True
        self._step("approval", f"rejected by {decision.by}: {decision.reason}", outcome="rejected")
        await self._act(
            Store.set_order_status,
            StoreStatusUpdate(
                pair=pair.id,
                order_id=self._input.store_order_id,
                status=OrderStatus.REJECTED,
                note=f"Rejected by {decision.by}: {decision.reason}",
            ),
            queue=self._store,
        )
        self._end(SyncState.REJECTED, decision.reason)
        return False

    def _weigh_flags(self, flags: list[AnomalyFlag], score: float) -> list[str]:
        """Show the flags (status, `OrderFlags` search attribute) and return them as
        approval reasons when their score reaches the pair's `approve_at`."""
        self._status.flags = flags
        self._status.anomaly_score = score
        if flags:
            workflow.upsert_search_attributes(
                [sa.ORDER_FLAGS.value_set(sorted({flag.check for flag in flags}))]
            )
        if not needs_approval(flags, self._pair_config.anomalies):
            return []
        return [f"{flag.reason} (anomaly score {flag.score:.2f})" for flag in flags]

    async def _sync(self, order: Order) -> None:
        """Customer, sales order, payment, store status: each undone on a later failure."""
        pair = self._pair_config
        self._set_state(SyncState.SYNCING)
        self._check_cancel()

        customer_id = await self._find_customer(order)
        if customer_id is None:
            made = await self._act(
                Erp.create_customer,
                CustomerCreate(pair=pair.id, customer=order.customer),
                queue=self._erp,
            )
            if isinstance(made, str):  # a result recorded before `CustomerCreated`
                made = CustomerCreated(customer_id=made)
            customer_id = made.customer_id
            self._customer_twin_possible = made.twin_possible or not self._first_run
            created_id = self._created_customer_id = customer_id
            self._register(
                "delete the customer this run created",
                lambda: self._act(
                    Erp.delete_customer,
                    CustomerRef(pair=pair.id, customer_id=created_id),
                    queue=self._erp,
                    compensation=True,
                ),
            )
            self._step("ensure customer", f"created {customer_id}")
        else:
            self._step("ensure customer", f"found {customer_id}")
        self._status.erp_customer_id = customer_id
        if not self._folded:  # folded: the ERP order create records the links
            await self._link("customer", order.customer.email.lower(), customer_id)
        self._check_cancel()

        # Registered before the step: a create whose answer was lost is still undone.
        self._register("cancel the ERP sales order", lambda: self._cancel_erp_order(order))
        created = await self._act(
            Erp.create_order,
            ErpOrderCreate(
                pair=pair.id,
                order=order,
                customer_id=customer_id,
                first_run=self._first_run,
                bookkeeping=OrderBookkeeping(
                    store_order_id=self._input.store_order_id,
                    customer_email=order.customer.email,
                    business_key=workflow.info().workflow_id,
                )
                if self._folded
                else None,
            ),
            queue=self._erp,
        )
        handle = created.handle
        self._order_twin_possible = created.twin_possible
        self._status.erp_order_id, self._status.erp_order_number = handle.id, handle.number
        workflow.upsert_search_attributes([sa.ERP_ORDER_ID.value_set(handle.number)])
        self._step(
            "create ERP order", f"{'created' if created.created else 'found'} {handle.number}"
        )
        if not self._folded:
            await self._link("order", self._input.store_order_id, handle.id)
        self._check_cancel()

        if order.payment is not None and order.payment.amount > 0:
            payment_id = await self._act(
                Erp.record_payment,
                PaymentRecord(
                    pair=pair.id,
                    handle=handle,
                    payment=order.payment,
                    customer_id=customer_id,
                    new_order=created.created,
                ),
                queue=self._erp,
            )
            self._register(
                "reverse the payment",
                lambda: self._act(
                    Erp.reverse_payment,
                    PaymentReversal(pair=pair.id, handle=handle, payment_id=payment_id),
                    queue=self._erp,
                    compensation=True,
                ),
            )
            self._step("record payment", f"{order.payment.amount} {order.payment.currency}")
        self._check_cancel()

        original_status = order.status
        self._register(
            "restore the store status",
            lambda: self._act(
                Store.set_order_status,
                StoreStatusUpdate(
                    pair=pair.id,
                    order_id=self._input.store_order_id,
                    status=original_status,
                    note="commerce-sync undid its changes",
                ),
                queue=self._store,
                compensation=True,
            ),
        )
        writes_from_read = self._patched(WRITES_FROM_READ_PATCH)
        changes = self._store_changes
        written = await self._act(
            Store.set_order_status,
            StoreStatusUpdate(
                pair=pair.id,
                order_id=self._input.store_order_id,
                status=OrderStatus.PROCESSING,
                erp_ref=handle.number,
                note=f"In {pair.erp} as {handle.number}",
                store_notes=self._notes_held() if writes_from_read else None,
            ),
            queue=self._store,
        )
        if writes_from_read and written is not None:
            self._store_notes = (written, changes)
        self._step("confirm to store", f"processing, ERP {handle.number}")

    def _notes_held(self) -> str | None:
        """The store's notes field as the run last read or wrote it, or None (the write
        reads the order first) when the store announced a change of the order since.

        What this trades: a write merges into the run's copy, so a change of that field
        that reached the store after the copy and whose `order.updated` has not reached
        the run yet is overwritten; a read first would narrow that to the time between
        two requests (neither store has a conditional write). The store modules deliver
        `order.updated` from an outbox with retries (docs/systems/*.md, webhooks), and a
        wait for approval drops the copy, so what is left is a change made within the
        delivery delay of its event."""
        notes, seen = self._store_notes
        return notes if seen == self._store_changes else None

    async def _find_customer(self, order: Order) -> str | None:
        """The ERP customer with the order's e-mail: what the risk checks found just
        before, or (after a wait for approval, or in runs recorded before the patch) a
        fresh lookup."""
        if self._looked_up is not None and self._patched(REUSE_CUSTOMER_LOOKUP_PATCH):
            return self._looked_up[0]
        return await self._act(
            Erp.find_customer,
            CustomerLookup(pair=self._pair_config.id, email=order.customer.email),
            queue=self._erp,
        )

    async def _cancel_erp_order(self, order: Order) -> None:
        pair = self._pair_config
        handle: ErpOrderHandle | None = None
        if self._status.erp_order_id:
            handle = ErpOrderHandle(
                id=self._status.erp_order_id, number=self._status.erp_order_number
            )
        else:
            handle = await self._act(
                Erp.find_order,
                ErpOrderLookup(pair=pair.id, store_order_number=order.number),
                queue=self._erp,
                compensation=True,
            )
        if handle is not None:
            await self._act(
                Erp.cancel_order,
                ErpOrderRefInput(pair=pair.id, handle=handle),
                queue=self._erp,
                compensation=True,
            )

    async def _await_shipment(self, order: Order) -> None:
        pair = self._pair_config
        handle = ErpOrderHandle(id=self._status.erp_order_id, number=self._status.erp_order_number)
        self._set_state(SyncState.AWAITING_SHIPMENT)
        shipped: list[Shipment] = []
        checks_twins = self._patched(TWIN_CHECK_PATCH)
        if (
            checks_twins
            and not (self._order_twin_possible or self._customer_twin_possible)
            and self._has(NO_TWIN_CHECK_AFTER_CLEAN_CREATES_PATCH)
        ):
            checks_twins = False  # each create was sent once and answered: no twin exists
        # A create whose answer was lost has landed `duplicate_check_after` later (requests
        # do not run longer), so the first look for a twin is then, or sooner on a wake.
        wait = pair.duplicate_check_after if checks_twins else SHIPMENT_POLL_EVERY
        while not shipped:
            try:
                await workflow.wait_condition(
                    lambda: self._shipment_hint or self._cancel is not None, timeout=wait
                )
            except TimeoutError:
                pass  # a lost webhook must not leave the order waiting forever: look anyway
            wait = SHIPMENT_POLL_EVERY
            self._check_cancel()
            self._shipment_hint = False
            if checks_twins:
                await self._remove_twins(handle, order)
            shipments = await self._act(
                Erp.get_shipments,
                ErpOrderRefInput(pair=pair.id, handle=handle),
                queue=self._erp,
            )
            shipped = [shipment for shipment in shipments if shipment.tracking_numbers]
        tracking = [number for shipment in shipped for number in shipment.tracking_numbers]
        carrier = next((shipment.carrier for shipment in shipped if shipment.carrier), "")
        self._status.tracking_numbers = tracking
        self._compensations.clear()  # shipped goods are not unwound by this workflow
        writes_from_read = self._patched(WRITES_FROM_READ_PATCH)
        await self._act(
            Store.set_tracking,
            TrackingUpdate(
                pair=pair.id,
                order_id=self._input.store_order_id,
                tracking_numbers=tracking,
                carrier=carrier,
                store_notes=self._notes_held() if writes_from_read else None,
            ),
            queue=self._store,
        )
        self._step("tracking to store", ", ".join(tracking))

    async def _remove_twins(self, handle: ErpOrderHandle, order: Order) -> None:
        """A create whose answer was lost can land after its retry made the record again:
        the ERP then holds a second open order that would ship twice (or a second
        customer). Soon after the creates, and whenever the run wakes before shipping, any
        such twin of what this run made is removed."""
        check = OrderTwinCheck(
            pair=self._input.pair,
            store_order_number=order.number,
            keep=handle,
            customer_id=self._created_customer_id,
            customer=order.customer if self._created_customer_id else None,
        )
        twins = await self._act(Erp.remove_order_twins, check, queue=self._erp)
        if twins:
            self._step("remove duplicate ERP records", ", ".join(twins))
            await self._alert(
                "duplicate_erp_order",
                f"order {order.number}: removed duplicates made by lost answers: "
                f"{', '.join(twins)} (kept order {handle.number})",
            )

    # ---- failure and compensation --------------------------------------------------

    async def _compensate(self, *, restore_store_status: bool = True) -> None:
        """Undo in reverse; a compensation that fails for good is alerted, the rest still run."""
        if not self._compensations:
            return
        self._set_state(SyncState.COMPENSATING)
        await self._unwind(
            f"order {self._input.store_order_id}",
            self._compensated,
            skip=() if restore_store_status else ("restore the store status",),
        )

    def _compensated(self, name: str, outcome: str, detail: str) -> None:
        self._status.compensations.append(self._record(name, outcome, detail))

    async def _end_failed(
        self,
        reason: str,
        error: str,
        order: Order,
        *,
        dead_letter: bool = True,
        compensate: bool = True,
    ) -> OrderSyncStatus:
        self._status.error = error
        if compensate:
            await self._compensate()
        state = SyncState.DEAD_LETTERED if not compensate else SyncState.FAILED
        if dead_letter:
            await self._dead_letter(
                self._input.pair,
                "order",
                reason,
                error,
                {
                    "pair": self._input.pair,
                    "store_order_id": self._input.store_order_id,
                    "store_order_number": order.number,
                    "skus": [line.sku for line in order.lines],
                },
            )
        await self._alert("order_failed", f"order {order.number} ({reason}): {error}")
        self._set_state(state)
        raise ApplicationError(
            f"order {order.number} {reason}: {error}", type=reason, non_retryable=True
        )

    async def _end_unreadable(self, failure: ApplicationError) -> OrderSyncStatus:
        """The store refused to give the order (it does not exist, or cannot be read):
        nothing was done anywhere, so nothing is undone; the letter names the order id."""
        reason = failure.type or "unreadable_order"
        self._status.error = str(failure)
        await self._dead_letter(
            self._input.pair,
            "order",
            reason,
            str(failure),
            {"pair": self._input.pair, "store_order_id": self._input.store_order_id},
        )
        subject = f"order {self._input.store_order_id}"
        await self._alert("order_failed", f"{subject} could not be read ({reason}): {failure}")
        self._set_state(SyncState.DEAD_LETTERED)
        raise ApplicationError(
            f"{subject} could not be read: {failure}", type=reason, non_retryable=True
        )

    def _check_cancel(self) -> None:
        if self._cancel is not None:
            raise OrderCancelled(self._cancel.reason)

    # ---- helpers -------------------------------------------------------------------

    def _has(self, patch_id: str) -> bool:
        """A levelled patch (`PATCH_LEVELS`): taken when the starter had it, else asked."""
        return self._started_with(patch_id) or workflow.patched(patch_id)

    async def _bookkeeping(self, ref: ActivityRef[InputT, OutputT], arg: InputT) -> OutputT:
        """A step that calls nothing outside: a local activity in runs with
        LOCAL_BOOKKEEPING_PATCH, else an activity on the workflow's own queue."""
        if self._local:
            return await self._act_here(ref, arg)
        return await self._act(ref, arg, queue=None)

    def _started_with(self, patch_id: str) -> bool:
        """A levelled patch taken only when the starter had it, and never asked: a run
        started before keeps the branch it started on, as its recorded input says."""
        return self._input.patch_level >= PATCH_LEVELS[patch_id]

    def _patched(self, patch_id: str) -> bool:
        """An earlier patch: always taken by a folded run (which records no marker of it),
        asked of the history otherwise."""
        return self._folded or workflow.patched(patch_id)

    async def _link(self, kind: str, store_id: str, erp_id: str) -> None:
        await self._act(
            Database.record_link,
            LinkInput(pair=self._input.pair, kind=kind, store_id=store_id, erp_id=erp_id),
            queue=None,
        )

    def _record(self, name: str, outcome: str, detail: str = "") -> StepRecord:
        return StepRecord(name=name, at=workflow.now(), outcome=outcome, detail=detail)

    def _step(self, name: str, detail: str = "", outcome: str = "ok") -> None:
        self._status.steps.append(self._record(name, outcome, detail))

    def _set_state(self, state: SyncState) -> None:
        self._status.state = state
        workflow.upsert_search_attributes([sa.SYNC_STATE.value_set(state.value)])

    def _end(self, state: SyncState, detail: str) -> OrderSyncStatus:
        self._set_state(state)
        self._step(state.value, detail)
        return self._status
