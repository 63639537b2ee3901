"""Return status and approvals (same keys and scopes as the order routes)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from commerce_sync.api.deps import SettingsDep, TemporalDep
from commerce_sync.api.runs import ApprovalRequest, read_status, send_decision
from commerce_sync.api.security import OperateKey, ReadKey
from commerce_sync.commands.run_list import web_ui_link
from commerce_sync.contracts.ids import return_workflow_id
from commerce_sync.contracts.returns import ReturnSyncStatus

router = APIRouter(prefix="/returns", tags=["returns"])


class ReturnStatusResponse(BaseModel):
    workflow_id: str
    run_status: str
    web_ui: str
    status: ReturnSyncStatus


def _not_found(pair: str, rma_id: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"no run for return {rma_id} of pair {pair}")


@router.get("/{pair}/{rma_id}", response_model=ReturnStatusResponse)
async def return_status(
    pair: str, rma_id: str, client: TemporalDep, settings: SettingsDep, _: ReadKey
) -> ReturnStatusResponse:
    """State, each step with time and outcome, ERP credit and refund, pending approval,
    compensations."""
    workflow_id = return_workflow_id(pair, rma_id)
    run_status, status = await read_status(
        client.get_workflow_handle(workflow_id),
        ReturnSyncStatus,
        lambda: _not_found(pair, rma_id),
    )
    return ReturnStatusResponse(
        workflow_id=workflow_id,
        run_status=run_status,
        web_ui=web_ui_link(settings, workflow_id),
        status=status,
    )


@router.post(
    "/{pair}/{rma_id}/approval",
    response_model=ReturnSyncStatus,
    responses={409: {"description": "nothing waits for approval"}},
)
async def approve_return(
    pair: str, rma_id: str, request: ApprovalRequest, client: TemporalDep, _: OperateKey
) -> ReturnSyncStatus:
    """Approve or reject a return whose refund waits for a person's decision."""
    return await send_decision(
        client.get_workflow_handle(return_workflow_id(pair, rma_id)),
        request,
        ReturnSyncStatus,
        run_name="the return's run",
        not_found=lambda: _not_found(pair, rma_id),
    )
