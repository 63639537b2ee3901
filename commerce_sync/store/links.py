"""Cross-references between a pair's store and ERP ids (`links`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from commerce_sync.domain.models import utc_now
from commerce_sync.domain.stock_echo import LinkedOrder
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


@dataclass(frozen=True)
class OrderLinksSince:
    links: list[LinkedOrder]
    """Oldest first."""
    mark: int
    """The highest order link id of the pair now (the asked mark when none is higher)."""
    whole_after: int
    """Every matching link with a higher id is in `links`."""


def order_links_since(
    engine: Engine, pair: str, mark: int, skus: Iterable[str], looks: int
) -> OrderLinksSince:
    """The pair's order links with an id above `mark` whose quantities take one of `skus`,
    or are unknown (linked before they were kept). Looks at the newest `looks` links at
    most: when more were made since `mark`, the answer is whole only above the oldest
    one it looked at. Ids come from one sequence, so a link made after this answer has a
    higher id than its `mark`."""
    wanted = set(skus)
    with session_scope(engine) as session:
        rows = session.exec(
            select(Link.id, Link.store_id, Link.quantities)
            .where(Link.pair == pair, Link.kind == "order", col(Link.id) > mark)
            .order_by(col(Link.id).desc())
            .limit(looks + 1)
        ).all()
    looked = [(link_id or 0, store_id, quantities) for link_id, store_id, quantities in rows]
    whole_after = mark if len(looked) <= looks else looked[looks - 1][0] - 1
    looked = looked[:looks]
    return OrderLinksSince(
        links=[
            LinkedOrder(order_id=store_id, link_id=link_id, quantities=quantities)
            for link_id, store_id, quantities in reversed(looked)
            if quantities is None or wanted.intersection(quantities)
        ],
        mark=max([mark, *(link_id for link_id, _, _ in looked)]),
        whole_after=whole_after,
    )
