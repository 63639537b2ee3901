"""What the app database lets go of, so it does not keep personal data or grow forever.

Kept for `retention` (a setting, 30 days by default): webhook events whose run started,
alerts, and resolved dead letters. Events still waiting for their start and open dead
letters are kept however old: they are work not done. `orders_seen` only serves a rule
that looks back one hour, so its rows go after a day.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete
from sqlmodel import col

from commerce_sync.domain.models import utc_now
from commerce_sync.store.db import session_scope
from commerce_sync.store.models import (
    Alert,
    DeadLetter,
    DeadLetterStatus,
    EventStatus,
    OrderSeen,
    WebhookEvent,
)

ORDERS_SEEN_FOR = timedelta(days=1)


def prune(engine: Engine, retention: timedelta, now: datetime | None = None) -> dict[str, int]:
    """Delete what is past its time; how many rows went, per table."""
    now = now or utc_now()
    cutoff = now - retention
    statements = {
        "webhook_events": delete(WebhookEvent).where(
            col(WebhookEvent.status) == EventStatus.STARTED,
            col(WebhookEvent.received_at) < cutoff,
        ),
        "alerts": delete(Alert).where(col(Alert.created_at) < cutoff),
        "dead_letters": delete(DeadLetter).where(
            col(DeadLetter.status) == DeadLetterStatus.RESOLVED,
            col(DeadLetter.resolved_at) < cutoff,
        ),
        "orders_seen": delete(OrderSeen).where(col(OrderSeen.placed_at) < now - ORDERS_SEEN_FOR),
    }
    removed: dict[str, int] = {}
    with session_scope(engine) as session:
        for table, statement in statements.items():
            removed[table] = session.execute(statement).rowcount or 0  # type: ignore[attr-defined]
    return removed
