"""The change feeds' Temporal Schedules, and what `GET /feeds` shows of them.

`ensure_feed_schedules` creates each pair's `feed-{entity}:{pair}` schedules (orders,
returns: `feed.entities`), or brings them in line with pairs.toml (a pause set by an
operator in the Web UI stays). Their interval depends on whether the store's webhooks
are configured: without them the feed is the intake (`feed.every`, a minute), with them
a safety net (`feed.safety_net_every`). A feed turned off has its schedule deleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import Engine
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import Settings
from commerce_sync.contracts import search_attributes as sa
from commerce_sync.contracts.feeds import FeedPoll, feed_schedule_id
from commerce_sync.domain.models import utc_now
from commerce_sync.domain.pair_rules import FEED_ENTITIES, FeedEntity
from commerce_sync.ops.schedules import delete_schedule, ensure_schedule
from commerce_sync.store.feeds import feed_states


def store_sends_webhooks(settings: Settings, pair: PairConfig) -> bool:
    """Whether the store's webhooks reach us: their signing secret is configured."""
    return getattr(settings.webhooks, pair.store, None) is not None


def sends_webhooks(settings: Settings, pair: PairConfig, entity: FeedEntity = "orders") -> bool:
    """Whether the system the feed reads announces its changes: the store for orders,
    returns and customers, the ERP (its webhook token) for the catalog."""
    if entity == "catalog":
        return getattr(settings.webhooks, f"{pair.erp}_token", None) is not None
    return store_sends_webhooks(settings, pair)


def feed_interval(settings: Settings, pair: PairConfig, entity: FeedEntity = "orders") -> timedelta:
    rules = pair.feed
    return rules.safety_net_every if sends_webhooks(settings, pair, entity) else rules.every


def _feeds(pair: PairConfig, entity: FeedEntity) -> bool:
    return pair.feed.enabled and entity in pair.feed.entities


def _schedule(settings: Settings, pair: PairConfig, entity: FeedEntity) -> Schedule:
    schedule_id = feed_schedule_id(pair.id, entity)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "ChangeFeed",
            FeedPoll(pair=pair.id, entity=entity),
            id=schedule_id,
            task_queue=settings.task_queue,
            execution_timeout=timedelta(minutes=15),
            typed_search_attributes=TypedSearchAttributes(
                [SearchAttributePair(sa.INTEGRATION_PAIR, pair.id)]
            ),
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=feed_interval(settings, pair, entity))]
        ),
        # A read still going when the next tick comes is not doubled.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_feed_schedules(
    client: Client, settings: Settings, pairs: Iterable[PairConfig]
) -> list[str]:
    """Create or update each pair's feed schedule; delete those of feeds turned off."""
    ensured: list[str] = []
    for pair, entity in ((pair, entity) for pair in pairs for entity in FEED_ENTITIES):
        schedule_id = feed_schedule_id(pair.id, entity)
        if not _feeds(pair, entity):
            await delete_schedule(client, schedule_id)
            continue
        await ensure_schedule(client, schedule_id, _schedule(settings, pair, entity))
        ensured.append(schedule_id)
    return ensured


class FeedStatus(BaseModel):
    pair: str
    entity: str
    schedule_id: str
    every_seconds: float
    webhooks: bool
    paused: bool | None
    mark: datetime | None
    lag_seconds: float | None
    last_success_at: datetime | None
    last_seen: int
    last_started: int
    last_error: str
    last_error_at: datetime | None


async def feed_statuses(
    client: Client | None, engine: Engine, settings: Settings, pairs: Iterable[PairConfig]
) -> list[FeedStatus]:
    """Every enabled feed: its schedule (paused or not, when Temporal answers) and how its
    reads went (the app database)."""
    states = {(s.pair, s.entity): s for s in await asyncio.to_thread(feed_states, engine)}
    now = utc_now()
    found: list[FeedStatus] = []
    for pair, entity in ((pair, entity) for pair in pairs for entity in FEED_ENTITIES):
        if not _feeds(pair, entity):
            continue
        schedule_id = feed_schedule_id(pair.id, entity)
        paused: bool | None = None
        if client is not None:
            try:
                described = await client.get_schedule_handle(schedule_id).describe()
                paused = described.schedule.state.paused
            except RPCError:
                paused = None
        state = states.get((pair.id, entity))
        found.append(
            FeedStatus(
                pair=pair.id,
                entity=entity,
                schedule_id=schedule_id,
                every_seconds=feed_interval(settings, pair, entity).total_seconds(),
                webhooks=sends_webhooks(settings, pair, entity),
                paused=paused,
                mark=state.mark if state else None,
                lag_seconds=max((now - state.mark).total_seconds(), 0.0) if state else None,
                last_success_at=state.last_success_at if state else None,
                last_seen=state.last_seen if state else 0,
                last_started=state.last_started if state else 0,
                last_error=state.last_error if state else "",
                last_error_at=state.last_error_at if state else None,
            )
        )
    return found
