"""Start the order and return runs a store's changes call for and that do not exist
yet: what `resync orders` does once and the change feed does on a schedule.

Each id is first looked up with `describe` (strongly consistent, unlike visibility); the
start itself is still the idempotent one of the webhook path (`dispatch`, `USE_EXISTING`),
so a webhook racing the feed cannot cause a second run: a change seen by both starts one.
A run that exists is left alone whatever its state (a failed order is dead-lettered and
replayed from there, not by every read).
"""

from __future__ import annotations

import asyncio
import enum
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Protocol, TypeVar

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from commerce_sync.config.pairs import PairConfig, rules_of
from commerce_sync.contracts.ids import order_workflow_id, return_workflow_id
from commerce_sync.domain.pair_rules import PairRules
from commerce_sync.intake.dispatch import dispatch
from commerce_sync.intake.routing import (
    Route,
    order_cancel_route,
    order_start_route,
    return_start_route,
)
from commerce_sync.systems.ports import StorePort

Item = TypeVar("Item")

# Closed runs that did not succeed: left alone too, but told apart.
_UNSUCCESSFUL = frozenset(
    {
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.CANCELED,
        WorkflowExecutionStatus.TIMED_OUT,
    }
)


class Outcome(enum.Enum):
    STARTED = "started"
    EXISTING = "already running or complete"
    UNSUCCESSFUL = "ended unsuccessfully earlier; not restarted"
    CANCELLED = "cancelled in the store: passed on to its run"


class StartMissing(Protocol):
    """`start_missing_orders` or `start_missing_returns`."""

    async def __call__(
        self,
        client: Client,
        store: StorePort,
        pair: PairConfig,
        since: datetime,
        task_queue: str,
        *,
        trigger: str,
        page_size: int,
        concurrency: int,
    ) -> tuple[int, Counter[Outcome]]: ...


async def start_missing_order(
    client: Client,
    pair_id: str,
    store_order_id: str,
    task_queue: str,
    trigger: str = "resync",
    *,
    rules: PairRules | None = None,
) -> Outcome:
    """Start the order's sync run when it has none; an existing run is left alone. With
    the pair's `rules` the run starts with them (`OrderSyncInput.rules`)."""
    return await _start_missing(
        client,
        order_workflow_id(pair_id, store_order_id),
        order_start_route(pair_id, store_order_id, trigger, rules),
        task_queue,
    )


async def start_missing_return(
    client: Client, pair_id: str, return_id: str, task_queue: str, trigger: str
) -> Outcome:
    """Start the return request's run when it has none; an existing run is left alone."""
    return await _start_missing(
        client,
        return_workflow_id(pair_id, return_id),
        return_start_route(pair_id, return_id, trigger),
        task_queue,
    )


async def _start_missing(
    client: Client, workflow_id: str, route: Route, task_queue: str
) -> Outcome:
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    else:
        if description.status in _UNSUCCESSFUL:
            return Outcome.UNSUCCESSFUL
        return Outcome.EXISTING
    await dispatch(client, route, task_queue)
    return Outcome.STARTED


async def start_missing_orders(
    client: Client,
    store: StorePort,
    pair: PairConfig,
    since: datetime,
    task_queue: str,
    *,
    trigger: str,
    page_size: int,
    concurrency: int,
    listed: Callable[[int], None] | None = None,
    handled: Callable[[str, Outcome], None] | None = None,
) -> tuple[int, Counter[Outcome]]:
    """Page through the store's orders changed since `since` and start each missing run:
    (orders seen, outcomes). Connector and Temporal errors propagate; what was started
    before one stays started (running it again is harmless)."""

    async def start(order_id: str) -> Outcome:
        return await start_missing_order(
            client, pair.id, order_id, task_queue, trigger, rules=rules_of(pair)
        )

    return await start_each(
        store.changed_order_ids(since, pair, page_size), start, concurrency, listed, handled
    )


async def pass_on_order_changes(
    client: Client,
    store: StorePort,
    pair: PairConfig,
    since: datetime,
    task_queue: str,
    *,
    trigger: str,
    page_size: int,
    concurrency: int,
) -> tuple[int, Counter[Outcome]]:
    """The change feed's orders: each missing run started, and each order cancelled in
    the store passed on as the webhook's `order.cancelled` is (the run's `cancel`
    signal; a run that has ended is left alone). A cancellation seen again by an
    overlapping read is a signal the run already took."""
    cancelled: set[str] = set()

    async def ids() -> AsyncIterator[list[str]]:
        async for changes in store.changed_orders(since, pair, page_size):
            cancelled.update(change.order_id for change in changes if change.cancelled)
            yield [change.order_id for change in changes]

    async def start(order_id: str) -> Outcome:
        if order_id in cancelled:
            route = order_cancel_route(pair.id, order_id, trigger, rules_of(pair))
            await dispatch(client, route, task_queue)
            return Outcome.CANCELLED
        return await start_missing_order(
            client, pair.id, order_id, task_queue, trigger, rules=rules_of(pair)
        )

    return await start_each(ids(), start, concurrency)


async def start_missing_returns(
    client: Client,
    store: StorePort,
    pair: PairConfig,
    since: datetime,
    task_queue: str,
    *,
    trigger: str,
    page_size: int,
    concurrency: int,
) -> tuple[int, Counter[Outcome]]:
    """The same for the store's return requests changed since `since`."""

    async def start(return_id: str) -> Outcome:
        return await start_missing_return(client, pair.id, return_id, task_queue, trigger)

    return await start_each(store.changed_return_ids(since, pair, page_size), start, concurrency)


async def start_each(
    pages: AsyncIterator[list[Item]],
    start: Callable[[Item], Awaitable[Outcome]],
    concurrency: int,
    listed: Callable[[int], None] | None = None,
    handled: Callable[[Item, Outcome], None] | None = None,
) -> tuple[int, Counter[Outcome]]:
    """Each item of each page through `start`, at most `concurrency` at a time, a page
    finished before the next is read: (items seen, outcomes). The first error propagates
    once its page has settled; what was started before it stays started."""
    gate = asyncio.Semaphore(concurrency)
    seen = 0
    outcomes: Counter[Outcome] = Counter()

    async def one(item: Item) -> Outcome:
        async with gate:
            outcome = await start(item)
        if handled is not None:
            handled(item, outcome)
        return outcome

    async for page in pages:
        seen += len(page)
        if listed is not None:
            listed(len(page))
        results = await asyncio.gather(*(one(item) for item in page), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
            outcomes[result] += 1
    return seen, outcomes
