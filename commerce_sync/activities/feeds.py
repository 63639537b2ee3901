"""The change feed's reads: the store's orders, return requests and customers, and the
ERP's products, changed since the feed's mark; each change passed on as its webhook
would be (see `intake/missing_runs.py`, `customer_changes.py`, `product_changes.py` for
how a change seen by both reaches its run once), and the mark moved once every change
was handled."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from commerce_sync.activities.errors import classified
from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import Settings
from commerce_sync.contracts.activities import Feeds, implements
from commerce_sync.contracts.feeds import FeedPoll, FeedRead
from commerce_sync.domain.models import utc_now
from commerce_sync.intake.customer_changes import pass_on_customer_changes
from commerce_sync.intake.missing_runs import (
    Outcome,
    StartMissing,
    pass_on_order_changes,
    start_missing_returns,
)
from commerce_sync.intake.product_changes import pass_on_product_changes
from commerce_sync.store.feeds import feed_mark, record_failure, record_read
from commerce_sync.systems.errors import BudgetQueued, ConnectorError
from commerce_sync.systems.ports import ErpPort, StorePort

PAGE_SIZE = 100
CONCURRENCY = 8

ReadChanges = Callable[[PairConfig, datetime], Awaitable[tuple[int, Counter[Outcome]]]]
"""One read of a system's changes since a time: (changes seen, what became of them)."""


class FeedActivities:
    """The feed's reads, through the worker's own connectors (`stores`, `erps`): each call
    takes its turn in its system's shared call budget, as every other call does."""

    def __init__(
        self,
        client: Client,
        engine: Engine,
        settings: Settings,
        pairs: dict[str, PairConfig],
        *,
        stores: Mapping[str, StorePort],
        erps: Mapping[str, ErpPort],
    ) -> None:
        self._client = client
        self._engine = engine
        self._settings = settings
        self._pairs = pairs
        self._stores = stores
        self._erps = erps

    @implements(Feeds.read_orders)
    @classified
    async def read_orders(self, poll: FeedPoll) -> FeedRead:
        return await self._read(poll, self._store_runs(pass_on_order_changes))

    @implements(Feeds.read_returns)
    @classified
    async def read_returns(self, poll: FeedPoll) -> FeedRead:
        return await self._read(poll, self._store_runs(start_missing_returns))

    @implements(Feeds.read_customers)
    @classified
    async def read_customers(self, poll: FeedPoll) -> FeedRead:
        async def pass_on(pair: PairConfig, since: datetime) -> tuple[int, Counter[Outcome]]:
            return await pass_on_customer_changes(
                self._client,
                self._engine,
                self._stores[pair.store],
                pair,
                since,
                self._settings.task_queue,
                page_size=PAGE_SIZE,
                concurrency=CONCURRENCY,
            )

        return await self._read(poll, pass_on)

    @implements(Feeds.read_products)
    @classified
    async def read_products(self, poll: FeedPoll) -> FeedRead:
        async def pass_on(pair: PairConfig, since: datetime) -> tuple[int, Counter[Outcome]]:
            return await pass_on_product_changes(
                self._client,
                self._engine,
                self._erps[pair.erp],
                pair,
                since,
                self._settings.task_queue,
                page_size=PAGE_SIZE,
                concurrency=CONCURRENCY,
            )

        return await self._read(poll, pass_on)

    def _store_runs(self, start_missing: StartMissing) -> ReadChanges:
        async def start(pair: PairConfig, since: datetime) -> tuple[int, Counter[Outcome]]:
            return await start_missing(
                self._client,
                self._stores[pair.store],
                pair,
                since,
                self._settings.task_queue,
                trigger="feed",
                page_size=PAGE_SIZE,
                concurrency=CONCURRENCY,
            )

        return start

    async def _read(self, poll: FeedPoll, read_changes: ReadChanges) -> FeedRead:
        pair = self._pairs.get(poll.pair)
        if pair is None:
            raise ApplicationError(
                f"unknown pair {poll.pair!r}", type="UnknownPair", non_retryable=True
            )
        started_at = utc_now()
        mark = await asyncio.to_thread(
            feed_mark, self._engine, pair.id, poll.entity, started_at - pair.feed.first_window
        )
        since = mark - pair.feed.overlap
        try:
            seen, outcomes = await read_changes(pair, since)
        except BudgetQueued:
            raise  # nothing was sent (a budget hand-back): not the feed's error; it retries
        except (ConnectorError, RPCError) as exc:
            text = exc.message if isinstance(exc, RPCError) else str(exc)
            await asyncio.to_thread(
                record_failure, self._engine, pair.id, poll.entity, at=utc_now(), error=text
            )
            raise
        await asyncio.to_thread(
            record_read,
            self._engine,
            pair.id,
            poll.entity,
            read_from=started_at,
            at=utc_now(),
            seen=seen,
            started=outcomes[Outcome.STARTED],
        )
        return FeedRead(
            pair=pair.id,
            entity=poll.entity,
            since=since,
            read_from=started_at,
            seen=seen,
            started=outcomes[Outcome.STARTED],
            existing=outcomes[Outcome.EXISTING],
            unsuccessful=outcomes[Outcome.UNSUCCESSFUL],
            cancelled=outcomes[Outcome.CANCELLED],
        )
