"""The application database, on SQLite and (when given) Postgres, migrated by alembic."""

import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from commerce_sync.store.db import migrate, session_scope
from commerce_sync.store.links import (
    find_erp_id,
    find_store_id,
    link_in,
    order_links_since,
    upsert_link,
)
from commerce_sync.store.models import DeadLetter, Link, WebhookEvent
from commerce_sync.store.orders_in_erp import record_order_in_erp


def test_migrations_create_the_tables_and_are_idempotent(engine: Engine) -> None:
    migrate(engine)  # a second start applies nothing and fails nothing
    tables = set(inspect(engine).get_table_names())
    assert {"webhook_events", "links", "dead_letters", "alembic_version"} <= tables


def test_webhook_events_are_unique_per_source_and_event_id(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(
            WebhookEvent(
                source="kentico", event_id="e1", event_type="order.created", workflow_id="w"
            )
        )
        session.add(
            WebhookEvent(source="xcart", event_id="e1", event_type="order.created", workflow_id="w")
        )
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(
            WebhookEvent(
                source="kentico", event_id="e1", event_type="order.created", workflow_id="w"
            )
        )
    with Session(engine) as session:
        assert len(session.exec(select(WebhookEvent)).all()) == 2


def test_links_upsert_is_idempotent_and_moves(engine: Engine) -> None:
    first = upsert_link(engine, "kentico-brightpearl", "order", "1042", "77")
    again = upsert_link(engine, "kentico-brightpearl", "order", "1042", "77")
    assert first.id == again.id
    assert find_erp_id(engine, "kentico-brightpearl", "order", "1042") == "77"
    assert find_store_id(engine, "kentico-brightpearl", "order", "77") == "1042"
    upsert_link(engine, "kentico-brightpearl", "order", "1042", "78")
    assert find_erp_id(engine, "kentico-brightpearl", "order", "1042") == "78"
    assert find_erp_id(engine, "xcart-acumatica", "order", "1042") is None
    with Session(engine) as session:
        assert len(session.exec(select(Link)).all()) == 1


def test_dead_letters_keep_payload_and_history(engine: Engine) -> None:
    with session_scope(engine) as session:
        letter = DeadLetter(
            pair="xcart-acumatica",
            process="order",
            business_key="order:xcart-acumatica:5",
            reason="unknown_sku",
            error="SKU NOPE-1 is not known to acumatica",
            payload={"order": "5", "lines": [{"sku": "NOPE-1", "quantity": 1}]},
            history=[{"event": "created"}],
        )
        session.add(letter)
    with Session(engine) as session:
        stored = session.exec(select(DeadLetter)).one()
        assert stored.payload["lines"][0]["sku"] == "NOPE-1"
        assert stored.history == [{"event": "created"}]
        assert stored.status == "open"


def test_concurrent_migrations_on_a_fresh_database_all_succeed(database_url: str) -> None:
    """The API and several workers start together on an empty database."""
    from concurrent.futures import ThreadPoolExecutor

    from commerce_sync.store.db import make_engine

    engines = [make_engine(database_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(migrate, engines))
        assert "links" in inspect(engines[0]).get_table_names()
    finally:
        for each in engines:
            each.dispose()


def test_an_order_in_the_erp_is_recorded_in_one_repeatable_transaction(engine: Engine) -> None:
    pair, key = "kentico-brightpearl", "order:kentico-brightpearl:1043"
    with session_scope(engine) as session:
        session.add(
            DeadLetter(
                pair=pair,
                process="order",
                business_key=key,
                reason="erp_unreachable",
                error="brightpearl: 503",
                payload={"order": "1043"},
                history=[{"event": "created"}],
            )
        )
    upsert_link(engine, pair, "customer", "ada@example.com", "200")  # an earlier order's

    def record() -> None:
        record_order_in_erp(
            engine,
            pair=pair,
            customer_email="Ada@Example.com",
            customer_id="201",
            store_order_id="1043",
            erp_order_id="88",
            business_key=key,
            quantities={"SKU-1": 2},
        )

    record()
    record()  # a retried create records the same again

    assert find_erp_id(engine, pair, "customer", "ada@example.com") == "201"
    assert find_erp_id(engine, pair, "order", "1043") == "88"
    with Session(engine) as session:
        assert len(session.exec(select(Link)).all()) == 2
        order_link = session.exec(select(Link).where(Link.kind == "order")).one()
        letter = session.exec(select(DeadLetter)).one()
    assert order_link.quantities == {"SKU-1": 2}
    assert letter.status == "resolved" and letter.resolved_at is not None
    assert [event["event"] for event in letter.history] == ["created", "resolved"]


def test_order_links_since_a_mark_answer_the_skus_asked_about(engine: Engine) -> None:
    """What the inventory push counts as the ERP's echo: order links above a mark, with
    their quantities, only those taking the SKUs asked about (or of unknown quantities),
    and whole above the oldest link it looked at."""
    pair = "xcart-acumatica"
    with session_scope(engine) as session:
        link_in(session, pair, "customer", "ada@example.com", "C1")  # not an order
        link_in(session, "kentico-brightpearl", "order", "9", "SO9", quantities={"W": 1})
        link_in(session, pair, "order", "1", "SO1", quantities={"W": 2})
        link_in(session, pair, "order", "2", "SO2")  # linked before quantities were kept
        link_in(session, pair, "order", "3", "SO3", quantities={"V": 1})
        link_in(session, pair, "order", "4", "SO4", quantities={"W": 1, "V": 4})
    ids = {link.store_id: link.id or 0 for link in _order_links(engine, pair)}

    everything = order_links_since(engine, pair, 0, ["W"], looks=100)
    assert [(link.order_id, link.quantities) for link in everything.links] == [
        ("1", {"W": 2}),
        ("2", None),
        ("4", {"W": 1, "V": 4}),
    ]
    assert everything.mark == ids["4"] and everything.whole_after == 0
    after_two = order_links_since(engine, pair, ids["2"], ["V"], looks=100)
    assert [link.order_id for link in after_two.links] == ["3", "4"]
    assert after_two.whole_after == ids["2"]
    # Looking at the newest two only: whole above the older of them.
    newest = order_links_since(engine, pair, 0, ["W", "V"], looks=2)
    assert [link.order_id for link in newest.links] == ["3", "4"]
    assert newest.whole_after == ids["3"] - 1 and newest.mark == ids["4"]
    nothing_new = order_links_since(engine, pair, ids["4"], ["W"], looks=100)
    assert nothing_new.links == [] and nothing_new.mark == ids["4"]


def _order_links(engine: Engine, pair: str) -> list[Link]:
    with Session(engine) as session:
        return list(session.exec(select(Link).where(Link.pair == pair, Link.kind == "order")))
