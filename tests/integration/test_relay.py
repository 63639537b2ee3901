"""The relay against a real Temporal server and database: an event whose start is refused
backs off instead of standing in front of newer events, and after its last try it is
given up into a dead letter and an alert, which a replay hands back to the relay."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client

from commerce_sync.commands.dead_letter_replay import replay_dead_letter
from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import Settings
from commerce_sync.intake.dispatch import refusal_backoff
from commerce_sync.intake.links import TemporalLink
from commerce_sync.intake.relay import event_letter_key, relay_once
from commerce_sync.store.models import Alert, DeadLetter, EventStatus, WebhookEvent


def _record(engine: Engine, source: str, event_type: str, body: dict[str, Any]) -> int:
    """An accepted event whose start has not gone through (as after an outage)."""
    with Session(engine) as session:
        event = WebhookEvent(
            source=source,
            event_id=f"relay-{uuid.uuid4().hex}",
            event_type=event_type,
            workflow_id="",
            payload={"body": body},
            received_at=datetime.now(UTC) - timedelta(minutes=1),
        )
        session.add(event)
        session.commit()
        assert event.id is not None
        return event.id


def _poison(engine: Engine) -> int:
    """A goods-out note whose ID set no longer routes (recorded by an older receiver)."""
    body = {
        "accountCode": "sandbox",
        "resourceType": "goods-out-note",
        "id": "12-x",
        "lifecycleEvent": "modified",
        "fullEvent": "goods-out-note.modified.shipped",
    }
    return _record(engine, "brightpearl", "goods-out-note.modified.shipped", body)


def _event(engine: Engine, pk: int) -> WebhookEvent:
    with Session(engine) as session:
        event = session.get(WebhookEvent, pk)
        assert event is not None
        return event


def _link(client: Client) -> TemporalLink:
    async def connect() -> Client:
        return client

    link = TemporalLink(connect)
    link.client = client
    return link


def _next_attempt(engine: Engine, pk: int) -> datetime:
    found = _event(engine, pk).next_attempt_at
    assert found is not None
    return found.replace(tzinfo=UTC)


async def test_refused_events_back_off_and_never_hold_up_newer_ones(
    temporal_client: Client, engine: Engine, settings: Settings
) -> None:
    pairs = load_pairs(settings.pairs_file)
    queue = f"relay-test-{uuid.uuid4().hex[:8]}"  # no worker: a start is all this needs
    poison = [_poison(engine) for _ in range(120)]
    order_id = uuid.uuid4().hex[:12]
    order_event = {
        "type": "order.created",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"id": order_id, "store": "kentico"},
    }
    good = _record(engine, "kentico", "order.created", json.loads(json.dumps(order_event)))
    link = _link(temporal_client)

    began = datetime.now(UTC)
    rounds = 0
    while _event(engine, good).status != EventStatus.STARTED:
        rounds += 1
        assert rounds <= 2, "the good event is still held up behind refused ones"
        await relay_once(engine, link, pairs, queue)
    workflow_id = f"order:kentico-brightpearl:{order_id}"
    await temporal_client.get_workflow_handle(workflow_id).describe()  # it exists

    first_wait = refusal_backoff(0)
    for pk in poison:
        event = _event(engine, pk)
        assert event.status == EventStatus.RECEIVED and event.start_attempts == 1
        assert event.next_attempt_at is not None
        assert event.next_attempt_at.replace(tzinfo=UTC) >= began + first_wait
        assert "routing" in (event.last_error or "")
    # Held back: another round tries none of those whose backoff has not passed (all of
    # them but on a machine so busy that the rounds above took longer than the backoff).
    now = datetime.now(UTC)
    held = [pk for pk in poison if _next_attempt(engine, pk) > now]
    await relay_once(engine, link, pairs, queue)
    assert {_event(engine, pk).start_attempts for pk in held} <= {1}
    await temporal_client.get_workflow_handle(workflow_id).terminate("test over")


async def test_an_event_refused_to_the_last_try_becomes_a_dead_letter_and_an_alert(
    temporal_client: Client, engine: Engine, settings: Settings
) -> None:
    pairs = load_pairs(settings.pairs_file)
    pk = _poison(engine)
    link = _link(temporal_client)
    await relay_once(engine, link, pairs, "unused", max_refusals=1)

    event = _event(engine, pk)
    assert event.status == EventStatus.FAILED
    with Session(engine) as session:
        letters = list(session.exec(select(DeadLetter)).all())
        alerts = list(session.exec(select(Alert)).all())
    assert [(letter.process, letter.business_key) for letter in letters] == [
        ("intake", event_letter_key(event))
    ]
    assert letters[0].payload["webhook_event"] == pk
    assert "12-x" in letters[0].error
    assert [(alert.kind, alert.key) for alert in alerts] == [
        ("webhook_not_started", event_letter_key(event))
    ]
    # Given up: the relay no longer tries it, and nothing else is recorded again.
    await relay_once(engine, link, pairs, "unused", max_refusals=1)
    assert _event(engine, pk).start_attempts == 1

    assert letters[0].id is not None
    replayed = await replay_dead_letter(engine, temporal_client, "unused", letters[0].id, by="ops")
    assert replayed.history[-1]["by"] == "ops"
    event = _event(engine, pk)
    assert event.status == EventStatus.RECEIVED and event.start_attempts == 0
