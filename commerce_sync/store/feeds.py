"""Where each change feed has read up to, and how its last reads went (`feed_marks`).

A feed reads the changes in [mark - overlap, now) and, once every change of that read
was handled, moves its mark to the read's start: a read that fails leaves the mark
where it was, so the next one covers the same changes again (starting a run is
idempotent). The mark only moves forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from commerce_sync.store.db import session_scope
from commerce_sync.store.models import FeedMark
from commerce_sync.store.stamps import stored_utc, stored_utc_or_none


@dataclass(frozen=True)
class FeedState:
    pair: str
    entity: str
    mark: datetime
    last_success_at: datetime | None
    last_seen: int
    last_started: int
    last_error: str
    last_error_at: datetime | None


def _state(row: FeedMark) -> FeedState:
    return FeedState(
        pair=row.pair,
        entity=row.entity,
        mark=stored_utc(row.mark),
        last_success_at=stored_utc_or_none(row.last_success_at),
        last_seen=row.last_seen,
        last_started=row.last_started,
        last_error=row.last_error,
        last_error_at=stored_utc_or_none(row.last_error_at),
    )


def feed_mark(engine: Engine, pair: str, entity: str, first: datetime) -> datetime:
    """The feed's mark; `first` (recorded as its mark) when the feed never read."""
    try:
        with session_scope(engine) as session:
            session.add(FeedMark(pair=pair, entity=entity, mark=first))
    except IntegrityError:
        pass  # it has one
    with session_scope(engine) as session:
        row = session.exec(
            select(FeedMark).where(FeedMark.pair == pair, FeedMark.entity == entity)
        ).one()
        return stored_utc(row.mark)


def record_read(
    engine: Engine,
    pair: str,
    entity: str,
    *,
    read_from: datetime,
    at: datetime,
    seen: int,
    started: int,
) -> None:
    """A read that handled every change it found: the mark moves to `read_from` (never back)."""
    with session_scope(engine) as session:
        row = session.exec(
            select(FeedMark).where(FeedMark.pair == pair, FeedMark.entity == entity)
        ).one()
        row.mark = max(stored_utc(row.mark), read_from)
        row.last_success_at = at
        row.last_seen, row.last_started = seen, started
        row.last_error = ""
        session.add(row)


def record_failure(engine: Engine, pair: str, entity: str, *, at: datetime, error: str) -> None:
    with session_scope(engine) as session:
        row = session.exec(
            select(FeedMark).where(FeedMark.pair == pair, FeedMark.entity == entity)
        ).one_or_none()
        if row is None:
            return
        row.last_error, row.last_error_at = error[:2000], at
        session.add(row)


def feed_states(engine: Engine) -> list[FeedState]:
    with session_scope(engine) as session:
        rows = session.exec(select(FeedMark).order_by(FeedMark.pair, FeedMark.entity)).all()
        return [_state(row) for row in rows]
