"""The change feed's reads: the store's orders (or return requests) changed since the
feed's mark, a run started for each that has none (the webhook path's own start, so a
change a webhook also announced starts one run), and the mark moved once every change
was handled."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
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
from commerce_sync.store.feeds import feed_mark, record_failure, record_read
from commerce_sync.systems.errors import ConnectorError
from commerce_sync.systems.ports import StorePort
from commerce_sync.systems.registry import create_store_port

PAGE_SIZE = 100
CONCURRENCY = 8

ReadChanges = Callable[[StorePort, PairConfig, datetime], Awaitable[tuple[int, Counter[Outcome]]]]
"""One read of a store's changes since a time: (changes seen, what became of them)."""


class FeedActivities:
    def __init__(
        self, client: Client, engine: Engine, settings: Settings, pairs: dict[str, PairConfig]
    ) -> None:
        self._client = client
        self._engine = engine
        self._settings = settings
        self._pairs = pairs

    @implements(Feeds.read_orders)
    @classified
    async def read_orders(self, poll: FeedPoll) -> FeedRead:
        return await self._read(poll, self._runs_starter(pass_on_order_changes))

    @implements(Feeds.read_returns)
    @classified
    async def read_returns(self, poll: FeedPoll) -> FeedRead:
        return await self._read(poll, self._runs_starter(start_missing_returns))

    @implements(Feeds.read_customers)
    @classified
    async def read_customers(self, poll: FeedPoll) -> FeedRead:
        async def pass_on(
            store: StorePort, pair: PairConfig, since: datetime
        ) -> tuple[int, Counter[Outcome]]:
            return await pass_on_customer_changes(
                self._client,
                self._engine,
                store,
                pair,
                since,
                self._settings.task_queue,
                page_size=PAGE_SIZE,
                concurrency=CONCURRENCY,
            )

        return await self._read(poll, pass_on)

    def _runs_starter(self, start_missing: StartMissing) -> ReadChanges:
        async def start(
            store: StorePort, pair: PairConfig, since: datetime
        ) -> tuple[int, Counter[Outcome]]:
            return await start_missing(
                self._client,
                store,
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
        store = create_store_port(pair.store, self._settings)
        try:
            seen, outcomes = await read_changes(store, pair, since)
        except (ConnectorError, RPCError) as exc:
            text = exc.message if isinstance(exc, RPCError) else str(exc)
            await asyncio.to_thread(
                record_failure, self._engine, pair.id, poll.entity, at=utc_now(), error=text
            )
            raise
        finally:
            await store.aclose()
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
