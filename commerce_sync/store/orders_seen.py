"""The store orders a pair has seen: for the orders-per-e-mail-per-hour risk rule and for
the anomaly checks, which learn each pair's usual orders from them (domain/anomalies.py).

Only what the checks match on is kept: keyed hashes of the e-mail and of the shipping
address, never the e-mail or the address themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, Text, and_, case, cast, func, null, or_
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from commerce_sync.domain.anomalies import OrderHistory
from commerce_sync.store.db import session_scope
from commerce_sync.store.models import OrderSeen

# The most recent earlier orders the store-wide figures are drawn from: a median of
# 2,000 is as good as of all, and the read stays small.
STORE_SAMPLE = 2000


def note_order_and_count(
    engine: Engine, pair: str, store_order_id: str, email_key: str, placed_at: datetime
) -> int:
    """Record the order (once) and count the orders of this e-mail (given as its hash,
    `email_key`) in the hour up to `placed_at`."""
    _record_once(
        engine,
        OrderSeen(
            pair=pair, store_order_id=store_order_id, email_key=email_key, placed_at=placed_at
        ),
    )
    return _orders_from_email_last_hour(engine, pair, email_key, placed_at)


@dataclass(frozen=True)
class OrderFacts:
    """One order as the anomaly checks remember it."""

    pair: str
    store_order_id: str
    email_key: str
    address_key: str
    placed_at: datetime
    currency: str
    total: Decimal
    billing_country: str
    shipping_country: str
    sku_quantities: dict[str, int]


@dataclass(frozen=True)
class SeenBefore:
    orders_from_email_last_hour: int
    history: OrderHistory
    history_orders: int  # the pair's earlier orders with facts, in the window
    first_seen: bool = False  # recorded now: no earlier run (or attempt) got this far


def record_order_and_history(
    engine: Engine, facts: OrderFacts, *, history_days: int, address_window_days: int
) -> SeenBefore:
    """Record the order (once: a retry or a re-run finds it) with its facts, and read what
    the pair's earlier orders say. Earlier means placed before this one and within
    `history_days`, so a retry reads the same history as its first attempt (orders that
    arrive late with an earlier `placed_at` aside)."""
    row = seen_row(facts)
    first_seen = _record_once(engine, row)
    if not first_seen:
        _fill_facts(engine, row)  # seen before the anomaly checks (a replayed old run)
    since = facts.placed_at - timedelta(days=history_days)
    earlier = (
        col(OrderSeen.pair) == facts.pair,
        col(OrderSeen.store_order_id) != facts.store_order_id,
        col(OrderSeen.placed_at) < facts.placed_at,
        col(OrderSeen.placed_at) >= since,
        col(OrderSeen.total).is_not(None),
    )
    # A SKU stored is its JSON string (json.dumps, ASCII-escaped, on both databases), so a
    # row whose text holds none of these names names none of the SKUs; the database
    # returns the text of the rows that do (SQLite's LIKE ignores ASCII case: a few more),
    # and decoding them tells exactly.
    stored = cast(col(OrderSeen.sku_quantities), Text)
    names = [stored.contains(json.dumps(sku), autoescape=True) for sku in facts.sku_quantities]
    naming_text = case((or_(*names), stored), else_=null()) if names else null()
    with session_scope(engine) as session:
        recent = _count_from_email_last_hour(session, facts.pair, facts.email_key, facts.placed_at)
        # Through the connection (Core), the totals as their text: the ORM's row loading
        # and its Decimal conversion of 2,000 rows cost more than the database's read.
        store_rows = (
            session.connection()
            .execute(
                sa_select(cast(col(OrderSeen.total), Text), naming_text)
                .where(*earlier, col(OrderSeen.currency) == facts.currency)
                .order_by(col(OrderSeen.placed_at).desc())
                .limit(STORE_SAMPLE)
            )
            .all()
        )
        customer_totals = session.exec(
            select(col(OrderSeen.total)).where(
                *earlier,
                OrderSeen.currency == facts.currency,
                OrderSeen.email_key == facts.email_key,
            )
        ).all()
        # Three counts over the same earlier orders, in one pass.
        billed = col(OrderSeen.billing_country) == facts.billing_country
        routed = and_(billed, col(OrderSeen.shipping_country) == facts.shipping_country)
        history_orders, billed_here, on_route = (
            int(count or 0)
            for count in session.exec(
                select(
                    func.count(),
                    func.sum(case((billed, 1), else_=0)),
                    func.sum(case((routed, 1), else_=0)),
                )
                .select_from(OrderSeen)
                .where(*earlier)
            ).one()
        )
        window_start = facts.placed_at - timedelta(days=address_window_days)
        other_emails = int(
            session.exec(
                select(func.count(func.distinct(OrderSeen.email_key))).where(
                    OrderSeen.pair == facts.pair,
                    OrderSeen.store_order_id != facts.store_order_id,
                    OrderSeen.address_key == facts.address_key,
                    OrderSeen.email_key != facts.email_key,
                    OrderSeen.placed_at < facts.placed_at,
                    OrderSeen.placed_at >= window_start,
                )
            ).one()
        )
    quantities: dict[str, list[int]] = {sku: [] for sku in facts.sku_quantities}
    for _total, text in store_rows:
        if not text:
            continue
        for sku, quantity in (json.loads(text) or {}).items():
            if sku in quantities:
                quantities[sku].append(int(quantity))
    history = OrderHistory(
        store_totals=[Decimal(total) for total, _text in store_rows if total is not None],
        customer_totals=[Decimal(total) for total in customer_totals if total is not None],
        sku_quantities=quantities,
        orders_billed_in_country=billed_here,
        orders_on_route=on_route,
        other_emails_at_address=other_emails,
    )
    return SeenBefore(recent, history, history_orders, first_seen)


def seen_row(facts: OrderFacts) -> OrderSeen:
    """The row that records an order's facts."""
    return OrderSeen(
        pair=facts.pair,
        store_order_id=facts.store_order_id,
        email_key=facts.email_key,
        placed_at=facts.placed_at,
        currency=facts.currency,
        total=facts.total,
        billing_country=facts.billing_country,
        shipping_country=facts.shipping_country,
        address_key=facts.address_key,
        sku_quantities=facts.sku_quantities,
    )


def _record_once(engine: Engine, row: OrderSeen) -> bool:
    """Insert `row`; False when the order was recorded before."""
    try:
        with session_scope(engine) as session:
            session.add(row)
        return True
    except IntegrityError:
        return False


def _fill_facts(engine: Engine, row: OrderSeen) -> None:
    with session_scope(engine) as session:
        found = session.exec(
            select(OrderSeen).where(
                OrderSeen.pair == row.pair, OrderSeen.store_order_id == row.store_order_id
            )
        ).one()
        if found.total is None:
            for name in (
                "currency",
                "total",
                "billing_country",
                "shipping_country",
                "address_key",
                "sku_quantities",
            ):
                setattr(found, name, getattr(row, name))
            session.add(found)


def _orders_from_email_last_hour(
    engine: Engine, pair: str, email_key: str, placed_at: datetime
) -> int:
    with session_scope(engine) as session:
        return _count_from_email_last_hour(session, pair, email_key, placed_at)


def _count_from_email_last_hour(
    session: Session, pair: str, email_key: str, placed_at: datetime
) -> int:
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
