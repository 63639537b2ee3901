"""API budgets counted in calls: every HTTP request a connector sends waits for its turn.

The worker gives each connector a request hook (`CallBudget.before_request`) and a
response hook (`CallBudget.after_response`). The request hook asks the system's shared
bucket (`store/budgets.py`, one row of the app database, shared by every worker process)
for one call; the response hook turns the system's own throttle answers into a pause
for every process (Brightpearl: 503 or `brightpearl-requests-remaining: 0` with
`brightpearl-next-throttle-period` ms, docs/systems/brightpearl.md §4; anyone: 429 with
Retry-After seconds).

At idle a call goes straight to the bucket and out (no queue, no dispatch delay: the
task queues have no rate limit of their own any more). When the bucket is empty the
call waits in this process's queue, ordered by:
1. priority: the activity's Temporal priority key when its run was started with one,
   else its workflow type (`PRIORITY_BY_WORKFLOW`): an order's calls before a catalog
   refresh's; lower is more urgent, as Temporal's keys;
2. the age of its run: when one of the run's calls first waited for any budget, kept in
   the app database (`api_budget_runs`), so every process sees the same age: a run
   already under way finishes before newer runs take its turns, so under a backlog
   orders complete one after another at the budget's pace, instead of every run waiting
   out the whole backlog at each of its steps;
3. arrival.
One task per system and process asks the bucket for the head of the queue as slots
come; the bucket grants it only when no other process's head is ahead of it
(`api_budget_waiters`), so the order above holds across every process of the deployment.

A call that would still be waiting when its activity attempt's start-to-close timeout
comes hands its place back just before it (`BudgetQueued`, no request sent): an attempt
cannot outlive its timeout, and one that timed out would be a failure and hold a worker
slot to the end. Its retry, a second later, waits again in the same place (its run's age
is in the database); it is a step still queued, not a failed one (the activity wrapper
does not count it as a failed step).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx
from temporalio import activity

from commerce_sync.systems.attempts import note_request_sent
from commerce_sync.systems.errors import BudgetQueued

log = logging.getLogger(__name__)

DEFAULT_PRIORITY = 3
PRIORITY_BY_WORKFLOW: dict[str, int] = {
    "OrderSync": 1,
    "ReturnSync": 1,
    "ErpEventRouter": 1,  # shipments and ERP order changes on their way to the store
    "ChangeFeed": 2,  # the intake of stores that send no webhooks
    "InventoryPush": 2,
    "InventoryScheduleTick": 2,
    "CustomerSync": 3,
    "CustomerMerge": 3,
    "CatalogSync": 4,
    "CatalogEventRouter": 4,
}
DEADLINE_MARGIN_S = 5.0
"""A waiting call hands its place back this long before its attempt's timeout."""
REQUEUE_AFTER_S = 1.0
"""How soon the retry of an attempt that handed its place back comes to wait again."""
KEEP_PLACE_EXTRA_S = 4.0
"""A handed-back run's place is kept this long beyond REQUEUE_AFTER_S for its retry to
arrive (the dispatch of a retry under load); after that it lapses."""
MAX_SLEEP_S = 1.0  # store/budgets.py's CLAIM_RENEWED_WITHIN_S
"""The queue asks the bucket again at least this often, even when its answer was a longer
wait (a throttle pause): its row among the waiting callers stays fresh, and a pause
lifted early, or the head's caller gone, is seen within a second."""
RUNS_REMEMBERED = 20_000
DEFAULT_HOLD_S = 1.0
"""A 429 without a readable Retry-After pauses the budget this long."""


class Bucket(Protocol):
    """A budget shared by every process (`store/budgets.py`'s `SharedBucket`); its
    methods block on the database and are called from a thread."""

    def take(
        self,
        now: float,
        priority: int,
        since: float | None = None,
        *,
        wait: bool = True,
        run: str | None = None,
    ) -> float:
        """0.0 when one call is granted at `now`, else seconds until one may be; `wait`:
        record the refused caller as this process's waiting call; `run`: the caller's run,
        whose kept place a grant ends."""
        ...

    def keep_place(
        self, run: str, priority: int, since: float, until: float, *, now: float
    ) -> None:
        """Keep the run's place among the waiting callers until `until` (asked at `now`)."""
        ...

    def stop_waiting(self) -> None:
        """This process waits for no call any more."""
        ...

    def run_since(self, run: str, now: float) -> float:
        """When `run` first waited, the same in every process."""
        ...

    def hold(self, until: float) -> None:
        """Grant nothing before `until`."""
        ...


@dataclass(frozen=True)
class CallContext:
    """Who is calling: how urgent, which run, since when it waits, until when.

    `since` (Unix seconds) is looked up from `run` when the call has to wait, unless given.
    """

    priority: int = DEFAULT_PRIORITY
    run: str | None = None
    since: float | None = None
    deadline: float | None = None  # time.monotonic() by which the call must be sent


@dataclass
class BudgetCounts:
    """What this process's budget did, for tests and metrics."""

    granted: int = 0
    granted_at_once: int = 0
    queued: int = 0
    gave_up: int = 0
    holds: int = 0


Waiter = tuple[int, float, int, asyncio.Future[None], str | None]
"""priority, since, arrival, the future its turn is handed to, and its run."""


class CallBudget:
    """One outside system's call budget as seen from one process."""

    def __init__(self, system: str, bucket: Bucket, *, clock: Callable[[], float] = time.time):
        self.system = system
        self.bucket = bucket
        self.clock = clock
        self.counts = BudgetCounts()
        self._waiters: list[Waiter] = []
        self._seq = itertools.count()
        self._drainer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._runs: OrderedDict[str, float] = OrderedDict()

    # ---- the hooks ----------------------------------------------------------------

    async def before_request(self, request: httpx.Request) -> None:
        """httpx request hook: wait for this call's turn in the budget; once granted, the
        request goes out and counts as sent by its activity attempt."""
        await self.acquire(self.context())
        note_request_sent()

    async def after_response(self, response: httpx.Response) -> None:
        """httpx response hook: a throttle answer pauses the budget for every process."""
        pause = throttle_pause(response)
        if pause is not None:
            self.counts.holds += 1
            await asyncio.to_thread(self.bucket.hold, self.clock() + pause)

    # ---- granting -----------------------------------------------------------------

    def context(self) -> CallContext:
        """The running activity's priority, its run and its attempt's deadline."""
        if not activity.in_activity():
            return CallContext()
        info = activity.info()
        key = info.priority.priority_key if info.priority is not None else None
        priority = key if key else PRIORITY_BY_WORKFLOW.get(info.workflow_type or "", 3)
        run = info.workflow_run_id or info.workflow_id or info.activity_id
        deadline = None
        timeouts = [t for t in (info.start_to_close_timeout, info.schedule_to_close_timeout) if t]
        if timeouts:
            started = info.started_time.timestamp() if info.started_time else self.clock()
            left = started + min(t.total_seconds() for t in timeouts) - self.clock()
            deadline = time.monotonic() + left - DEADLINE_MARGIN_S
        return CallContext(priority=priority, run=run, deadline=deadline)

    async def _since(self, context: CallContext) -> float:
        """When the caller's run first waited, as every process has it."""
        if context.since is not None:
            return context.since
        now = self.clock()
        if context.run is None:
            return now
        since = self._runs.get(context.run)
        if since is None:
            since = await asyncio.to_thread(self.bucket.run_since, context.run, now)
            self._runs[context.run] = since
            if len(self._runs) > RUNS_REMEMBERED:
                self._runs.popitem(last=False)
        else:
            self._runs.move_to_end(context.run)
        return since

    async def acquire(self, context: CallContext) -> bool:
        """Wait for one call; True when it was granted at once, without queueing."""
        if not self._waiters and self._drainer is None:
            known = context.since
            if known is None and context.run is not None:
                known = self._runs.get(context.run)  # a run that waited before keeps its age
            take = functools.partial(
                self.bucket.take,
                self.clock(),
                context.priority,
                known,
                wait=False,
                run=context.run,
            )
            if await asyncio.to_thread(take) == 0.0:
                self.counts.granted += 1
                self.counts.granted_at_once += 1
                return True
        since = await self._since(context)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (context.priority, since, next(self._seq), future, context.run)
        heapq.heappush(self._waiters, entry)
        self.counts.queued += 1
        if self._waiters[0][3] is future:
            self._wake.set()  # a new head: the queue tells the other processes at once
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        timeout = None if context.deadline is None else context.deadline - time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            if future.done() and not future.cancelled():
                self.counts.granted += 1  # granted at the last moment: use it
                return False
            future.cancel()
            self.counts.gave_up += 1
            if context.run is not None:
                await self._keep_place(context.run, context.priority, since)
            raise BudgetQueued(
                self.system,
                "call budget: still queued when this attempt ends; its retry waits again in "
                "the same place (nothing was sent)",
                retry_after_s=REQUEUE_AFTER_S,
            ) from None
        except asyncio.CancelledError:
            future.cancel()
            raise
        self.counts.granted += 1
        return False

    async def _keep_place(self, run: str, priority: int, since: float) -> None:
        """Hold the run's place while its retry is on the way: the next attempt comes
        REQUEUE_AFTER_S later (more under load), and in that gap newer runs would take the
        slots it waits for."""
        now = self.clock()
        until = now + REQUEUE_AFTER_S + KEEP_PLACE_EXTRA_S
        keep = functools.partial(self.bucket.keep_place, run, priority, since, until, now=now)
        try:
            await asyncio.to_thread(keep)
        except Exception:  # the hand-back goes on; the run only loses its kept place
            log.warning("call budget %s: could not keep a run's place", self.system)

    def _head(self) -> Waiter | None:
        while self._waiters and self._waiters[0][3].done():
            heapq.heappop(self._waiters)
        return self._waiters[0] if self._waiters else None

    async def _drain(self) -> None:
        """Hand the bucket's slots to the most urgent waiter, one by one, until none waits;
        then drop this process's row of waiting callers."""
        try:
            while True:
                head = self._head()
                if head is None:
                    await asyncio.to_thread(self.bucket.stop_waiting)
                    if self._head() is None:
                        return  # nothing awaited since the check: no caller is left behind
                    continue
                self._wake.clear()
                take = functools.partial(
                    self.bucket.take, self.clock(), head[0], head[1], run=head[4]
                )
                wait = await asyncio.to_thread(take)
                if wait > 0.0:
                    # Until the slot, or sooner when a call that goes first joins this queue:
                    # its place must be on record before the slot is handed out.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), min(wait, MAX_SLEEP_S))
                    continue
                head = self._head()  # a more urgent call may have come meanwhile
                if head is None:
                    continue  # the slot goes unused: its caller gave up while we asked
                heapq.heappop(self._waiters)
                head[3].set_result(None)
        finally:
            self._drainer = None

    @property
    def waiting(self) -> int:
        return sum(1 for entry in self._waiters if not entry[3].done())

    async def aclose(self) -> None:
        if self._drainer is not None:
            self._drainer.cancel()
        for entry in self._waiters:
            entry[3].cancel()
        # Drop this process's waiting row; should the database be gone, it lapses anyway.
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.bucket.stop_waiting)


def throttle_pause(response: httpx.Response) -> float | None:
    """Seconds the system asks us to wait before any further call, or None."""
    headers = response.headers
    period = _number(headers.get("brightpearl-next-throttle-period"))
    remaining = _number(headers.get("brightpearl-requests-remaining"))
    status = response.status_code
    # Brightpearl's throttle is a 503 once the period's requests are used up; a 503 whose
    # `brightpearl-requests-remaining` says calls are left is some other unavailability,
    # and its period header (on every answer) is no reason to pause every process.
    spent = remaining is not None and remaining <= 0
    if period is not None and (spent or (status == 503 and remaining is None)):
        return period / 1000  # Brightpearl: milliseconds until the next period
    if status == 429:
        retry_after = _number(headers.get("retry-after"))
        return retry_after if retry_after is not None else DEFAULT_HOLD_S
    return None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if value >= 0 else None
