"""What the status and approval routes of every process share: reading a run's `status`
query, sending it a person's decision through the `approve` update, and the HTTP answers
for a run that does not exist (404) or has nothing waiting (409)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import HTTPException
from pydantic import BaseModel, Field
from temporalio.client import (
    WorkflowExecutionDescription,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from commerce_sync.contracts.orders import ApprovalDecision
from commerce_sync.ops.temporal_client import update_refusal

T = TypeVar("T")


class ApprovalRequest(BaseModel):
    approved: bool
    by: str = Field(min_length=1, description="who approves or rejects")
    reason: str = ""


async def read_status(
    handle: WorkflowHandle[Any, Any],
    result_type: type[T],
    not_found: Callable[[], HTTPException],
) -> tuple[str, T]:
    """The run's Temporal status (RUNNING, COMPLETED, ...) and its `status` query; 503 when
    Temporal cannot answer now (down, or no worker polls the run's task queue)."""
    try:
        description = await handle.describe()
        status: T = await handle.query("status", result_type=result_type)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise not_found() from None
        raise HTTPException(status_code=503, detail=f"Temporal: {exc.message}") from None
    return _run_status(description), status


def _run_status(description: WorkflowExecutionDescription) -> str:
    return description.status.name if description.status else "UNKNOWN"


async def send_decision(
    handle: WorkflowHandle[Any, Any],
    request: ApprovalRequest,
    result_type: type[T],
    *,
    run_name: str,
    not_found: Callable[[], HTTPException],
) -> T:
    """Deliver the decision; 409 when nothing waits for one (the validator refused, or the
    run has ended), 404 when the run never existed."""
    decision = ApprovalDecision(approved=request.approved, by=request.by, reason=request.reason)
    try:
        status: T = await handle.execute_update("approve", decision, result_type=result_type)
        return status
    except WorkflowUpdateFailedError as exc:
        raise HTTPException(status_code=409, detail=update_refusal(exc)) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.FAILED_PRECONDITION:
            raise HTTPException(status_code=409, detail=f"{run_name} has ended") from None
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    # The server answers NOT_FOUND ("workflow execution already completed") for a run that
    # has ended too: that is a 409 (nothing waits), only a run that never existed is a 404.
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise not_found() from None
        raise
    ended = description.status.name.lower() if description.status else "closed"
    raise HTTPException(status_code=409, detail=f"{run_name} has ended ({ended}): nothing waits")
