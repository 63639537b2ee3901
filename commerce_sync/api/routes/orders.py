"""Order status and approvals."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from commerce_sync.api.deps import SettingsDep, TemporalDep
from commerce_sync.api.runs import ApprovalRequest, read_status, send_decision
from commerce_sync.api.security import OperateKey, ReadKey
from commerce_sync.commands.run_list import web_ui_link
from commerce_sync.contracts.ids import order_workflow_id
from commerce_sync.contracts.orders import OrderSyncStatus

router = APIRouter(prefix="/orders", tags=["orders"])


class OrderStatusResponse(BaseModel):
    workflow_id: str
    run_status: str
    web_ui: str
    status: OrderSyncStatus


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
    run_status, status = await read_status(
        client.get_workflow_handle(workflow_id),
        OrderSyncStatus,
        lambda: _not_found(pair, store_order_id),
    )
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
    return await send_decision(
        client.get_workflow_handle(order_workflow_id(pair, store_order_id)),
        request,
        OrderSyncStatus,
        run_name="the order's sync run",
        not_found=lambda: _not_found(pair, store_order_id),
    )
