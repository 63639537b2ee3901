"""`POST /webhooks/{source}`: verify, record durably, then start or signal.

The event is in the database before the answer goes out, so nothing accepted is lost:
when Temporal cannot be reached the answer is still 202 and the relay starts the
workflow later. A repeated event id answers 200 with the first answer's body and starts
nothing. Bad proof: 401. Unknown source: 404. Invalid body: 422 naming the field. A body
over `webhook_max_body_bytes`: 413, refused by its declared length or while it streams
in, so a large body is never held whole nor verified.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine

from commerce_sync.api.deps import EngineDep, SettingsDep, TemporalLinkDep
from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import Settings
from commerce_sync.intake.bodies import AcumaticaPush, BrightpearlEvent, StoreEvent
from commerce_sync.intake.dispatch import routes_for, start_recorded
from commerce_sync.intake.links import TemporalLink
from commerce_sync.intake.proofs import (
    ACUMATICA_TOKEN_HEADER,
    WebhookProofError,
    verify_standard_webhook,
    verify_token,
)
from commerce_sync.intake.routing import RoutingError, acumatica_key, brightpearl_key
from commerce_sync.store.events import record_event

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger(__name__)

STORE_SOURCES = ("kentico", "xcart")


class Accepted(BaseModel):
    event_id: str
    workflow_id: str | None


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


def _parse(raw: bytes, model: type[BaseModel]) -> tuple[BaseModel, dict[str, Any]]:
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


async def _accept(
    request: Request,
    engine: Engine,
    temporal: TemporalLink,
    *,
    source: str,
    event_id: str,
    event_type: str,
    body: dict[str, Any],
) -> JSONResponse:
    pairs: dict[str, PairConfig] = request.app.state.pairs
    settings: Settings = request.app.state.settings
    try:
        routes = routes_for(source, body, event_id, pairs)
    except RoutingError as exc:
        raise _unprocessable(exc.field, exc.reason) from None
    workflow_id = routes[0].workflow_id if routes else None
    event, new = await asyncio.to_thread(
        record_event,
        engine,
        source=source,
        event_id=event_id,
        event_type=event_type,
        workflow_id=workflow_id or "",
        payload={"body": body},
    )
    answer = Accepted(event_id=event_id, workflow_id=workflow_id).model_dump()
    if not new:
        return JSONResponse(answer, status_code=200)
    await start_recorded(engine, temporal, event, routes, settings.task_queue)
    return JSONResponse(answer, status_code=202)


@router.post("/brightpearl/{token}", status_code=202, response_model=Accepted)
async def brightpearl_webhook(
    token: str,
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    temporal: TemporalLinkDep,
) -> JSONResponse:
    """Brightpearl signs nothing: the secret token is in the registered `uriTemplate`."""
    try:
        verify_token(_secret(settings, "brightpearl_token"), token)
    except WebhookProofError as exc:
        raise _refuse("brightpearl", exc) from None
    raw = await _read_body(request, settings.webhook_max_body_bytes)
    event, body = _parse(raw, BrightpearlEvent)
    assert isinstance(event, BrightpearlEvent)
    return await _accept(
        request,
        engine,
        temporal,
        source="brightpearl",
        event_id=brightpearl_key(raw),
        event_type=event.fullEvent or f"{event.resourceType}.{event.lifecycleEvent}",
        body=body,
    )


@router.post("/{source}", status_code=202, response_model=Accepted)
async def webhook(
    source: str,
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    temporal: TemporalLinkDep,
    token_header: Annotated[str | None, Header(alias=ACUMATICA_TOKEN_HEADER)] = None,
) -> JSONResponse:
    if source in STORE_SOURCES:
        raw = await _read_body(request, settings.webhook_max_body_bytes)
        try:
            verify_standard_webhook(_secret(settings, source), dict(request.headers), raw)
        except WebhookProofError as exc:
            raise _refuse(source, exc) from None
        event, body = _parse(raw, StoreEvent)
        assert isinstance(event, StoreEvent)
        if event.data.store != source:
            raise _unprocessable(
                "data.store", f"{event.data.store!r} does not match the source {source!r}"
            )
        return await _accept(
            request,
            engine,
            temporal,
            source=source,
            event_id=request.headers["webhook-id"],
            event_type=event.type,
            body=body,
        )
    if source == "acumatica":
        try:
            verify_token(_secret(settings, "acumatica_token"), token_header)
        except WebhookProofError as exc:
            raise _refuse(source, exc) from None
        raw = await _read_body(request, settings.webhook_max_body_bytes)
        push, body = _parse(raw, AcumaticaPush)
        assert isinstance(push, AcumaticaPush)
        return await _accept(
            request,
            engine,
            temporal,
            source=source,
            event_id=acumatica_key(push),
            event_type=f"push:{push.Query}",
            body=body,
        )
    if source == "brightpearl":
        raise HTTPException(
            status_code=401, detail="webhook proof refused: token missing from the path"
        )
    raise HTTPException(status_code=404, detail=f"unknown webhook source {source!r}")
