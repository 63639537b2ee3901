"""The relay: starts recorded webhook events whose workflow start did not go through.

Runs inside every API process. Two relays picking the same event are harmless: the
start is idempotent on the workflow id.

While Temporal is unreachable every event simply waits. An event that Temporal (or the
routing, after a pairs.toml change) refuses is held back with a growing backoff, so it
never stands in front of newer events; after `max_refusals` it is given up: its status
becomes `failed`, a dead letter names it (replaying the letter puts it back in the
relay's hands) and an alert goes out. The event itself, body included, stays recorded.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import Engine

from commerce_sync.config.pairs import PairConfig
from commerce_sync.intake.dispatch import StartOutcome, refuse_start, routes_for, start_recorded
from commerce_sync.intake.links import TemporalLink
from commerce_sync.ops.alerts import Notifier
from commerce_sync.store.alerts import record_alert
from commerce_sync.store.dead_letters import record_dead_letter, resolve_dead_letters
from commerce_sync.store.events import events_to_relay, find_event_by_pk, mark_failed
from commerce_sync.store.models import WebhookEvent

log = logging.getLogger(__name__)

MAX_REFUSALS = 8
"""Refused starts before an event is given up (about 8 minutes of backoff in all)."""


def event_letter_key(event: WebhookEvent) -> str:
    """The business key of a given-up event's dead letter."""
    return f"webhook:{event.source}:{event.event_id}"


async def relay_once(
    engine: Engine,
    temporal: TemporalLink,
    pairs: dict[str, PairConfig],
    task_queue: str,
    *,
    notifier: Notifier | None = None,
    max_refusals: int = MAX_REFUSALS,
) -> int:
    """Start what is pending; returns how many events were started."""
    if temporal.client is None:
        return 0
    pending = await asyncio.to_thread(events_to_relay, engine, timedelta(seconds=5))
    started = 0
    for event in pending:
        try:
            routes = routes_for(event.source, event.payload["body"], event.event_id, pairs)
        except Exception as exc:  # recorded under other pairs; it cannot be routed now
            await refuse_start(engine, event, f"routing: {type(exc).__name__}: {exc}")
            outcome = StartOutcome.REFUSED
            pair = ""
        else:
            outcome = await start_recorded(engine, temporal, event, routes, task_queue)
            pair = str(getattr(routes[0].arg, "pair", "")) if routes else ""
        if outcome is StartOutcome.STARTED:
            started += 1
            log.info("relayed %s event %s to %s", event.source, event.event_id, event.workflow_id)
            if event.start_attempts:
                await asyncio.to_thread(
                    resolve_dead_letters, engine, event_letter_key(event), "started by the relay"
                )
        elif outcome is StartOutcome.REFUSED and event.start_attempts + 1 >= max_refusals:
            await give_up(engine, event, pair, notifier)
    return started


async def give_up(
    engine: Engine, event: WebhookEvent, pair: str, notifier: Notifier | None
) -> None:
    """Stop trying the event: mark it failed, record a dead letter and raise an alert."""
    assert event.id is not None
    current = await asyncio.to_thread(find_event_by_pk, engine, event.id)
    error = (current.last_error if current else None) or "start refused"
    await asyncio.to_thread(mark_failed, engine, event.id, error)
    key = event_letter_key(event)
    await asyncio.to_thread(
        lambda: record_dead_letter(
            engine,
            pair=pair,
            process="intake",
            business_key=key,
            reason="webhook event could not be started",
            error=error,
            payload={
                "webhook_event": event.id,
                "source": event.source,
                "event_id": event.event_id,
                "event_type": event.event_type,
                "workflow_id": event.workflow_id,
            },
            attempts=event.start_attempts + 1,
            dedupe_key=f"webhook-event:{event.id}",
        )
    )
    message = (
        f"{event.source} event {event.event_id} ({event.event_type}) could not be started "
        f"after {event.start_attempts + 1} tries: {error[:300]}"
    )
    new = await asyncio.to_thread(
        lambda: record_alert(
            engine,
            dedupe_key=f"webhook-event:{event.id}",
            kind="webhook_not_started",
            key=key,
            message=message,
        )
    )
    if new:
        log.warning("ALERT webhook_not_started %s: %s", key, message)
        if notifier is not None:
            await asyncio.to_thread(notifier.send, "webhook_not_started", key, message)


async def run_relay(
    engine: Engine,
    temporal: TemporalLink,
    pairs: dict[str, PairConfig],
    task_queue: str,
    every_s: float = 2.0,
    *,
    notifier: Notifier | None = None,
) -> None:
    while True:
        try:
            await relay_once(engine, temporal, pairs, task_queue, notifier=notifier)
        except Exception:  # never let the relay die; the next round tries again
            log.exception("relay round failed")
        await asyncio.sleep(every_s)
