"""What the anomaly checks learn from: the orders a pair has seen, in the app database
(SQLite, and Postgres when given), recorded once per order and read back as the
history of the orders placed before it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import SQLModel

from commerce_sync.store.orders_seen import (
    OrderFacts,
    note_order_and_count,
    record_order_and_history,
)

PAIR = "kentico-brightpearl"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def facts(
    order_id: str,
    *,
    minutes_ago: float,
    total: str = "20.00",
    email: str = "e-a",
    address: str = "addr-1",
    billed: str = "US",
    shipped: str = "US",
    skus: dict[str, int] | None = None,
    currency: str = "USD",
    pair: str = PAIR,
) -> OrderFacts:
    return OrderFacts(
        pair=pair,
        store_order_id=order_id,
        email_key=email,
        address_key=address,
        placed_at=NOW - timedelta(minutes=minutes_ago),
        currency=currency,
        total=Decimal(total),
        billing_country=billed,
        shipping_country=shipped,
        sku_quantities=skus if skus is not None else {"WIDGET-1": 2},
    )


def record(engine: Engine, order: OrderFacts) -> None:
    record_order_and_history(engine, order, history_days=180, address_window_days=30)


def test_the_history_is_the_pairs_earlier_orders_and_a_retry_reads_the_same(
    engine: Engine,
) -> None:
    record(engine, facts("1", minutes_ago=300, total="10.00", email="e-a"))
    record(engine, facts("2", minutes_ago=200, total="30.00", email="e-b", shipped="CA"))
    record(engine, facts("3", minutes_ago=100, total="50.00", email="e-a", skus={"GADGET": 1}))
    record(engine, facts("4", minutes_ago=90, total="70.00", currency="EUR"))  # other currency
    record(engine, facts("5", minutes_ago=80, total="999.00", pair="xcart-acumatica"))
    record(engine, facts("later", minutes_ago=-60, total="500.00", email="e-c"))  # after it
    record(engine, facts("old", minutes_ago=200 * 24 * 60, total="900.00"))  # out of window

    order = facts("now", minutes_ago=0, total="40.00", email="e-a", skus={"WIDGET-1": 5})
    first = record_order_and_history(engine, order, history_days=180, address_window_days=30)
    history = first.history
    assert sorted(history.store_totals) == [Decimal("10"), Decimal("30"), Decimal("50")]
    assert sorted(history.customer_totals) == [Decimal("10"), Decimal("50")]
    assert history.sku_quantities == {"WIDGET-1": [2, 2]}
    assert (history.orders_billed_in_country, history.orders_on_route) == (4, 3)
    # e-b shipped to the same address (e-a is this order's own e-mail; e-c came later)
    assert history.other_emails_at_address == 1
    assert first.history_orders == 4  # the pair's earlier orders, any currency
    assert first.orders_from_email_last_hour == 1  # this one (order 3 is 100 minutes back)

    again = record_order_and_history(engine, order, history_days=180, address_window_days=30)
    # A retry records nothing twice and reads the same; only it is not the first to see it.
    assert first.first_seen and not again.first_seen
    assert replace(again, first_seen=True) == first


def test_the_quantities_of_this_orders_skus_are_found_whatever_their_names(
    engine: Engine,
) -> None:
    """Only rows whose stored JSON names one of the order's SKUs are decoded: names with
    accents, quotes, backslashes, a pattern's wildcards and its escape character, a name
    inside another one, and one differing only in case, still count exactly."""
    odd = {"Café crème": 1, 'Mug "XL"': 2, "C:\\bin": 3, "WIDGET": 4, "50%_OFF/1": 6}
    record(engine, facts("1", minutes_ago=30, skus={**odd, "WIDGET-1": 9}))
    record(engine, facts("2", minutes_ago=20, skus={"WIDGET-10": 7, "Cafe creme": 8}))
    record(engine, facts("3", minutes_ago=10, skus={"Café crème": 5, "widget": 11}))
    record(engine, facts("4", minutes_ago=5, skus={"50% OFF/1": 12, "50X_OFF/1": 13}))
    order = facts("now", minutes_ago=0, skus={**odd, "GADGET": 1})
    history = record_order_and_history(
        engine, order, history_days=180, address_window_days=30
    ).history
    assert history.sku_quantities == {
        "Café crème": [5, 1],
        'Mug "XL"': [2],
        "C:\\bin": [3],
        "WIDGET": [4],
        "50%_OFF/1": [6],
        "GADGET": [],
    }


def test_an_order_seen_before_the_checks_gets_its_facts_on_its_next_run(engine: Engine) -> None:
    note_order_and_count(engine, PAIR, "1", "e-a", NOW - timedelta(minutes=10))
    record(engine, facts("1", minutes_ago=10, total="25.00"))
    later = record_order_and_history(
        engine, facts("2", minutes_ago=0), history_days=180, address_window_days=30
    )
    assert later.history.store_totals == [Decimal("25")]


def test_only_the_first_record_of_an_order_says_it_is_first_seen(engine: Engine) -> None:
    """What lets the first run of a store order create its ERP order without a lookup
    (`OrderAssessment.first_run`): a later run, or a retry, finds the order recorded."""

    def seen(order_id: str) -> bool:
        return record_order_and_history(
            engine, facts(order_id, minutes_ago=5), history_days=180, address_window_days=30
        ).first_seen

    assert seen("1")
    assert not seen("1")
    note_order_and_count(engine, PAIR, "2", "e-a", NOW)  # a run recorded before the checks
    assert not seen("2")


def test_the_migrations_build_exactly_the_tables_the_models_describe(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []
