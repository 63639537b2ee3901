"""Messages of the order sync workflow: input, updates, signals and the status query."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from commerce_sync.domain.anomalies import AnomalyFlag
from commerce_sync.domain.cleansing import CleansedOrder, FieldChange
from commerce_sync.domain.models import Address, Order, Shipment
from commerce_sync.domain.pair_rules import PairRules


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


NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]


class AddressCorrection(Address):
    """A corrected address: the fields an order needs must be filled in."""

    line1: NonEmpty
    city: NonEmpty
    postal_code: NonEmpty


class OrderCorrections(BaseModel):
    """An operator's fixes, applied on top of the order read from the store (dead-letter
    replay): the store keeps its record, the ERP gets the corrected one."""

    model_config = ConfigDict(extra="forbid")

    shipping_address: AddressCorrection | None = None
    billing_address: AddressCorrection | None = None
    customer_email: Email | None = None
    sku_map: dict[NonEmpty, NonEmpty] = Field(
        default_factory=dict, description="order line SKU -> the SKU to send instead"
    )

    def describe(self) -> str:
        """What is corrected, without the values (they are personal data)."""
        parts = [
            name
            for name in ("shipping_address", "billing_address", "customer_email")
            if getattr(self, name) is not None
        ]
        parts += [f"sku {old} -> {new}" for old, new in sorted(self.sku_map.items())]
        return ", ".join(parts) or "nothing"

    def apply(self, order: Order) -> Order:
        """The order with the corrections applied (pure: `order` is left as it is)."""
        update: dict[str, object] = {}
        if self.shipping_address is not None:
            update["shipping_address"] = Address.model_validate(self.shipping_address.model_dump())
        if self.billing_address is not None:
            update["billing_address"] = Address.model_validate(self.billing_address.model_dump())
        if self.customer_email is not None:
            update["customer"] = order.customer.model_copy(update={"email": self.customer_email})
        if self.sku_map:
            update["lines"] = [
                line.model_copy(update={"sku": self.sku_map.get(line.sku, line.sku)})
                for line in order.lines
            ]
        return order.model_copy(update=update, deep=True)


ORDER_RUN_PATCH_LEVEL = 3
"""The order run's patches (`workflows/order_sync.py` `PATCH_LEVELS`) that today's
starters know: a run started with this level takes them without asking its history."""


class OrderSyncInput(BaseModel):
    pair: str
    store_order_id: str
    trigger: str = "webhook"
    corrections: OrderCorrections | None = Field(
        default=None, description="operator fixes from a dead-letter replay; none by default"
    )
    rules: PairRules | None = Field(
        default=None,
        description="the pair's rules as the starter read them from pairs.toml, recorded with"
        " the start; None: the run reads them first (`config.pair`), one step more",
    )
    searchable_at_start: bool = Field(
        default=False,
        description="the starter set IntegrationPair, StoreOrderId and SyncState=validating"
        " with the start (`intake/routing.py` `order_search`), so the run does not upsert"
        " them again; False (runs started before): the run upserts them first",
    )
    patch_level: int = Field(
        default=0,
        ge=0,
        description="the order run's patches up to this level were in the starter's code"
        " (`ORDER_RUN_PATCH_LEVEL`), so the run takes their new branches without asking its"
        " history and records no patch marker, nor the TemporalChangeVersion upsert each"
        " marker brings; 0 (runs started before): each patch is asked as it was",
    )


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
    cleansed: list[FieldChange] = Field(
        default_factory=list, description="what cleansing changed before the ERP write"
    )
    flags: list[AnomalyFlag] = Field(
        default_factory=list, description="what the anomaly checks found unusual"
    )
    anomaly_score: float | None = Field(
        default=None, description="the sum of the flags' scores (None: not checked)"
    )


class OrderCleansing(BaseModel):
    """Input of `Checks.cleanse_order`: the order as read, cleansed by its pair's rules."""

    pair: str
    order: Order


class PreparedOrder(BaseModel):
    """Output of `Checks.prepare_order`: the order cleansed by its pair's rules, and the
    value of the run's `CustomerEmail` search attribute for the e-mail as read (the
    codec's keyed hash, or the e-mail itself without codec keys; "" for none)."""

    cleansed: CleansedOrder
    email_search_value: str


class OrderAssessmentInput(BaseModel):
    """Input of `Database.assess_order`: record the order and weigh it against the pair's
    earlier orders."""

    pair: str
    store_order_id: str
    order: Order
    is_new_customer: bool | None = Field(
        description="None: not known yet (the ERP lookup runs beside the assessment), so"
        " the flags are weighed both ways (`OrderAssessment.if_new_customer`)"
    )


class NewCustomerFlags(BaseModel):
    """The flags and score of an order whose customer turns out to be new to the ERP."""

    flags: list[AnomalyFlag] = Field(default_factory=list)
    score: float = 0.0


class OrderAssessment(BaseModel):
    orders_from_email_last_hour: int
    flags: list[AnomalyFlag] = Field(
        default_factory=list,
        description="for a customer the ERP knows, or as asked (`is_new_customer` given)",
    )
    score: float = 0.0
    if_new_customer: NewCustomerFlags | None = Field(
        default=None, description="asked with `is_new_customer` None: the flags if it is new"
    )
    history_orders: int = Field(description="the pair's earlier orders the checks learnt from")
    first_run: bool = Field(
        default=False,
        description="no earlier run of this order got as far as the ERP (it was not seen before,"
        " and a row of it would not have been pruned yet)",
    )
