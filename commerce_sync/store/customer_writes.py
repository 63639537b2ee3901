"""Echo suppression and customer links for customer merge and sync.

`customer_writes` holds, per (system, customer id), the fingerprint of the record
commerce-sync last wrote: as intended, stored before the write, and as read back after
it. An incoming change whose current record has either fingerprint is our own write
coming back; one that arrives between the two (the write's answer is still on its way)
and matches neither waits for the read-back. Customer links (`links`, kind `customer`) tie
a store customer's e-mail to its ERP customer id (the order sync records them so).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from commerce_sync.contracts.customers import EchoVerdict
from commerce_sync.domain.models import utc_now
from commerce_sync.store.db import session_scope
from commerce_sync.store.models import CustomerWrite, Link
from commerce_sync.store.stamps import stored_utc

# A write not read back this long after it was intended has failed or its worker died:
# an event for the record no longer waits for it.
PENDING_FOR = timedelta(seconds=60)


def _upsert(engine: Engine, system: str, customer_id: str, **values: object) -> None:
    for _ in range(2):
        try:
            with session_scope(engine) as session:
                row = session.exec(
                    select(CustomerWrite).where(
                        CustomerWrite.system == system, CustomerWrite.customer_id == customer_id
                    )
                ).first()
                if row is None:
                    row = CustomerWrite(system=system, customer_id=customer_id)
                for name, value in values.items():
                    setattr(row, name, value)
                row.written_at = utc_now()
                session.add(row)
            return
        except IntegrityError:
            continue  # another worker inserted first: update theirs


def remember_intent(engine: Engine, system: str, customer_id: str, fingerprint: str) -> None:
    """Before a write: the record as commerce-sync means to write it. The change event the
    write raises may arrive before the write's answer does; it finds this."""
    _upsert(engine, system, customer_id, intended=fingerprint, pending=True)


def remember_write(engine: Engine, system: str, customer_id: str, fingerprint: str) -> None:
    """After a write: the record as read back (a system may store a value its own way)."""
    _upsert(engine, system, customer_id, fingerprint=fingerprint, pending=False)


CREATED_HERE = "created-by-commerce-sync"
"""The `fingerprint` of a customer an order run created and no sync has written since:
no record's digest, so it never makes a read record an echo by itself."""


def _creating(email: str) -> str:
    return f"creating:{email.strip().casefold()}"


def remember_creating(engine: Engine, system: str, email: str) -> None:
    """Before an order run's ERP customer create, whose id is not known yet: a customer
    with this e-mail is being created by commerce-sync. The ERP may announce the creation
    before the create's answer (and `remember_created`) is in; for `PENDING_FOR` after
    this note, an announcement of a new customer with this e-mail is taken for it."""
    _upsert(engine, system, _creating(email), fingerprint=CREATED_HERE, pending=True)


def remember_created(engine: Engine, system: str, customer_id: str) -> None:
    """An ERP customer the order run's create made (it is new, so nothing of ours was
    remembered for it): the ERP's announcement of that creation is commerce-sync's own
    write coming back, dropped before anything is read (`created_here`)."""
    _upsert(engine, system, customer_id, fingerprint=CREATED_HERE, pending=False)


def created_here(engine: Engine, system: str, customer_id: str, email: str = "") -> bool:
    """Whether commerce-sync created this customer (`remember_created`) and no write of a
    customer sync to it came since, or (`email`) was creating a customer with that e-mail
    less than `PENDING_FOR` ago (`remember_creating`)."""
    with session_scope(engine) as session:
        keys = [customer_id, *([_creating(email)] if email.strip() else [])]
        rows = session.exec(
            select(CustomerWrite).where(
                CustomerWrite.system == system, col(CustomerWrite.customer_id).in_(keys)
            )
        ).all()
    for row in rows:
        if row.fingerprint != CREATED_HERE:
            continue
        if row.customer_id == customer_id:
            return True
        if utc_now() - stored_utc(row.written_at) < PENDING_FOR:
            return True
    return False


def abandon_intent(engine: Engine, system: str, customer_id: str) -> None:
    """A write that failed for good: events for the record no longer wait for it (its
    intended fingerprint still counts, harmlessly: a record equal to it holds nothing new)."""
    _upsert(engine, system, customer_id, pending=False)


def echo_verdict(engine: Engine, system: str, customer_id: str, fingerprint: str) -> EchoVerdict:
    """`echo`: the record is what commerce-sync wrote (or is writing); `pending`: a write
    is under way and not read back yet, so the caller asks again shortly; `new`: a change
    made elsewhere."""
    with session_scope(engine) as session:
        row = session.exec(
            select(CustomerWrite).where(
                CustomerWrite.system == system, CustomerWrite.customer_id == customer_id
            )
        ).first()
        if row is None:
            return "new"
        if fingerprint in (row.fingerprint, row.intended):
            return "echo"
        if row.pending and utc_now() - stored_utc(row.written_at) < PENDING_FOR:
            return "pending"
    return "new"


def is_echo(engine: Engine, system: str, customer_id: str, fingerprint: str) -> bool:
    return echo_verdict(engine, system, customer_id, fingerprint) == "echo"


def _movable(
    session: Session, pair: str, side: str, old_keys: list[str], new_key: str
) -> list[Link]:
    """Customer links of `old_keys` (ERP ids, or store e-mails) to move to `new_key`. A
    store-side duplicate whose survivor has a link already keeps its own (the e-mail is
    unique); of several store-side duplicates without one, the first (lowest id) moves."""
    column = Link.erp_id if side == "erp" else Link.store_id
    rows = session.exec(
        select(Link)
        .where(Link.pair == pair, Link.kind == "customer", col(column).in_(old_keys))
        .order_by(col(Link.id))
    ).all()
    if side == "erp":
        return list(rows)
    survivor_linked = session.exec(
        select(Link.id).where(Link.pair == pair, Link.kind == "customer", Link.store_id == new_key)
    ).first()
    return [] if survivor_linked is not None else list(rows[:1])


def links_to_move(
    engine: Engine, pair: str, side: str, old_keys: list[str], new_key: str
) -> list[tuple[int, str, str]]:
    with session_scope(engine) as session:
        rows = _movable(session, pair, side, old_keys, new_key)
        return [(row.id or 0, row.store_id, row.erp_id) for row in rows]


def repoint_links(
    engine: Engine, pair: str, side: str, old_keys: list[str], new_key: str
) -> list[tuple[int, str, str]]:
    """Customer links of `old_keys` now name `new_key` (see `_movable`); answers each
    changed row as it was (id, store_id, erp_id), for `restore_links`."""
    changed: list[tuple[int, str, str]] = []
    with session_scope(engine) as session:
        for row in _movable(session, pair, side, old_keys, new_key):
            assert row.id is not None
            changed.append((row.id, row.store_id, row.erp_id))
            if side == "erp":
                row.erp_id = new_key
            else:
                row.store_id = new_key
            row.updated_at = utc_now()
            session.add(row)
    return changed


def restore_links(engine: Engine, rows: list[tuple[int, str, str]]) -> None:
    with session_scope(engine) as session:
        for link_id, store_id, erp_id in rows:
            link = session.get(Link, link_id)
            if link is not None:
                link.store_id, link.erp_id, link.updated_at = store_id, erp_id, utc_now()
                session.add(link)
