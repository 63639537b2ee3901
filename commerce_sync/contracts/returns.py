"""Messages of the return sync workflow: input, the status query and its states.

The `approve` update takes the order workflow's `ApprovalDecision`, so the API, the
`commerce-sync approve` command and `temporal workflow update execute --name approve`
work for both.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from commerce_sync.contracts.orders import ApprovalDecision, PendingApproval, StepRecord
from commerce_sync.domain.models import OrderLine


class ReturnState(StrEnum):
    STARTED = "started"
    VALIDATING = "validating"
    AWAITING_APPROVAL = "awaiting_approval"
    PROCESSING = "processing"
    REFUNDED = "refunded"
    REJECTED = "rejected"
    COMPENSATING = "compensating"
    FAILED = "failed"


class ReturnSyncInput(BaseModel):
    pair: str
    rma_id: str
    trigger: str = "webhook"


class ReturnSyncStatus(BaseModel):
    pair: str
    rma_id: str
    state: ReturnState
    reference: str = Field(default="", description="the key of every ERP document of the return")
    store_order_id: str = ""
    store_order_number: str = ""
    erp_order_id: str = ""
    lines: list[OrderLine] = Field(default_factory=list)
    refund_amount: Decimal = Decimal("0")
    currency: str = ""
    credit_id: str = ""
    restock_id: str = ""
    refund_id: str = ""
    approval: PendingApproval | None = None
    decision: ApprovalDecision | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    compensations: list[StepRecord] = Field(default_factory=list)
    error: str = ""


def return_reference(store: str, rma_id: str, run_key: str) -> str:
    """The idempotency key of the ERP documents of one run of a return request.

    `run_key` is the run chain's first run id (`first_execution_run_id`): retries within
    the run, and a worker restart, find the same documents; a fresh run started after a
    failed, compensated one (a redelivered request) makes new ones instead of finding
    the cancelled credit of the failed run."""
    return f"RMA-{store}-{rma_id}-{run_key.replace('-', '')[-10:]}"  # v7 ids: the random end
