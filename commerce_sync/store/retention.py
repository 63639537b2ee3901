"""What the app database lets go of, so it does not keep personal data or grow forever.

Kept for `retention` (a setting, 30 days by default): webhook events whose run started,
alerts, and resolved dead letters. Events still waiting for their start and open dead
letters are kept however old: they are work not done. `orders_seen` serves the
orders-per-e-mail rule (an hour back) and the anomaly checks, which learn from each
pair's orders of the last `anomalies.history_days` (180 by default): its rows are kept
for the longest window a pair's checks read (`orders_seen_kept_for`), a day when every
pair's checks are off. Those rows hold no e-mail or address, only keyed hashes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete
from sqlmodel import col

from commerce_sync.domain.models import utc_now
from commerce_sync.domain.pair_rules import AnomalyRules
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


def orders_seen_kept_for(rules: Iterable[AnomalyRules]) -> timedelta:
    """How long `orders_seen` rows must stay for the pairs' anomaly checks to read them."""
    windows = [
        timedelta(days=max(each.history_days, each.address_window_days))
        for each in rules
        if each.enabled
    ]
    return max([ORDERS_SEEN_FOR, *windows])


def prune(
    engine: Engine,
    retention: timedelta,
    now: datetime | None = None,
    *,
    orders_seen_for: timedelta = ORDERS_SEEN_FOR,
) -> dict[str, int]:
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
        "orders_seen": delete(OrderSeen).where(col(OrderSeen.placed_at) < now - orders_seen_for),
    }
    removed: dict[str, int] = {}
    with session_scope(engine) as session:
        for table, statement in statements.items():
            removed[table] = session.execute(statement).rowcount or 0  # type: ignore[attr-defined]
    return removed
