"""The customer tables on a real database: echo fingerprints (intended before a write,
read back after it) and the customer links a merge moves and puts back."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import select

from commerce_sync.config.pairs import load_pairs
from commerce_sync.domain.models import utc_now
from commerce_sync.intake.bodies import AcumaticaPush
from commerce_sync.intake.routing import acumatica_routes
from commerce_sync.store.customer_writes import (
    PENDING_FOR,
    created_here,
    echo_verdict,
    links_to_move,
    remember_created,
    remember_creating,
    remember_intent,
    remember_write,
    repoint_links,
    restore_links,
)
from commerce_sync.store.db import session_scope
from commerce_sync.store.links import find_erp_id, upsert_link
from commerce_sync.store.models import CustomerWrite

PAIR = "xcart-acumatica"


def test_a_customer_created_here_is_known_until_a_sync_writes_it(engine: Engine) -> None:
    """The order run's ERP customer create notes it; the ERP's announcement of that
    creation is then ours (`intake/dispatch.py` `own_creation`), until a customer sync
    writes the record (its fingerprints replace the note)."""
    assert not created_here(engine, "acumatica", "C7")
    remember_created(engine, "acumatica", "C7")
    assert created_here(engine, "acumatica", "C7")
    assert not created_here(engine, "brightpearl", "C7")
    # No record's digest: the note makes no read record an echo by itself.
    assert echo_verdict(engine, "acumatica", "C7", "a" * 64) == "new"
    remember_intent(engine, "acumatica", "C7", "a" * 64)
    remember_write(engine, "acumatica", "C7", "b" * 64)
    assert not created_here(engine, "acumatica", "C7")


def test_a_creation_announced_before_the_create_answered_is_known_by_e_mail(
    engine: Engine,
) -> None:
    """The push of a create can arrive before the create's answer: the note made before
    the create (by e-mail) covers it for `PENDING_FOR`."""
    remember_creating(engine, "acumatica", "Jane@Example.com")
    assert created_here(engine, "acumatica", "C9", "jane@example.com")
    assert not created_here(engine, "acumatica", "C9", "john@example.com")
    assert not created_here(engine, "acumatica", "C9")
    with session_scope(engine) as session:
        row = session.exec(
            select(CustomerWrite).where(CustomerWrite.customer_id == "creating:jane@example.com")
        ).one()
        row.written_at = utc_now() - PENDING_FOR - timedelta(seconds=1)
        session.add(row)
    assert not created_here(engine, "acumatica", "C9", "jane@example.com")


def test_only_a_creation_push_is_marked_as_one() -> None:
    """`CS-Customers`: an Inserted row alone is the customer's creation; an update is a
    Deleted + Inserted pair (docs/systems/acumatica.md §10) and is never dropped so."""
    pairs = load_pairs()
    row = {"CustomerID": "C8", "Email": "a@example.com"}
    push = {"Query": "CS-Customers", "CompanyId": "t", "Id": "1", "TimeStamp": 1}
    created = acumatica_routes(AcumaticaPush.model_validate({**push, "Inserted": [row]}), pairs)
    assert [r.announces_creation_of for r in created] == [("acumatica", "C8", "a@example.com")]
    updated = acumatica_routes(
        AcumaticaPush.model_validate({**push, "Inserted": [row], "Deleted": [row]}), pairs
    )
    assert [r.announces_creation_of for r in updated] == [None]


def test_an_event_arriving_before_the_write_is_read_back_is_an_echo(engine: Engine) -> None:
    assert echo_verdict(engine, "acumatica", "C1", "a" * 64) == "new"
    remember_intent(engine, "acumatica", "C1", "a" * 64)
    # The write's own event, before the write's answer came back: already recognised.
    assert echo_verdict(engine, "acumatica", "C1", "a" * 64) == "echo"
    # Another record state while our write is under way: wait for the read-back.
    assert echo_verdict(engine, "acumatica", "C1", "b" * 64) == "pending"
    # The system stored a value its own way: the read-back fingerprint counts too.
    remember_write(engine, "acumatica", "C1", "c" * 64)
    assert echo_verdict(engine, "acumatica", "C1", "c" * 64) == "echo"
    assert echo_verdict(engine, "acumatica", "C1", "a" * 64) == "echo"
    assert echo_verdict(engine, "acumatica", "C1", "b" * 64) == "new"
    assert echo_verdict(engine, "brightpearl", "C1", "c" * 64) == "new"


def test_an_intent_never_read_back_stops_holding_events(engine: Engine) -> None:
    remember_intent(engine, "kentico", "7", "a" * 64)
    with session_scope(engine) as session:
        row = session.exec(select(CustomerWrite)).one()
        row.written_at = utc_now() - PENDING_FOR - timedelta(seconds=1)
        session.add(row)
    assert echo_verdict(engine, "kentico", "7", "b" * 64) == "new"
    assert echo_verdict(engine, "kentico", "7", "a" * 64) == "echo"


def test_the_links_a_merge_moves_are_known_before_the_move(engine: Engine) -> None:
    """A lost answer of the move is retried: the retry moves nothing and answers nothing,
    so the compensation restores the rows read before the move."""
    upsert_link(engine, PAIR, "customer", "a+shop@x.com", "C2")
    upsert_link(engine, PAIR, "customer", "b@x.com", "C3")
    upsert_link(engine, PAIR, "customer", "c@x.com", "C9")
    planned = links_to_move(engine, PAIR, "erp", ["C2", "C3"], "C1")
    assert sorted(row[1:] for row in planned) == [("a+shop@x.com", "C2"), ("b@x.com", "C3")]
    assert sorted(repoint_links(engine, PAIR, "erp", ["C2", "C3"], "C1")) == sorted(planned)
    assert repoint_links(engine, PAIR, "erp", ["C2", "C3"], "C1") == []
    assert links_to_move(engine, PAIR, "erp", ["C2", "C3"], "C1") == []
    assert find_erp_id(engine, PAIR, "customer", "b@x.com") == "C1"
    restore_links(engine, planned)
    restore_links(engine, planned)
    assert find_erp_id(engine, PAIR, "customer", "a+shop@x.com") == "C2"
    assert find_erp_id(engine, PAIR, "customer", "b@x.com") == "C3"
    assert find_erp_id(engine, PAIR, "customer", "c@x.com") == "C9"


def test_a_store_merge_moves_one_link_to_an_unlinked_survivor(engine: Engine) -> None:
    upsert_link(engine, PAIR, "customer", "a+1@x.com", "C2")
    upsert_link(engine, PAIR, "customer", "a+2@x.com", "C3")
    planned = links_to_move(engine, PAIR, "store", ["a+2@x.com", "a+1@x.com"], "a@x.com")
    assert [row[1:] for row in planned] == [("a+1@x.com", "C2")]
    assert repoint_links(engine, PAIR, "store", ["a+2@x.com", "a+1@x.com"], "a@x.com") == planned
    # The survivor is linked now: nothing more moves.
    assert links_to_move(engine, PAIR, "store", ["a+2@x.com"], "a@x.com") == []
    assert find_erp_id(engine, PAIR, "customer", "a@x.com") == "C2"
