"""Order status and approvals."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from commerce_sync.api.deps import SettingsDep, TemporalDep
from commerce_sync.api.routing import order_workflow_id
from commerce_sync.api.security import OperateKey, ReadKey
from commerce_sync.config.settings import Settings
from commerce_sync.temporal_client import update_refusal
from commerce_sync.workflows.order_messages import ApprovalDecision, OrderSyncStatus

router = APIRouter(prefix="/orders", tags=["orders"])


class OrderStatusResponse(BaseModel):
    workflow_id: str
    run_status: str
    web_ui: str
    status: OrderSyncStatus


class ApprovalRequest(BaseModel):
    approved: bool
    by: str = Field(min_length=1, description="who approves or rejects")
    reason: str = ""


def web_ui_link(settings: Settings, workflow_id: str) -> str:
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{settings.web_ui_url}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"


def _not_found(pair: str, store_order_id: str) -> HTTPException:
    return HTTPException(
        status_code=404, detail=f"no sync run for order {store_order_id} of pair {pair}"
    )


@router.get("/{pair}/{store_order_id}", response_model=OrderStatusResponse)
async def order_status(
    pair: str, store_order_id: str, client: TemporalDep, settings: SettingsDep, _: ReadKey
) -> OrderStatusResponse:
    """Sync state, each step with time and outcome, ERP ids, pending approval, compensations."""
    workflow_id = order_workflow_id(pair, store_order_id)
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
        status = await handle.query("status", result_type=OrderSyncStatus)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise _not_found(pair, store_order_id) from None
        raise
    run_status = description.status.name if description.status else "UNKNOWN"
    return OrderStatusResponse(
        workflow_id=workflow_id,
        run_status=run_status,
        web_ui=web_ui_link(settings, workflow_id),
        status=status,
    )


@router.post(
    "/{pair}/{store_order_id}/approval",
    response_model=OrderSyncStatus,
    responses={409: {"description": "nothing waits for approval"}},
)
async def approve_order(
    pair: str, store_order_id: str, request: ApprovalRequest, client: TemporalDep, _: OperateKey
) -> OrderSyncStatus:
    """Approve or reject an order that waits for a person's decision."""
    handle = client.get_workflow_handle(order_workflow_id(pair, store_order_id))
    decision = ApprovalDecision(approved=request.approved, by=request.by, reason=request.reason)
    try:
        status: OrderSyncStatus = await handle.execute_update(
            "approve", decision, result_type=OrderSyncStatus
        )
        return status
    except WorkflowUpdateFailedError as exc:
        raise HTTPException(status_code=409, detail=update_refusal(exc)) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.FAILED_PRECONDITION:
            raise HTTPException(status_code=409, detail="the order's sync run has ended") from None
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    # The server answers NOT_FOUND ("workflow execution already completed") for a run that
    # has ended too: that is a 409 (nothing waits), only a run that never existed is a 404.
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise _not_found(pair, store_order_id) from None
        raise
    ended = description.status.name.lower() if description.status else "closed"
    raise HTTPException(
        status_code=409, detail=f"the order's sync run has ended ({ended}): nothing waits"
    )
