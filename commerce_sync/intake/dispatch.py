"""Turning a recorded webhook into workflow starts and signals.

Starts are idempotent: workflow ids are business keys, a running workflow is reused
(`USE_EXISTING`), and a workflow that already completed successfully is not started
again (`ALLOW_DUPLICATE_FAILED_ONLY`): a failed one may be, once the cause is fixed.
A route marked `rerun` (catalog sync: every product change must land) may start a
fresh run after a completed one.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import Engine
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from commerce_sync.config.pairs import PairConfig
from commerce_sync.intake.bodies import AcumaticaPush, BrightpearlEvent, StoreEvent, WebhookBody
from commerce_sync.intake.routing import Route, acumatica_routes, brightpearl_routes, store_routes
from commerce_sync.store.customer_writes import created_here
from commerce_sync.store.events import mark_start_failed, mark_started
from commerce_sync.store.models import WebhookEvent

log = logging.getLogger(__name__)


def routes_for(
    source: str, body: dict[str, Any], event_key: str, pairs: dict[str, PairConfig]
) -> list[Route]:
    """The routes of a recorded body (validated again: it was recorded, maybe by an older
    release, and is read back from the database)."""
    return routes_of(source, parse_model(source, body), event_key, pairs)


def parse_model(source: str, body: dict[str, Any]) -> WebhookBody:
    """The source's body model of an already decoded JSON object."""
    if source in ("kentico", "xcart"):
        return StoreEvent.model_validate(body)
    if source == "brightpearl":
        return BrightpearlEvent.model_validate(body)
    if source == "acumatica":
        return AcumaticaPush.model_validate(body)
    raise ValueError(f"unknown source {source}")


def routes_of(
    source: str, event: WebhookBody, event_key: str, pairs: dict[str, PairConfig]
) -> list[Route]:
    """The routes of a body the receiver has just validated, taken as it is."""
    if isinstance(event, StoreEvent) and source in ("kentico", "xcart"):
        return store_routes(event, pairs)
    if isinstance(event, BrightpearlEvent) and source == "brightpearl":
        return brightpearl_routes(event, event_key, pairs)
    if isinstance(event, AcumaticaPush) and source == "acumatica":
        return acumatica_routes(event, pairs)
    raise ValueError(f"a {type(event).__name__} is not a {source} body")


def _search_attributes(route: Route) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(SearchAttributeKey.for_keyword(name), value)
            for name, value in route.search.items()
        ]
    )


async def dispatch(
    client: Client, route: Route, task_queue: str
) -> WorkflowHandle[Any, Any] | None:
    """Start (or signal-with-start) the route's workflow; a completed one is left alone.

    The handle of the run started (or reused, or signalled); None when a completed run
    forbids a new one."""
    common: dict[str, Any] = {
        "id": route.workflow_id,
        "task_queue": task_queue,
        "id_reuse_policy": WorkflowIDReusePolicy.ALLOW_DUPLICATE
        if route.rerun
        else WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        "search_attributes": _search_attributes(route),
    }
    try:
        if route.signal is not None:
            return await client.start_workflow(
                route.workflow,
                route.arg,
                start_signal=route.signal,
                start_signal_args=[route.signal_arg] if route.signal_arg is not None else [],
                **common,
            )
        return await client.start_workflow(
            route.workflow,
            route.arg,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            **common,
        )
    except WorkflowAlreadyStartedError:
        log.info("%s already completed; nothing to start", route.workflow_id)
        return None


class ReachesTemporal(Protocol):
    """Where a start gets its client: the API's `TemporalLink` (None while Temporal is
    unreachable) or a worker's own connected client (`ConnectedClient`)."""

    @property
    def client(self) -> Client | None: ...

    @property
    def last_error(self) -> str: ...


@dataclass(frozen=True)
class ConnectedClient:
    client: Client
    last_error: str = ""


async def start_recorded(
    engine: Engine,
    temporal: ReachesTemporal,
    event: WebhookEvent,
    routes: list[Any],
    task_queue: str,
) -> StartOutcome:
    """Dispatch the event's routes; on failure leave it to the relay."""
    assert event.id is not None
    if temporal.client is None:
        await asyncio.to_thread(
            mark_start_failed, engine, event.id, f"Temporal unreachable: {temporal.last_error}"
        )
        return StartOutcome.WAITING
    try:
        for route in routes:
            if await own_creation(engine, route):
                continue
            await dispatch(temporal.client, route, task_queue)
    except Exception as exc:  # Temporal down or refusing: the relay tries again
        log.warning("could not start %s yet: %s", event.workflow_id, type(exc).__name__)
        if temporal_unavailable(exc):
            await asyncio.to_thread(
                mark_start_failed, engine, event.id, f"{type(exc).__name__}: {exc}"
            )
            return StartOutcome.WAITING
        await refuse_start(engine, event, f"{type(exc).__name__}: {exc}")
        return StartOutcome.REFUSED
    await asyncio.to_thread(mark_started, engine, event.id)
    return StartOutcome.STARTED


async def own_creation(engine: Engine, route: Route) -> bool:
    """The route only announces a customer's creation, and commerce-sync created that
    customer (an order run's ERP customer): its own write coming back, which the sync
    would read in both systems to find nothing to do. Recorded, not started."""
    if route.announces_creation_of is None:
        return False
    system, customer_id, email = route.announces_creation_of
    if not await asyncio.to_thread(created_here, engine, system, customer_id, email):
        return False
    log.info("%s: the creation commerce-sync made itself; nothing to sync", route.workflow_id)
    return True


class StartOutcome(enum.Enum):
    STARTED = "started"
    WAITING = "waiting for Temporal"
    REFUSED = "refused"


async def refuse_start(engine: Engine, event: WebhookEvent, error: str) -> None:
    """Count a start refused for this event and hold it back (backoff) from the relay."""
    assert event.id is not None
    retry_in = refusal_backoff(event.start_attempts)
    await asyncio.to_thread(mark_start_failed, engine, event.id, error, retry_in=retry_in)


_UNAVAILABLE = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)


def temporal_unavailable(exc: BaseException) -> bool:
    """Temporal could not answer (down, overloaded, timed out): every event waits for it
    alike, and none of them is at fault. Anything else is a refusal of this event."""
    if isinstance(exc, RPCError):
        return exc.status in _UNAVAILABLE
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


def refusal_backoff(failed_before: int) -> timedelta:
    """How long a refused start waits before its next try: 2, 4, 8 ... s, at most 10 min."""
    return timedelta(seconds=min(2 ** (failed_before + 1), 600))
