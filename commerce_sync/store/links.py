"""Cross-references between a pair's store and ERP ids (`links`)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from commerce_sync.domain.models import utc_now
from commerce_sync.store.db import session_scope
from commerce_sync.store.models import Link


def upsert_link(engine: Engine, pair: str, kind: str, store_id: str, erp_id: str) -> Link:
    """Record (or move) the link; safe to repeat, and safe when two writers race."""
    for _ in range(2):
        try:
            with session_scope(engine) as session:
                return link_in(session, pair, kind, store_id, erp_id)
        except IntegrityError:
            continue  # the other writer inserted first: read and update theirs
    raise RuntimeError(f"could not record link {pair}/{kind}/{store_id}")


def link_in(
    session: Session,
    pair: str,
    kind: str,
    store_id: str,
    erp_id: str,
    *,
    quantities: dict[str, int] | None = None,
) -> Link:
    """Record (or move) the link within the caller's transaction. Two writers racing to
    insert it: the second commit raises IntegrityError, and its caller tries again.

    `quantities` (orders) is written with a new link only: the inventory push counts an
    order by the link's `id`, so a link recorded before carrying them stays uncounted."""
    statement = select(Link).where(Link.pair == pair, Link.kind == kind, Link.store_id == store_id)
    link = session.exec(statement).first()
    if link is None:
        link = Link(pair=pair, kind=kind, store_id=store_id, erp_id=erp_id, quantities=quantities)
    elif link.erp_id != erp_id:
        link.erp_id, link.updated_at = erp_id, utc_now()
    session.add(link)
    session.flush()
    return link


def find_erp_id(engine: Engine, pair: str, kind: str, store_id: str) -> str | None:
    with session_scope(engine) as session:
        statement = select(Link.erp_id).where(
            Link.pair == pair, Link.kind == kind, Link.store_id == store_id
        )
        return session.exec(statement).first()


def find_store_id(engine: Engine, pair: str, kind: str, erp_id: str) -> str | None:
    with session_scope(engine) as session:
        statement = select(Link.store_id).where(
            Link.pair == pair, Link.kind == kind, Link.erp_id == erp_id
        )
        return session.exec(statement).first()
