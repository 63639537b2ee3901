"""Accepted webhooks, recorded before the answer is sent; the relay's to-do list.

Recording is one transaction (an insert that does nothing on a repeated
(source, event id), so a redelivery to any API process finds the first record). The
relays of several API processes share the to-do list by claiming: a claim stamps
`next_attempt_at` a lease ahead, and its round's token, on events nobody holds, under
SQLite's single writer or Postgres's `FOR UPDATE SKIP LOCKED`, so no two relays start the
same event; a relay that dies with a claim leaves it to the others once the lease is over.

On SQLite no write here has a RETURNING clause. A statement with one keeps the database's
one write lock until its last row has been fetched, and between two fetches Python must
take its interpreter lock back: on a busy machine that is milliseconds a row, during which
every other process's webhook waits to be recorded (measured: the receivers' insert p99
went from 338 ms to 39 ms under CPU contention without it, README "Webhook ingest").
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table, or_, update
from sqlalchemy import select as select_rows
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select

from commerce_sync.domain.models import utc_now
from commerce_sync.store.db import session_scope
from commerce_sync.store.models import EventStatus, WebhookEvent

ANNOUNCED_TOLERANCE = timedelta(seconds=1)
CLAIM_LEASE = timedelta(seconds=60)
"""How long a relay's claim keeps the other relays off an event: far longer than a start
takes, short enough that an event claimed by a process that died is soon taken up."""

EVENTS: Table = WebhookEvent.__table__  # type: ignore[attr-defined]


@contextlib.contextmanager
def _one_statement(engine: Engine) -> Iterator[Connection]:
    """A transaction of one statement, committed by the database as it completes
    (autocommit): no lock is held while Python runs between the statement and a COMMIT,
    which under SQLite's one writer would hold up the other API processes' writes."""
    with engine.connect() as connection:
        single = connection.execution_options(isolation_level="AUTOCOMMIT")
        with single.begin():
            yield single


def _insert_or_nothing(values: dict[str, Any]) -> Insert:
    """`INSERT ... ON CONFLICT (source, event_id) DO NOTHING RETURNING id` (Postgres)."""
    statement = postgresql.insert(EVENTS).values(**values)
    conflict_free: Insert = statement.on_conflict_do_nothing(
        index_elements=["source", "event_id"]
    ).returning(EVENTS.c.id)
    return conflict_free


def record_event(
    engine: Engine,
    *,
    source: str,
    event_id: str,
    event_type: str,
    workflow_id: str,
    payload: dict[str, Any],
    started: bool = False,
    claim_for: timedelta | None = None,
) -> tuple[WebhookEvent, bool]:
    """Store the event in one transaction (one statement); `(event, False)` when this
    (source, event id) was recorded before (the first record is returned, read after).

    `started`: recorded as already started (its run was started by other means), so no
    relay takes it. `claim_for`: the caller starts it itself; the relays leave it alone
    that long (the caller's `mark_started` or `mark_start_failed` settles it)."""
    if engine.dialect.name not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"webhook events on {engine.dialect.name}")
    now = utc_now()
    values: dict[str, Any] = {
        "source": source,
        "event_id": event_id,
        "event_type": event_type,
        "workflow_id": workflow_id,
        "payload": payload,
        "status": EventStatus.STARTED if started else EventStatus.RECEIVED,
        "start_attempts": 1 if started else 0,
        "received_at": now,
        "started_at": now if started else None,
        "next_attempt_at": now + claim_for if claim_for is not None else None,
    }
    with _one_statement(engine) as connection:
        if engine.dialect.name == "sqlite":  # no RETURNING: see the module's docstring
            insert = sqlite.insert(EVENTS).values(**values)
            done = connection.execute(
                insert.on_conflict_do_nothing(index_elements=["source", "event_id"])
            )
            pk = done.lastrowid if done.rowcount == 1 else None
        else:
            pk = connection.execute(_insert_or_nothing(values)).scalar()
    if pk is None:  # recorded before (the record stays: only started ones are ever deleted)
        with engine.connect() as connection:
            row = connection.execute(
                select_rows(EVENTS).where(EVENTS.c.source == source, EVENTS.c.event_id == event_id)
            ).one()
        return WebhookEvent.model_validate(dict(row._mapping)), False
    return WebhookEvent.model_validate({"id": pk, **values}), True


def announced_since(engine: Engine, source: str, workflow_id: str, changed_at: datetime) -> bool:
    """Whether an event of `source` for `workflow_id` stamped at or after `changed_at` by
    the source itself (the body's `timestamp`, the store's clock like `changed_at`) was
    recorded: the change it announced is the one the change feed found. Event stamps
    are whole seconds where a record's stamp has fractions, hence the tolerance."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(WebhookEvent.payload).where(
                WebhookEvent.source == source, WebhookEvent.workflow_id == workflow_id
            )
        ).all()
    for payload in rows:
        body = payload.get("body") if isinstance(payload, dict) else None
        stamp = body.get("timestamp") if isinstance(body, dict) else None
        try:
            announced = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            continue
        if announced.tzinfo is None:
            announced = announced.replace(tzinfo=UTC)
        if announced >= changed_at - ANNOUNCED_TOLERANCE:
            return True
    return False


def find_event(engine: Engine, source: str, event_id: str) -> WebhookEvent | None:
    with session_scope(engine) as session:
        return session.exec(
            select(WebhookEvent).where(
                WebhookEvent.source == source, WebhookEvent.event_id == event_id
            )
        ).first()


def find_event_by_pk(engine: Engine, event_pk: int) -> WebhookEvent | None:
    with session_scope(engine) as session:
        return session.get(WebhookEvent, event_pk)


def requeue_event(engine: Engine, event_pk: int) -> WebhookEvent | None:
    """Hand a given-up event back to the relay (its dead letter was replayed)."""
    with session_scope(engine) as session:
        event = session.get(WebhookEvent, event_pk)
        if event is not None and event.status == EventStatus.FAILED:
            event.status = EventStatus.RECEIVED
            event.start_attempts = 0
            event.next_attempt_at = None
            session.add(event)
        return event


def mark_started(engine: Engine, event_pk: int) -> None:
    with session_scope(engine) as session:
        event = session.get(WebhookEvent, event_pk)
        if event is not None and event.status != EventStatus.STARTED:
            event.status = EventStatus.STARTED
            event.started_at = utc_now()
            event.start_attempts += 1
            event.last_error = None
            session.add(event)


def mark_start_failed(
    engine: Engine, event_pk: int, error: str, *, retry_in: timedelta | None = None
) -> None:
    """One more failed start; with `retry_in`, the relay leaves the event alone that long."""
    with session_scope(engine) as session:
        event = session.get(WebhookEvent, event_pk)
        if event is not None and event.status != EventStatus.STARTED:
            event.start_attempts += 1
            event.last_error = error[:2000]
            event.next_attempt_at = utc_now() + retry_in if retry_in is not None else None
            session.add(event)


def mark_failed(engine: Engine, event_pk: int, error: str) -> None:
    """The relay gives the event up (its dead letter holds it): it is no longer tried."""
    with session_scope(engine) as session:
        event = session.get(WebhookEvent, event_pk)
        if event is not None and event.status == EventStatus.RECEIVED:
            event.status = EventStatus.FAILED
            event.last_error = error[:2000]
            session.add(event)


def claim_events(
    engine: Engine, limit: int = 100, lease: timedelta = CLAIM_LEASE
) -> list[WebhookEvent]:
    """Claim up to `limit` recorded events whose start has not gone through (oldest
    first) for this relay alone: those another relay holds, and those waiting out a
    refusal's backoff, are passed over. One transaction."""
    now = utc_now()
    pending = (
        select_rows(EVENTS.c.id)
        .where(
            EVENTS.c.status == EventStatus.RECEIVED,
            or_(EVENTS.c.next_attempt_at.is_(None), EVENTS.c.next_attempt_at <= now),
        )
        .order_by(EVENTS.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # Postgres; SQLite's one writer needs nothing
    )
    token = secrets.token_hex(16)
    claim = (
        update(EVENTS)
        .where(EVENTS.c.id.in_(pending.scalar_subquery()))
        .values(next_attempt_at=now + lease, claim=token)
    )
    with _one_statement(engine) as connection:  # no RETURNING: see the module's docstring
        if not connection.execute(claim).rowcount:
            return []
    with engine.connect() as connection:  # a read: no lock held while the rows come
        rows = connection.execute(
            select_rows(EVENTS).where(
                EVENTS.c.claim == token, EVENTS.c.status == EventStatus.RECEIVED
            )
        ).all()
    events = [WebhookEvent.model_validate(dict(row._mapping)) for row in rows]
    return sorted(events, key=lambda event: event.id or 0)


def mark_started_many(engine: Engine, event_pks: Sequence[int]) -> None:
    """The starts of these events went through: one transaction for the lot."""
    if not event_pks:
        return
    with _one_statement(engine) as connection:
        connection.execute(
            update(EVENTS)
            .where(EVENTS.c.id.in_(list(event_pks)), EVENTS.c.status != EventStatus.STARTED)
            .values(
                status=EventStatus.STARTED,
                started_at=utc_now(),
                start_attempts=EVENTS.c.start_attempts + 1,
                last_error=None,
                next_attempt_at=None,
            )
        )


def release_events(engine: Engine, event_pks: Sequence[int], error: str | None) -> None:
    """Hand claimed events back to the to-do list at once. With `error` (Temporal could
    not be reached for them) one more attempt each is counted; without, they were not
    tried (the relay waits for Temporal, not each event)."""
    if not event_pks:
        return
    values: dict[str, Any] = {"next_attempt_at": None}
    if error is not None:
        values |= {"start_attempts": EVENTS.c.start_attempts + 1, "last_error": error[:2000]}
    with _one_statement(engine) as connection:
        connection.execute(
            update(EVENTS)
            .where(EVENTS.c.id.in_(list(event_pks)), EVENTS.c.status == EventStatus.RECEIVED)
            .values(**values)
        )
