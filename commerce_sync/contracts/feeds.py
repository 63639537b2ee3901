"""Messages of the change feed: one scheduled read of a store's changed orders or returns."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from commerce_sync.domain.pair_rules import FeedEntity


class OrderChange(BaseModel):
    """A store order placed or changed since a time; `cancelled` when the store says so
    (the change feed passes the cancellation on to a run that exists)."""

    order_id: str
    cancelled: bool = False


class CustomerChange(BaseModel):
    """A store customer changed at `changed_at` (the store's own stamp of the change)."""

    customer_id: str
    changed_at: datetime


class FeedPoll(BaseModel):
    """The action of the feed's schedule (`feed-{entity}:{pair}`)."""

    pair: str
    entity: FeedEntity = "orders"


class FeedRead(BaseModel):
    """One read: what it covered and what it started."""

    pair: str
    entity: FeedEntity
    since: datetime
    read_from: datetime
    seen: int
    started: int
    existing: int
    unsuccessful: int
    cancelled: int = 0
    """Orders cancelled in the store, passed on to their runs."""


def feed_schedule_id(pair: str, entity: FeedEntity = "orders") -> str:
    return f"feed-{entity}:{pair}"
