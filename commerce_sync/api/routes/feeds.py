"""`GET /feeds`: each change feed's schedule and how its reads went."""

from __future__ import annotations

from fastapi import APIRouter, Request

from commerce_sync.api.deps import EngineDep, SettingsDep, TemporalLinkDep
from commerce_sync.api.security import ReadKey
from commerce_sync.commands.feeds import FeedStatus, feed_statuses

router = APIRouter(prefix="/feeds", tags=["operations"])


@router.get("", response_model=list[FeedStatus])
async def list_feeds(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalLinkDep,
    _: ReadKey,
) -> list[FeedStatus]:
    """Per pair: the feed's interval (a minute when the store sends no webhooks, else a
    safety net), whether an operator paused its schedule (None when Temporal cannot
    answer now), where it has read up to, its lag, its last success and last error."""
    pairs = request.app.state.pairs
    return await feed_statuses(temporal.client, engine, settings, pairs.values())
