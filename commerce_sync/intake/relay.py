"""The relay: starts the workflows of recorded webhook events.

The receiver only records an event (one transaction) and rings the relay's bell; the
relay of the same process then claims what is pending (that event and any others) and
starts their runs. Every API process runs one: claims (store/events.py) keep two relays
off the same event, and the starts are idempotent on the workflow id besides. A round
costs two transactions however many events it takes: the claim and the settling of the
lot; only refusals are written one by one.

While Temporal is unreachable every event simply waits. An event that Temporal (or the
routing, after a pairs.toml change) refuses is held back with a growing backoff, so it
never stands in front of newer events; after `max_refusals` it is given up: its status
becomes `failed`, a dead letter names it (replaying the letter puts it back in the
relay's hands) and an alert goes out. The event itself, body included, stays recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy import Engine
from temporalio.client import Client

from commerce_sync.config.pairs import PairConfig
from commerce_sync.intake.dispatch import (
    StartOutcome,
    dispatch,
    own_creation,
    refuse_start,
    routes_for,
    temporal_unavailable,
)
from commerce_sync.intake.links import TemporalLink
from commerce_sync.intake.trace_context import continued
from commerce_sync.ops.alerts import Notifier
from commerce_sync.store.alerts import record_alert
from commerce_sync.store.dead_letters import record_dead_letter, resolve_dead_letters
from commerce_sync.store.events import (
    claim_events,
    find_event_by_pk,
    mark_failed,
    mark_started_many,
    release_events,
)
from commerce_sync.store.models import WebhookEvent

log = logging.getLogger(__name__)

MAX_REFUSALS = 8
"""Refused starts before an event is given up (about 8 minutes of backoff in all)."""
BATCH = 100
"""Events claimed per round."""
CONCURRENT_STARTS = 16
"""Starts in flight at once in a round (events of one workflow go one after another)."""


def event_letter_key(event: WebhookEvent) -> str:
    """The business key of a given-up event's dead letter."""
    return f"webhook:{event.source}:{event.event_id}"


class RelayBell:
    """Rung by the receiver once an event is recorded, so the relay starts it now rather
    than at its next round."""

    def __init__(self) -> None:
        self._rung = asyncio.Event()

    def ring(self) -> None:
        self._rung.set()

    async def wait(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._rung.wait(), timeout_s)
        self._rung.clear()


@dataclass
class RelayRound:
    claimed: int = 0
    started: int = 0
    waiting: int = 0
    """Events left for later because Temporal could not be reached."""


@dataclass
class _Outcome:
    event: WebhookEvent
    outcome: StartOutcome
    pair: str = ""
    error: str = ""


async def _start_one(
    engine: Engine, client: Client, event: WebhookEvent, pairs: dict[str, PairConfig], queue: str
) -> _Outcome:
    try:
        routes = routes_for(event.source, event.payload["body"], event.event_id, pairs)
    except Exception as exc:  # recorded under other pairs; it cannot be routed now
        await refuse_start(engine, event, f"routing: {type(exc).__name__}: {exc}")
        return _Outcome(event, StartOutcome.REFUSED)
    pair = str(getattr(routes[0].arg, "pair", "")) if routes else ""
    try:
        with continued(event.payload.get("trace")):
            for route in routes:
                if not await own_creation(engine, route):
                    await dispatch(client, route, queue)
    except Exception as exc:  # Temporal down or refusing
        error = f"{type(exc).__name__}: {exc}"
        if temporal_unavailable(exc):
            return _Outcome(event, StartOutcome.WAITING, pair, error)
        log.warning("start of %s refused: %s", event.workflow_id, type(exc).__name__)
        await refuse_start(engine, event, error)
        return _Outcome(event, StartOutcome.REFUSED, pair, error)
    return _Outcome(event, StartOutcome.STARTED, pair)


async def relay_once(
    engine: Engine,
    temporal: TemporalLink,
    pairs: dict[str, PairConfig],
    task_queue: str,
    *,
    notifier: Notifier | None = None,
    max_refusals: int = MAX_REFUSALS,
    limit: int = BATCH,
) -> RelayRound:
    """Claim what is pending and start it."""
    client = temporal.client
    if client is None:
        return RelayRound()
    claimed = await asyncio.to_thread(claim_events, engine, limit)
    if not claimed:
        return RelayRound()
    # Events of one workflow keep their order (a cancel after its create); others overlap.
    groups: dict[str, list[WebhookEvent]] = {}
    for event in claimed:
        groups.setdefault(event.workflow_id or f"event:{event.id}", []).append(event)
    gate = asyncio.Semaphore(CONCURRENT_STARTS)
    outcomes: list[_Outcome] = []
    untried: list[WebhookEvent] = []

    async def one_group(events: list[WebhookEvent]) -> None:
        async with gate:
            for index, event in enumerate(events):
                outcome = await _start_one(engine, client, event, pairs, task_queue)
                outcomes.append(outcome)
                if outcome.outcome is StartOutcome.WAITING:
                    untried.extend(events[index + 1 :])
                    return

    await asyncio.gather(*(one_group(events) for events in groups.values()))
    started = [o.event for o in outcomes if o.outcome is StartOutcome.STARTED]
    waiting = [o for o in outcomes if o.outcome is StartOutcome.WAITING]
    await asyncio.to_thread(mark_started_many, engine, [e.id for e in started if e.id])
    if waiting:
        error = waiting[0].error
        log.warning("Temporal unreachable; %d events wait: %s", len(waiting), error[:200])
        await asyncio.to_thread(
            release_events, engine, [o.event.id for o in waiting if o.event.id], error
        )
    if untried:
        await asyncio.to_thread(release_events, engine, [e.id for e in untried if e.id], None)
    for event in started:
        if event.start_attempts:
            await asyncio.to_thread(
                resolve_dead_letters, engine, event_letter_key(event), "started by the relay"
            )
    for outcome in outcomes:
        refused = outcome.outcome is StartOutcome.REFUSED
        if refused and outcome.event.start_attempts + 1 >= max_refusals:
            await give_up(engine, outcome.event, outcome.pair, notifier)
    return RelayRound(len(claimed), len(started), len(waiting) + len(untried))


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
    bell: RelayBell | None = None,
) -> None:
    """Rounds until cancelled: at once when the bell rings or a full batch suggests more
    is pending, else every `every_s` (events other processes recorded, leases run out,
    backoffs over); while Temporal is unreachable, only every `every_s`."""
    bell = bell or RelayBell()
    while True:
        try:
            done = await relay_once(engine, temporal, pairs, task_queue, notifier=notifier)
        except Exception:  # never let the relay die; the next round tries again
            log.exception("relay round failed")
            done = RelayRound(waiting=1)
        if done.waiting or temporal.client is None:
            await asyncio.sleep(every_s)
        elif done.claimed >= BATCH:
            await asyncio.sleep(0)
        else:
            await bell.wait(every_s)
