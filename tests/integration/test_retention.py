"""Data at rest in the app database (SQLite and Postgres): the e-mail of the
orders-per-e-mail rule is kept only as a hash, and pruning lets go of what is past the
retention while work not yet done stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from commerce_sync.activities.database import DatabaseActivities
from commerce_sync.config.pairs import load_pairs
from commerce_sync.contracts.steps import OrderSeen as SeenInput
from commerce_sync.domain.pair_rules import AnomalyRules
from commerce_sync.store.models import (
    Alert,
    DeadLetter,
    DeadLetterStatus,
    EventStatus,
    OrderSeen,
    WebhookEvent,
)
from commerce_sync.store.retention import orders_seen_kept_for, prune

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_orders_per_email_are_counted_on_a_hash_of_the_email(engine: Engine) -> None:
    pairs = load_pairs()
    keyed = DatabaseActivities(engine, pairs, email_key=b"k" * 32)
    seen = [
        keyed.note_order(
            SeenInput(
                pair="kentico-brightpearl",
                store_order_id=str(n),
                email=email,
                placed_at=NOW + timedelta(minutes=n),
            )
        )
        for n, email in enumerate(["Ann@Example.com", "ann@example.com ", "bob@example.com"])
    ]
    assert seen == [1, 2, 1]
    unkeyed = DatabaseActivities(engine, pairs)
    unkeyed.note_order(
        SeenInput(pair="xcart-acumatica", store_order_id="9", email="cy@example.com", placed_at=NOW)
    )
    with Session(engine) as session:
        keys = [row.email_key for row in session.exec(select(OrderSeen)).all()]
    assert not [key for key in keys if "@" in key or "example" in key]
    assert sorted(key[:3] for key in keys) == ["h1:", "h1:", "h1:", "s1:"]


def test_pruning_keeps_work_not_done_and_lets_the_rest_go(engine: Engine) -> None:
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=2)
    with Session(engine) as session:
        for when, status, name in [
            (old, EventStatus.STARTED, "old-started"),
            (old, EventStatus.RECEIVED, "old-waiting"),
            (old, EventStatus.FAILED, "old-given-up"),
            (recent, EventStatus.STARTED, "recent-started"),
        ]:
            session.add(
                WebhookEvent(
                    source="kentico",
                    event_id=name,
                    event_type="order.created",
                    workflow_id="",
                    payload={},
                    status=status,
                    received_at=when,
                )
            )
        for when, name in [(old, "old"), (recent, "recent")]:
            session.add(Alert(dedupe_key=name, kind="k", key=name, message="m", created_at=when))
        letters: list[tuple[DeadLetterStatus, datetime | None, str]] = [
            (DeadLetterStatus.RESOLVED, old, "old-resolved"),
            (DeadLetterStatus.OPEN, None, "old-open"),
            (DeadLetterStatus.RESOLVED, recent, "recent-resolved"),
        ]
        for letter_status, resolved_at, name in letters:
            session.add(
                DeadLetter(
                    pair="p",
                    process="order",
                    business_key=name,
                    reason="r",
                    error="e",
                    status=letter_status,
                    created_at=old,
                    resolved_at=resolved_at,
                )
            )
        for when, name in [(NOW - timedelta(days=2), "2d"), (NOW - timedelta(hours=2), "2h")]:
            session.add(OrderSeen(pair="p", store_order_id=name, email_key="s1:x", placed_at=when))
        session.commit()

    removed = prune(engine, timedelta(days=30), now=NOW)
    assert removed == {"webhook_events": 1, "alerts": 1, "dead_letters": 1, "orders_seen": 1}
    with Session(engine) as session:
        assert sorted(e.event_id for e in session.exec(select(WebhookEvent)).all()) == [
            "old-given-up",
            "old-waiting",
            "recent-started",
        ]
        assert [a.key for a in session.exec(select(Alert)).all()] == ["recent"]
        assert sorted(d.business_key for d in session.exec(select(DeadLetter)).all()) == [
            "old-open",
            "recent-resolved",
        ]
        assert [o.store_order_id for o in session.exec(select(OrderSeen)).all()] == ["2h"]
    assert prune(engine, timedelta(days=30), now=NOW) == dict.fromkeys(removed, 0)


def test_orders_seen_stay_as_long_as_the_anomaly_checks_read_them(engine: Engine) -> None:
    rules = [AnomalyRules(history_days=90), AnomalyRules(address_window_days=120)]
    assert orders_seen_kept_for(rules) == timedelta(days=180)  # the second's history_days
    assert orders_seen_kept_for([AnomalyRules(enabled=False)]) == timedelta(days=1)
    with Session(engine) as session:
        for days in (2, 100, 200):
            session.add(
                OrderSeen(
                    pair="p",
                    store_order_id=f"{days}d",
                    email_key="s1:x",
                    placed_at=NOW - timedelta(days=days),
                )
            )
        session.commit()
    kept_for = orders_seen_kept_for(rules)
    assert prune(engine, timedelta(days=30), now=NOW, orders_seen_for=kept_for)["orders_seen"] == 1
    with Session(engine) as session:
        kept = sorted(o.store_order_id for o in session.exec(select(OrderSeen)).all())
    assert kept == ["100d", "2d"]
