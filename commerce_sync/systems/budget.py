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
2. the age of its run as this process first saw it: a run already under way finishes
   before newer runs take its turns, so under a backlog orders complete one after
   another at the budget's pace, instead of every run waiting out the whole backlog at
   each of its steps (what first-in-first-out dispatch of every step did);
3. arrival.
One task per system and process hands the bucket's slots to the head of the queue as
they come.

A call that would still be waiting when its activity attempt's start-to-close timeout
comes gives up just before it (`ThrottledError`, no request sent), and the activity is
retried by Temporal; its run keeps its place in the queue.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from temporalio import activity

from commerce_sync.systems.errors import ThrottledError

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
"""A waiting call gives up this long before its attempt's timeout would stop it."""
RUNS_REMEMBERED = 20_000
DEFAULT_HOLD_S = 1.0
"""A 429 without a readable Retry-After pauses the budget this long."""


class Bucket(Protocol):
    """A budget shared by every process (`store/budgets.py`'s `SharedBucket`); its
    methods block on the database and are called from a thread."""

    def take(self, now: float, priority: int) -> float:
        """0.0 when one call is granted at `now`, else seconds until one may be."""
        ...

    def hold(self, until: float) -> None:
        """Grant nothing before `until`."""
        ...


@dataclass(frozen=True)
class CallContext:
    """Who is calling: how urgent, since when its run has been waiting, until when."""

    priority: int = DEFAULT_PRIORITY
    since: float = field(default_factory=time.monotonic)
    deadline: float | None = None  # time.monotonic() by which the call must be sent


@dataclass
class BudgetCounts:
    """What this process's budget did, for tests and metrics."""

    granted: int = 0
    granted_at_once: int = 0
    queued: int = 0
    gave_up: int = 0
    holds: int = 0


class CallBudget:
    """One outside system's call budget as seen from one process."""

    def __init__(self, system: str, bucket: Bucket, *, clock: Callable[[], float] = time.time):
        self.system = system
        self.bucket = bucket
        self.clock = clock
        self.counts = BudgetCounts()
        self._waiters: list[tuple[int, float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._drainer: asyncio.Task[None] | None = None
        self._runs: OrderedDict[str, float] = OrderedDict()

    # ---- the hooks ----------------------------------------------------------------

    async def before_request(self, request: httpx.Request) -> None:
        """httpx request hook: wait for this call's turn in the budget."""
        await self.acquire(self.context())

    async def after_response(self, response: httpx.Response) -> None:
        """httpx response hook: a throttle answer pauses the budget for every process."""
        pause = throttle_pause(response)
        if pause is not None:
            self.counts.holds += 1
            await asyncio.to_thread(self.bucket.hold, self.clock() + pause)

    # ---- granting -----------------------------------------------------------------

    def context(self) -> CallContext:
        """The running activity's priority, its run's age and its attempt's deadline."""
        if not activity.in_activity():
            return CallContext()
        info = activity.info()
        key = info.priority.priority_key if info.priority is not None else None
        priority = key if key else PRIORITY_BY_WORKFLOW.get(info.workflow_type or "", 3)
        since = self._run_since(info.workflow_id or info.activity_id)
        deadline = None
        timeouts = [t for t in (info.start_to_close_timeout, info.schedule_to_close_timeout) if t]
        if timeouts:
            started = info.started_time.timestamp() if info.started_time else self.clock()
            left = started + min(t.total_seconds() for t in timeouts) - self.clock()
            deadline = time.monotonic() + left - DEADLINE_MARGIN_S
        return CallContext(priority=priority, since=since, deadline=deadline)

    def _run_since(self, run: str) -> float:
        since = self._runs.get(run)
        if since is None:
            since = self._runs[run] = time.monotonic()
            if len(self._runs) > RUNS_REMEMBERED:
                self._runs.popitem(last=False)
        else:
            self._runs.move_to_end(run)
        return since

    async def acquire(self, context: CallContext) -> bool:
        """Wait for one call; True when it was granted at once, without queueing."""
        if not self._waiters and self._drainer is None:
            wait = await asyncio.to_thread(self.bucket.take, self.clock(), context.priority)
            if wait == 0.0:
                self.counts.granted += 1
                self.counts.granted_at_once += 1
                return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (context.priority, context.since, next(self._seq), future)
        heapq.heappush(self._waiters, entry)
        self.counts.queued += 1
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
            raise ThrottledError(
                self.system,
                "call budget: no free call before this attempt's timeout (nothing was sent)",
                retry_after_s=1.0,
            ) from None
        except asyncio.CancelledError:
            future.cancel()
            raise
        self.counts.granted += 1
        return False

    def _head(self) -> tuple[int, float, int, asyncio.Future[None]] | None:
        while self._waiters and self._waiters[0][3].done():
            heapq.heappop(self._waiters)
        return self._waiters[0] if self._waiters else None

    async def _drain(self) -> None:
        """Hand the bucket's slots to the most urgent waiter, one by one, until none waits."""
        try:
            while (head := self._head()) is not None:
                wait = await asyncio.to_thread(self.bucket.take, self.clock(), head[0])
                if wait > 0.0:
                    await asyncio.sleep(wait)
                    continue
                head = self._head()  # a more urgent call may have come meanwhile
                if head is None:
                    break  # the slot goes unused: its caller gave up while we asked
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
