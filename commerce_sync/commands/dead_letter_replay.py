"""Replaying a dead letter: validate the (optionally edited) payload, start a fresh run
under the letter's own workflow id, and record the replay in the letter's history.

Shared by `POST /dead-letters/{id}/replay` and `commerce-sync dead-letters replay`. The
start goes through the webhook path's `dispatch` and route builders, so a replayed run
has the same workflow id, task queue, search attributes and start policies as the
original: a failed run's id may be reused (`ALLOW_DUPLICATE_FAILED_ONLY`), a run that
is still going is reused rather than doubled (`USE_EXISTING`).

What an edited payload means, per process:
- `order`: the letter's payload plus optional `corrections` (corrected shipping/billing
  address, customer e-mail, SKU map old -> new) that the fresh run applies on top of
  the order it reads from the store. `pair` and `store_order_id` cannot change.
- `catalog`: a fresh run for the same SKU; `erp_product_id` may be given as a hint.
- `return`: a fresh run of the same return request (`rma_id` cannot change).
- `intake`: a webhook event the relay gave up on (Temporal kept refusing its start): the
  event goes back to the relay, which starts it once the cause is fixed; the payload
  cannot be edited (the event's body is as the sender signed it).
- `inventory`: a push request for the same SKU on the pair's push run (the quantity is
  read from the ERP again, so the payload's `quantity` is informational); the letter's
  business key is the SKU's (`inventory:{pair}:{sku}`), and the push that lands the SKU
  resolves it.

A letter is resolved by the run that succeeds (it calls `db.resolve_dead_letters` for
its workflow id), never by the replay itself. Edited values are personal data (names,
addresses, e-mails): the history records which fields were edited, not their values.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from commerce_sync.commands.inventory_control import new_request_id, push_status
from commerce_sync.contracts.inventory import PushMode, PushPhase, PushRequest
from commerce_sync.contracts.orders import OrderCorrections
from commerce_sync.intake.dispatch import dispatch
from commerce_sync.intake.routing import (
    Route,
    catalog_route,
    inventory_push_route,
    order_start_route,
    return_start_route,
)
from commerce_sync.store.dead_letters import get_dead_letter, inventory_letter_key, note_replay
from commerce_sync.store.events import requeue_event
from commerce_sync.store.models import DeadLetter, DeadLetterStatus


class ReplayError(Exception):
    """Why a replay was refused: an HTTP status, and the fields at fault for a 422."""

    def __init__(
        self, status: int, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []

    def one_line(self) -> str:
        if not self.errors:
            return self.message
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in self.errors
        )


# ---- payloads ----------------------------------------------------------------------------


class OrderLetterPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pair: str
    store_order_id: str
    store_order_number: str = ""
    skus: list[str] = Field(default_factory=list)
    corrections: OrderCorrections | None = None


class CatalogLetterPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pair: str
    sku: str = Field(min_length=1)
    erp_product_id: str = ""


class InventoryLetterPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pair: str
    store: str = ""
    sku: str = Field(min_length=1)
    quantity: int | None = Field(default=None, ge=0)


class ReturnLetterPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pair: str
    rma_id: str = Field(min_length=1)
    store_order_id: str = ""
    reference: str = ""
    skus: list[str] = Field(default_factory=list)


PAYLOADS: dict[str, type[BaseModel]] = {
    "order": OrderLetterPayload,
    "catalog": CatalogLetterPayload,
    "inventory": InventoryLetterPayload,
    "return": ReturnLetterPayload,
}


def _invalid(loc: list[str | int], message: str, kind: str = "value_error") -> ReplayError:
    return ReplayError(
        422,
        f"{'.'.join(str(part) for part in loc)}: {message}",
        [{"loc": loc, "msg": message, "type": kind}],
    )


def _must_equal(payload: BaseModel, letter: DeadLetter, name: str, expected: str) -> None:
    given = getattr(payload, name)
    if given != expected:
        raise _invalid(
            ["payload", name],
            f"must stay {expected!r} (the letter's); a replay cannot change what it is about",
        )


def _letter_subject(letter: DeadLetter) -> str:
    """The order id / SKU a letter is about, from its business key and payload."""
    return str(letter.payload.get("store_order_id") or letter.payload.get("sku") or "")


@dataclasses.dataclass(frozen=True)
class ReplayPlan:
    """A validated replay: the route to dispatch and what the history should say."""

    route: Route
    edited: list[str]
    request_id: str = ""


def plan_replay(letter: DeadLetter, edited: Mapping[str, Any] | None) -> ReplayPlan:
    """Validate the payload (the edited one, else the letter's) and build the start.

    Raises `ReplayError(422)` naming the field at fault; starts nothing."""
    model = PAYLOADS.get(letter.process)
    if model is None:
        raise ReplayError(409, f"letters of process {letter.process!r} cannot be replayed")
    source = dict(edited) if edited is not None else dict(letter.payload)
    try:
        payload = model.model_validate(source)
    except ValidationError as exc:
        errors = [
            {"loc": ["payload", *error["loc"]], "msg": error["msg"], "type": error["type"]}
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise ReplayError(422, "invalid payload", errors) from None
    _must_equal(payload, letter, "pair", letter.pair)
    changed = sorted(
        key
        for key in set(source) | set(letter.payload)
        if source.get(key) != letter.payload.get(key)
    )
    if isinstance(payload, OrderLetterPayload):
        _must_equal(payload, letter, "store_order_id", _letter_subject(letter))
        corrections = payload.corrections
        if corrections is not None:
            known = set(letter.payload.get("skus") or [])
            for old in corrections.sku_map:
                if known and old not in known:
                    raise _invalid(
                        ["payload", "corrections", "sku_map", old],
                        f"{old} is not a SKU of the order ({', '.join(sorted(known))})",
                    )
            changed = [key for key in changed if key != "corrections"] + [
                f"corrections.{name}"
                for name in corrections.model_fields_set
                if getattr(corrections, name)
            ]
        route = order_start_route(letter.pair, payload.store_order_id, trigger="replay")
        route = dataclasses.replace(
            route, arg=route.arg.model_copy(update={"corrections": corrections})
        )
        _same_key(route, letter)
        return ReplayPlan(route, sorted(changed))
    if isinstance(payload, CatalogLetterPayload):
        _must_equal(payload, letter, "sku", _letter_subject(letter))
        route = catalog_route(
            letter.pair, payload.sku, erp_product_id=payload.erp_product_id, trigger="replay"
        )
        _same_key(route, letter)
        return ReplayPlan(route, changed)
    if isinstance(payload, ReturnLetterPayload):
        # A fresh run of the same return request (it reads the request and the order
        # again, and keys new ERP documents: the failed run's are cancelled).
        route = return_start_route(letter.pair, payload.rma_id, trigger="replay")
        _same_key(route, letter)
        return ReplayPlan(route, changed)
    assert isinstance(payload, InventoryLetterPayload)
    _must_equal(payload, letter, "sku", _letter_subject(letter))
    request = PushRequest(
        request_id=new_request_id("replay"),
        mode=PushMode.SKUS,
        skus=[payload.sku],
        requested_by=f"dead-letter {letter.id}",
    )
    route = inventory_push_route(letter.pair, request)
    # Keyed by SKU (`inventory:{pair}:{sku}`); letters recorded before, by the push run's id.
    if letter.business_key not in (
        inventory_letter_key(letter.pair, payload.sku),
        route.workflow_id,
    ):
        raise ReplayError(
            409, f"dead letter {letter.id} is about {letter.business_key}, not SKU {payload.sku}"
        )
    return ReplayPlan(route, changed, request_id=request.request_id)


def _same_key(route: Route, letter: DeadLetter) -> None:
    """The fresh run must be the letter's own business key (so its success resolves it)."""
    if route.workflow_id != letter.business_key:
        raise ReplayError(
            409,
            f"dead letter {letter.id} is about {letter.business_key}, "
            f"but its payload leads to {route.workflow_id}",
        )


# ---- the replay ----------------------------------------------------------------------------


def _last_replay(letter: DeadLetter) -> dict[str, Any] | None:
    replays = [entry for entry in letter.history if entry.get("event") == "replayed"]
    return replays[-1] if replays else None


async def _refuse_if_going(client: Client, letter: DeadLetter) -> None:
    """409 while the letter's run (for inventory: its last replay's push) is going."""
    if letter.process == "inventory":
        last = _last_replay(letter)
        if last is None or not last.get("request_id"):
            return
        status = await push_status(client, letter.pair)
        progress = status.request(str(last["request_id"])) if status is not None else None
        if progress is not None and progress.phase not in (PushPhase.DONE, PushPhase.FAILED):
            raise ReplayError(
                409,
                f"the push of dead letter {letter.id}'s last replay "
                f"({last['request_id']}) is still {progress.phase.value}",
            )
        return
    try:
        description = await client.get_workflow_handle(letter.business_key).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return  # the run is gone (retention): a fresh one may start
        raise
    if description.status == WorkflowExecutionStatus.RUNNING:
        raise ReplayError(
            409, f"the run {letter.business_key} is still going; replay it once it has ended"
        )


async def replay_dead_letter(
    engine: Engine,
    client: Client,
    task_queue: str,
    letter_id: int,
    *,
    edited: Mapping[str, Any] | None = None,
    by: str,
) -> DeadLetter:
    """Validate, start the fresh run, record the replay; the letter as it now stands.

    Raises `ReplayError`: 404 no such letter, 409 resolved or its run still going,
    422 an invalid payload (nothing started), 503 Temporal refused the start."""
    letter = await asyncio.to_thread(get_dead_letter, engine, letter_id)
    if letter is None:
        raise ReplayError(404, f"no dead letter {letter_id}")
    if letter.status == DeadLetterStatus.RESOLVED:
        raise ReplayError(409, f"dead letter {letter_id} is resolved; nothing to replay")
    if letter.process == "intake":
        return await _requeue_event(engine, letter, edited, by)
    plan = plan_replay(letter, edited)
    try:
        await _refuse_if_going(client, letter)
        handle = await dispatch(client, plan.route, task_queue)
    except RPCError as exc:
        raise ReplayError(503, f"Temporal: {' '.join(exc.message.split())}") from None
    if handle is None:
        raise ReplayError(
            409, f"the run {plan.route.workflow_id} has completed; it cannot be started again"
        )
    entry: dict[str, Any] = {
        "by": by,
        "workflow_id": handle.id,
        "run_id": handle.result_run_id or "",
        "edited": plan.edited,
    }
    if plan.request_id:
        entry["request_id"] = plan.request_id
    return await asyncio.to_thread(note_replay, engine, letter_id, entry)


async def _requeue_event(
    engine: Engine, letter: DeadLetter, edited: Mapping[str, Any] | None, by: str
) -> DeadLetter:
    """An `intake` letter: the relay gets its webhook event back (and resolves the letter
    once the start goes through)."""
    assert letter.id is not None
    if edited is not None and dict(edited) != letter.payload:
        raise _invalid(["payload"], "a webhook event is replayed as it was received")
    event_pk = letter.payload.get("webhook_event")
    event = (
        await asyncio.to_thread(requeue_event, engine, event_pk)
        if isinstance(event_pk, int)
        else None
    )
    if event is None:
        raise ReplayError(409, f"dead letter {letter.id} names no recorded webhook event")
    entry = {"by": by, "workflow_id": event.workflow_id, "run_id": "", "edited": []}
    return await asyncio.to_thread(note_replay, engine, letter.id, entry)
