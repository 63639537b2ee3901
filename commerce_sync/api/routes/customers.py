"""Customer merges: start one (`POST /customers/{system}/merge`) and follow it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, StringConstraints

from commerce_sync.api.deps import TemporalDep
from commerce_sync.api.runs import read_status
from commerce_sync.api.security import OperateKey, ReadKey
from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.customers import CustomerMergeInput, CustomerMergeStatus
from commerce_sync.contracts.ids import merge_workflow_id
from commerce_sync.domain.models import ERP_SYSTEMS, STORE_SYSTEMS
from commerce_sync.intake.dispatch import dispatch
from commerce_sync.intake.routing import Route

router = APIRouter(prefix="/customers", tags=["customers"])

CustomerId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class MergeRequest(BaseModel):
    survivor: CustomerId
    duplicates: list[CustomerId] = Field(min_length=1, max_length=50)


class MergeStarted(BaseModel):
    workflow_id: str


class MergeStatusResponse(BaseModel):
    workflow_id: str
    run_status: str
    status: CustomerMergeStatus


def _unprocessable(field: str, reason: str) -> HTTPException:
    detail: list[dict[str, Any]] = [{"loc": ["body", field], "msg": reason, "type": "value_error"}]
    return HTTPException(status_code=422, detail=detail)


def _pair_of(system: str, pairs: dict[str, PairConfig]) -> str:
    for pair in pairs.values():
        if system in (pair.store, pair.erp):
            return pair.id
    raise HTTPException(status_code=422, detail=f"system {system!r} is in no integration pair")


@router.post("/{system}/merge", status_code=202, response_model=MergeStarted)
async def merge_customers(
    system: str, body: MergeRequest, request: Request, client: TemporalDep, _: OperateKey
) -> MergeStarted:
    """Merge the duplicates into the survivor. A customer that does not exist fails the run
    (`NotFound`, see the status): existence is checked by the workflow's first step."""
    systems = (*STORE_SYSTEMS, *ERP_SYSTEMS)
    if system not in systems:
        raise HTTPException(
            status_code=422,
            detail=[
                {
                    "loc": ["path", "system"],
                    "msg": f"unknown system {system!r}: one of {', '.join(systems)}",
                    "type": "value_error",
                }
            ],
        )
    if body.survivor in body.duplicates:
        raise _unprocessable("duplicates", "the survivor cannot be one of the duplicates")
    if len(set(body.duplicates)) != len(body.duplicates):
        raise _unprocessable("duplicates", "a duplicate is named twice")
    pairs: dict[str, PairConfig] = request.app.state.pairs
    merge = CustomerMergeInput(
        system=system,
        pair=_pair_of(system, pairs),
        survivor=body.survivor,
        duplicates=body.duplicates,
        trigger="api",
    )
    workflow_id = merge_workflow_id(system, body.survivor)
    # A later merge into the same survivor may start once an earlier run has ended.
    route = Route(
        "CustomerMerge", workflow_id, merge, search={"IntegrationPair": merge.pair}, rerun=True
    )
    await dispatch(client, route, request.app.state.settings.task_queue)
    return MergeStarted(workflow_id=workflow_id)


@router.get("/{system}/merge/{survivor}", response_model=MergeStatusResponse)
async def merge_status(
    system: str, survivor: str, client: TemporalDep, _: ReadKey
) -> MergeStatusResponse:
    workflow_id = merge_workflow_id(system, survivor)
    run_status, status = await read_status(
        client.get_workflow_handle(workflow_id),
        CustomerMergeStatus,
        lambda: HTTPException(status_code=404, detail=f"no merge run {workflow_id}"),
    )
    return MergeStatusResponse(workflow_id=workflow_id, run_status=run_status, status=status)
