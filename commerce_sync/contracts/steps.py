"""Inputs and outputs of activities: plain pydantic models that workflows may import."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from commerce_sync.contracts.documents import ErpOrderHandle
from commerce_sync.domain.models import Customer, Order, OrderStatus, Payment


class LinkInput(BaseModel):
    pair: str
    kind: str
    store_id: str
    erp_id: str


class StoreOrderRef(BaseModel):
    pair: str
    order_id: str


class StoreStatusUpdate(BaseModel):
    pair: str
    order_id: str
    status: OrderStatus
    erp_ref: str | None = None
    note: str | None = None
    store_notes: str | None = Field(
        default=None,
        description="what the store's notes field holds (`Order.store_notes`, or what the"
        " run's last write answered); None: the write reads the order first",
    )


class TrackingUpdate(BaseModel):
    pair: str
    order_id: str
    tracking_numbers: list[str]
    carrier: str = ""
    store_notes: str | None = Field(
        default=None,
        description="as in `StoreStatusUpdate.store_notes`: given, the write reads nothing first",
    )


class SkuCheck(BaseModel):
    pair: str
    skus: list[str]


class OrderErpCheck(BaseModel):
    """Input of `Erp.check_order`: the ERP's two reads an order needs before it is
    weighed, made together (the SKUs it does not know, the customer with the e-mail)."""

    pair: str
    skus: list[str]
    email: str


class OrderErpFacts(BaseModel):
    unknown_skus: list[str]
    customer_id: str | None = Field(description="the ERP customer with the e-mail, if any")


class CustomerLookup(BaseModel):
    pair: str
    email: str


class CustomerCreate(BaseModel):
    pair: str
    customer: Customer


class CustomerRef(BaseModel):
    pair: str
    customer_id: str


class ErpOrderLookup(BaseModel):
    pair: str
    store_order_number: str


class OrderBookkeeping(BaseModel):
    """What the ERP order create records in the app database once the order is in the
    ERP: the customer and order links, and the resolution of the open dead letters an
    earlier failed run of the same store order left."""

    store_order_id: str
    customer_email: str
    business_key: str = Field(description="the run's workflow id, the dead letters' key")


class ErpOrderCreate(BaseModel):
    pair: str
    order: Order
    customer_id: str
    first_run: bool = Field(
        default=False,
        description="no earlier run of this store order reached the ERP (OrderAssessment)",
    )
    bookkeeping: OrderBookkeeping | None = Field(
        default=None,
        description="recorded by the create once the order is in the ERP; None: the run"
        " records the links and resolves its dead letters in steps of their own (runs"
        " recorded before the order-bookkeeping patch)",
    )


class CustomerCreated(BaseModel):
    customer_id: str
    twin_possible: bool = Field(
        default=True,
        description="an earlier attempt may have sent this create and lost its answer, so a"
        " second customer with the e-mail may still appear; False after a first attempt",
    )


class ErpOrderCreated(BaseModel):
    handle: ErpOrderHandle
    created: bool = Field(description="False when the order already existed (idempotent re-run)")
    twin_possible: bool = Field(
        default=True,
        description="an earlier attempt or run may have sent this create and lost its answer,"
        " so a second order may still appear; False after a first attempt of a first run"
        " (results recorded before this field say nothing: True)",
    )


class ErpOrderRefInput(BaseModel):
    pair: str
    handle: ErpOrderHandle


class OrderTwinCheck(BaseModel):
    """Undo what a create whose answer was lost made again: every other live ERP order
    carrying the store order's number and, when this run made the customer, a second
    customer of the same person."""

    pair: str
    store_order_number: str
    keep: ErpOrderHandle
    customer_id: str = Field(default="", description="the customer this run created")
    customer: Customer | None = None


class PaymentRecord(BaseModel):
    pair: str
    handle: ErpOrderHandle
    payment: Payment
    customer_id: str
    new_order: bool = Field(
        default=False,
        description="the run's own create made the order: no payment can be on it but this step's",
    )


class PaymentReversal(BaseModel):
    pair: str
    handle: ErpOrderHandle
    payment_id: str


class OrderSeen(BaseModel):
    pair: str
    store_order_id: str
    email: str
    placed_at: datetime


class DeadLetterInput(BaseModel):
    pair: str
    process: str
    business_key: str
    reason: str
    error: str
    payload: dict[str, Any] = Field(default_factory=dict)
    attempts: int = 1


class ResolveDeadLetters(BaseModel):
    business_key: str
    note: str


class AlertInput(BaseModel):
    kind: str
    key: str
    message: str


class ShipmentEventRef(BaseModel):
    pair: str
    ids: list[str] = Field(default_factory=list)
    rows: list[dict[str, Any]] = Field(default_factory=list)


class LinkLookup(BaseModel):
    pair: str
    kind: str
    erp_id: str
