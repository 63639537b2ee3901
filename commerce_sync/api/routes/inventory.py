"""Inventory push: ask for one now, and see how the pair's push run is doing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from temporalio.service import RPCError

from commerce_sync.api.deps import SettingsDep, TemporalDep
from commerce_sync.api.security import OperateKey, ReadKey
from commerce_sync.commands.inventory_control import push_status, request_push
from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.ids import inventory_workflow_id
from commerce_sync.contracts.inventory import (
    InventoryStatus,
    PushMode,
    PushProgress,
)

router = APIRouter(prefix="/inventory", tags=["inventory"])

Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MAX_SKUS = 10_000


class PushBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    skus: list[Sku] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SKUS,
        description="SKUs to push now; leave the field (or the body) out to push every SKU",
    )


class PushAccepted(BaseModel):
    workflow_id: str
    request_id: str
    mode: PushMode
    skus: int | None = Field(description="how many SKUs were asked for; null for all")
    status_url: str


def _pair(request: Request, pair: str) -> PairConfig:
    pairs: dict[str, PairConfig] = request.app.state.pairs
    if pair not in pairs:
        raise HTTPException(
            status_code=404,
            detail=f"unknown pair {pair!r} (pairs: {', '.join(sorted(pairs))})",
        )
    return pairs[pair]


@router.post(
    "/{pair}/push",
    status_code=202,
    response_model=PushAccepted,
    responses={404: {"description": "unknown pair"}, 422: {"description": "bad body"}},
)
async def push(
    pair: str,
    request: Request,
    client: TemporalDep,
    settings: SettingsDep,
    _: OperateKey,
    body: Annotated[PushBody | None, Body()] = None,
) -> PushAccepted:
    """Queue an inventory push on `inventory:{pair}` (started if not running): the SKUs
    given, or every SKU of the ERP (a full reconciliation)."""
    config = _pair(request, pair)
    skus = body.skus if body is not None else None
    try:
        queued = await request_push(
            client,
            config.id,
            settings.task_queue,
            mode=PushMode.ALL if skus is None else PushMode.SKUS,
            skus=skus or (),
            requested_by="api",
        )
    except RPCError as exc:
        raise HTTPException(status_code=503, detail=f"Temporal: {exc.message}") from None
    return PushAccepted(
        workflow_id=inventory_workflow_id(config.id),
        request_id=queued.request_id,
        mode=queued.mode,
        skus=None if skus is None else len(queued.skus),
        status_url=f"/inventory/{config.id}/push/{queued.request_id}",
    )


async def _status(request: Request, client: TemporalDep, pair: str) -> InventoryStatus:
    config = _pair(request, pair)
    try:
        status = await push_status(client, config.id)
    except RPCError as exc:  # e.g. no worker polls the run's queue right now
        raise HTTPException(status_code=503, detail=f"Temporal: {exc.message}") from None
    if status is None:
        raise HTTPException(
            status_code=404, detail=f"no inventory push run is going for pair {pair}"
        )
    return status


@router.get("/{pair}", response_model=InventoryStatus)
async def inventory_status(
    pair: str, request: Request, client: TemporalDep, _: ReadKey
) -> InventoryStatus:
    """The push run: pending and retried SKUs, held-back orders, requests, totals."""
    return await _status(request, client, pair)


@router.get("/{pair}/push/{request_id}", response_model=PushProgress)
async def push_progress(
    pair: str, request_id: str, request: Request, client: TemporalDep, _: ReadKey
) -> PushProgress:
    """One push request: queued, running (SKUs done of total) or done, with its counts."""
    progress = (await _status(request, client, pair)).request(request_id)
    if progress is None:
        raise HTTPException(
            status_code=404, detail=f"no push request {request_id} on the {pair} run"
        )
    return progress
