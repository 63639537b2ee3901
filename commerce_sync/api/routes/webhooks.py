"""`POST /webhooks/{source}`: verify, parse once, record durably, answer.

The event is in the database before the answer goes out, so nothing accepted is lost:
the answer (202) costs one transaction and no call to Temporal. The relay of this
process, rung at once, starts or signals the workflow (intake/relay.py); while Temporal
cannot be reached the event waits for it there. A repeated event id, on this process or
any other, answers 200 with the first answer's body and starts nothing. Bad proof: 401.
Unknown source: 404. Invalid body: 422 naming the field. A body over
`webhook_max_body_bytes`: 413, refused by its declared length or while it streams in,
so a large body is never held whole nor verified.

The body is decoded and validated once (`Delivery`): the routing reads the model the
validation made, and the dict the decoding made is what is recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine

from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import Settings
from commerce_sync.intake.bodies import AcumaticaPush, BrightpearlEvent, StoreEvent, WebhookBody
from commerce_sync.intake.dispatch import routes_of
from commerce_sync.intake.proofs import (
    ACUMATICA_TOKEN_HEADER,
    WebhookProofError,
    verify_standard_webhook,
    verify_token,
)
from commerce_sync.intake.relay import RelayBell
from commerce_sync.intake.routing import RoutingError, acumatica_key, brightpearl_key
from commerce_sync.intake.trace_context import current_trace
from commerce_sync.store.events import record_event

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger(__name__)

STORE_SOURCES = ("kentico", "xcart")
Body = TypeVar("Body", StoreEvent, BrightpearlEvent, AcumaticaPush)


class Accepted(BaseModel):
    event_id: str
    workflow_id: str | None


@dataclass(frozen=True)
class Delivery:
    """One verified delivery, its body decoded (`body`) and validated (`event`) once."""

    source: str
    event_id: str
    event_type: str
    body: dict[str, Any]
    event: WebhookBody


def _unprocessable(field: str, reason: str) -> HTTPException:
    return HTTPException(status_code=422, detail=[{"field": field, "reason": reason}])


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to be over `limit` bytes."""
    too_large = HTTPException(status_code=413, detail=f"body over {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise too_large
    return bytes(received)


def parse_body(raw: bytes, model: type[Body]) -> tuple[Body, dict[str, Any]]:
    """Decode and validate the body: the model, and the decoded object it was made from."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _unprocessable("body", f"not JSON: {exc}") from None
    except RecursionError:
        raise _unprocessable("body", "JSON nested too deeply") from None
    if not isinstance(body, dict):
        raise _unprocessable("body", "must be a JSON object")
    try:
        return model.model_validate(body), body
    except ValidationError as exc:
        error = exc.errors()[0]
        raise _unprocessable(
            ".".join(str(p) for p in error["loc"]) or "body", error["msg"]
        ) from None


def _secret(settings: Settings, name: str) -> str:
    value = getattr(settings.webhooks, name)
    if value is None:
        raise HTTPException(status_code=503, detail=f"no webhook secret configured for {name}")
    secret: str = value.get_secret_value()
    return secret


def _refuse(source: str, exc: WebhookProofError) -> HTTPException:
    log.warning("webhook from %s refused: %s", source, exc)
    return HTTPException(status_code=401, detail=f"webhook proof refused: {exc}")


async def _accept(request: Request, delivery: Delivery) -> JSONResponse:
    state = request.app.state
    pairs: dict[str, PairConfig] = state.pairs
    engine: Engine = state.engine
    try:
        routes = routes_of(delivery.source, delivery.event, delivery.event_id, pairs)
    except RoutingError as exc:
        raise _unprocessable(exc.field, exc.reason) from None
    payload: dict[str, Any] = {"body": delivery.body}
    trace = current_trace()
    if trace is not None:
        payload["trace"] = trace
    event, new = await asyncio.to_thread(
        record_event,
        engine,
        source=delivery.source,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        workflow_id=routes[0].workflow_id if routes else "",
        payload=payload,
    )
    answer = {"event_id": delivery.event_id, "workflow_id": event.workflow_id or None}
    if not new:
        return JSONResponse(answer, status_code=200)
    bell: RelayBell = state.relay_bell
    bell.ring()
    return JSONResponse(answer, status_code=202)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "title": name.title()},
        "description": description,
    }


# The handlers take the request alone and read its parts themselves: FastAPI's parameter
# machinery costs a webhook more than its verification, decoding and validation together.
# The parameters are declared for the OpenAPI document here instead.
WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Accepted, "description": "a repeated delivery: the first answer"},
    401: {"description": "the proof was refused"},
    404: {"description": "unknown source"},
    413: {"description": "body over webhook_max_body_bytes"},
    422: {"description": "invalid body, naming the field"},
}


@router.post(
    "/brightpearl/{token}",
    status_code=202,
    response_model=Accepted,
    responses=WEBHOOK_RESPONSES,
    openapi_extra={"parameters": [_path_parameter("token", "the secret token of the uriTemplate")]},
)
async def brightpearl_webhook(request: Request) -> JSONResponse:
    """Brightpearl signs nothing: the secret token is in the registered `uriTemplate`."""
    settings = _settings(request)
    token: str = request.path_params["token"]
    try:
        verify_token(_secret(settings, "brightpearl_token"), token)
    except WebhookProofError as exc:
        raise _refuse("brightpearl", exc) from None
    raw = await _read_body(request, settings.webhook_max_body_bytes)
    event, body = parse_body(raw, BrightpearlEvent)
    delivery = Delivery(
        "brightpearl",
        brightpearl_key(raw),
        event.fullEvent or f"{event.resourceType}.{event.lifecycleEvent}",
        body,
        event,
    )
    return await _accept(request, delivery)


@router.post(
    "/{source}",
    status_code=202,
    response_model=Accepted,
    responses=WEBHOOK_RESPONSES,
    openapi_extra={
        "parameters": [
            _path_parameter("source", "kentico, xcart or acumatica"),
            {
                "name": ACUMATICA_TOKEN_HEADER,
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "Acumatica's proof (a header set on its push notification)",
            },
        ]
    },
)
async def webhook(request: Request) -> JSONResponse:
    settings = _settings(request)
    source: str = request.path_params["source"]
    token_header = request.headers.get(ACUMATICA_TOKEN_HEADER)
    if source in STORE_SOURCES:
        raw = await _read_body(request, settings.webhook_max_body_bytes)
        try:
            verify_standard_webhook(_secret(settings, source), request.headers, raw)
        except WebhookProofError as exc:
            raise _refuse(source, exc) from None
        event, body = parse_body(raw, StoreEvent)
        if event.data.store != source:
            raise _unprocessable(
                "data.store", f"{event.data.store!r} does not match the source {source!r}"
            )
        delivery = Delivery(source, request.headers["webhook-id"], event.type, body, event)
        return await _accept(request, delivery)
    if source == "acumatica":
        try:
            verify_token(_secret(settings, "acumatica_token"), token_header)
        except WebhookProofError as exc:
            raise _refuse(source, exc) from None
        raw = await _read_body(request, settings.webhook_max_body_bytes)
        push, body = parse_body(raw, AcumaticaPush)
        delivery = Delivery(source, acumatica_key(push), f"push:{push.Query}", body, push)
        return await _accept(request, delivery)
    if source == "brightpearl":
        raise HTTPException(
            status_code=401, detail="webhook proof refused: token missing from the path"
        )
    raise HTTPException(status_code=404, detail=f"unknown webhook source {source!r}")
