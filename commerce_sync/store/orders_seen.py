"""Orders per customer e-mail, for the risk rule "more than N orders from one e-mail in an hour"."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from commerce_sync.store.db import session_scope
from commerce_sync.store.models import OrderSeen


def note_order_and_count(
    engine: Engine, pair: str, store_order_id: str, email_key: str, placed_at: datetime
) -> int:
    """Record the order (once) and count the orders of this e-mail (given as its hash,
    `email_key`) in the hour up to `placed_at`."""
    try:
        with session_scope(engine) as session:
            session.add(
                OrderSeen(
                    pair=pair,
                    store_order_id=store_order_id,
                    email_key=email_key,
                    placed_at=placed_at,
                )
            )
    except IntegrityError:
        pass  # seen before: a retry or a re-run
    with session_scope(engine) as session:
        count = session.exec(
            select(func.count())
            .select_from(OrderSeen)
            .where(
                OrderSeen.pair == pair,
                OrderSeen.email_key == email_key,
                OrderSeen.placed_at > placed_at - timedelta(hours=1),
                OrderSeen.placed_at <= placed_at,
            )
        ).one()
        return int(count)
