"""Messages of the order sync workflow: input, updates, signals and the status query."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from commerce_sync.domain.models import Shipment


class SyncState(StrEnum):
    STARTED = "started"
    VALIDATING = "validating"
    AWAITING_APPROVAL = "awaiting_approval"
    SYNCING = "syncing"
    AWAITING_SHIPMENT = "awaiting_shipment"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    DEAD_LETTERED = "dead_lettered"
    COMPENSATING = "compensating"
    FAILED = "failed"


class OrderSyncInput(BaseModel):
    pair: str
    store_order_id: str
    trigger: str = "webhook"


class ApprovalDecision(BaseModel):
    approved: bool
    by: str = Field(description="who decided; required")
    reason: str = ""


class CancelRequest(BaseModel):
    reason: str = "cancelled in the store"
    by: str = "store"


class ShipmentNotice(BaseModel):
    """The ERP said something shipped; the workflow reads the shipments itself."""

    erp_event_id: str = ""
    shipment: Shipment | None = None


class StepRecord(BaseModel):
    name: str
    at: datetime
    outcome: str
    detail: str = ""


class PendingApproval(BaseModel):
    reasons: list[str]
    since: datetime
    escalated: bool = False
    escalate_at: datetime
    reject_at: datetime


class OrderSyncStatus(BaseModel):
    pair: str
    store_order_id: str
    state: SyncState
    store_order_number: str = ""
    customer_email: str = ""
    erp_customer_id: str = ""
    erp_order_id: str = ""
    erp_order_number: str = ""
    approval: PendingApproval | None = None
    decision: ApprovalDecision | None = None
    tracking_numbers: list[str] = Field(default_factory=list)
    steps: list[StepRecord] = Field(default_factory=list)
    compensations: list[StepRecord] = Field(default_factory=list)
    error: str = ""
