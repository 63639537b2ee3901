"""Accepted webhooks, recorded before the answer is sent; the relay's to-do list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from commerce_sync.domain.models import utc_now
from commerce_sync.store.db import session_scope
from commerce_sync.store.models import EventStatus, WebhookEvent

ANNOUNCED_TOLERANCE = timedelta(seconds=1)


def record_event(
    engine: Engine,
    *,
    source: str,
    event_id: str,
    event_type: str,
    workflow_id: str,
    payload: dict[str, Any],
) -> tuple[WebhookEvent, bool]:
    """Store the event; `(event, False)` when this (source, event id) was recorded before."""
    try:
        with session_scope(engine) as session:
            event = WebhookEvent(
                source=source,
                event_id=event_id,
                event_type=event_type,
                workflow_id=workflow_id,
                payload=payload,
            )
            session.add(event)
            session.flush()
            return event, True
    except IntegrityError:
        existing = find_event(engine, source, event_id)
        assert existing is not None
        return existing, False


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


def events_to_relay(engine: Engine, older_than: timedelta, limit: int = 100) -> list[WebhookEvent]:
    """Recorded events whose workflow start has not gone through (oldest first), except
    those waiting out their backoff, so a start Temporal keeps refusing never holds up
    the events behind it.

    `older_than` leaves a fresh event to the request that is starting it right now.
    """
    now = utc_now()
    cutoff = now - older_than
    with session_scope(engine) as session:
        return list(
            session.exec(
                select(WebhookEvent)
                .where(
                    WebhookEvent.status == EventStatus.RECEIVED,
                    or_(
                        col(WebhookEvent.received_at) <= cutoff,
                        col(WebhookEvent.start_attempts) > 0,
                    ),
                    or_(
                        col(WebhookEvent.next_attempt_at).is_(None),
                        col(WebhookEvent.next_attempt_at) <= now,
                    ),
                )
                .order_by(col(WebhookEvent.id))
                .limit(limit)
            ).all()
        )
