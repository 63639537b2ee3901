"""Canonical models shared by every system, workflow and activity.

Money is `Decimal` with an ISO-4217 currency on the owning document, datetimes are
timezone-aware UTC, countries are ISO-3166 alpha-2. Every record carries its origin
`(system, external_id)`. These models are Temporal payloads (pydantic data converter)
and must stay free of I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

SystemName = Literal["kentico", "xcart", "brightpearl", "acumatica"]
STORE_SYSTEMS: tuple[SystemName, ...] = ("kentico", "xcart")
ERP_SYSTEMS: tuple[SystemName, ...] = ("brightpearl", "acumatica")

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class CanonicalModel(BaseModel):
    model_config = ConfigDict(frozen=False, extra="forbid", str_strip_whitespace=True)


class Origin(CanonicalModel):
    """Where a record lives: the system and its id there."""

    system: SystemName
    external_id: str


class OrderStatus(StrEnum):
    """Lifecycle of an order as commerce-sync sees it; per-pair maps translate native codes."""

    PENDING = "pending"
    ON_HOLD = "on_hold"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    RETURNED = "returned"
    REFUNDED = "refunded"


class Address(CanonicalModel):
    name: str = ""
    company: str = ""
    line1: str
    line2: str = ""
    city: str
    region: str = ""
    postal_code: str
    country: CountryCode
    phone: str = ""


class Customer(CanonicalModel):
    origin: Origin | None = None
    email: str
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    company: str = ""
    billing_address: Address | None = None
    shipping_address: Address | None = None
    active: bool = True
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class OrderLine(CanonicalModel):
    sku: str
    name: str = ""
    quantity: int
    unit_price: Decimal
    tax: Decimal = Decimal("0")
    tax_code: str = ""
    external_line_id: str = ""

    @property
    def net(self) -> Decimal:
        return self.unit_price * self.quantity


class PaymentKind(StrEnum):
    RECEIPT = "receipt"
    REFUND = "refund"


class Payment(CanonicalModel):
    origin: Origin | None = None
    kind: PaymentKind = PaymentKind.RECEIPT
    method: str
    reference: str
    amount: Decimal
    currency: CurrencyCode
    paid_at: UtcDatetime | None = None
    order_ref: str = ""


class Order(CanonicalModel):
    origin: Origin
    number: str = Field(description="The store's order number, the idempotency key in the ERP")
    status: OrderStatus = OrderStatus.PENDING
    placed_at: UtcDatetime
    updated_at: UtcDatetime | None = None
    currency: CurrencyCode
    customer: Customer
    billing_address: Address
    shipping_address: Address
    lines: list[OrderLine]
    shipping_method: str = ""
    shipping_total: Decimal = Decimal("0")
    tax_total: Decimal = Decimal("0")
    discount_total: Decimal = Decimal("0")
    total: Decimal
    payment: Payment | None = None
    tracking_numbers: list[str] = Field(default_factory=list)
    erp_ref: str = Field(default="", description="The ERP's order number once synced")
    store_notes: Annotated[str, StringConstraints(strip_whitespace=False)] | None = Field(
        default=None,
        description="The store's own field a status write merges into, exactly as read"
        " (Kentico `OrderCustomData`, X-Cart `adminNotes`), so the write needs no read of"
        " its own; None when not read",
    )


class Product(CanonicalModel):
    origin: Origin | None = None
    sku: str
    name: str
    description: str = ""
    price: Decimal
    currency: CurrencyCode
    enabled: bool = True
    updated_at: UtcDatetime | None = None


class StockLevel(CanonicalModel):
    sku: str
    on_hand: int
    available: int
    warehouse: str = ""
    as_of: UtcDatetime | None = None


class ShipmentLine(CanonicalModel):
    sku: str
    quantity: int


class Shipment(CanonicalModel):
    origin: Origin
    order_ref: str = Field(description="The ERP order id or number shipped")
    tracking_numbers: list[str]
    carrier: str = ""
    shipped_at: UtcDatetime | None = None
    lines: list[ShipmentLine] = Field(default_factory=list)


class ReturnStatus(StrEnum):
    """A return request's state as the store shows it; per-store ports translate it."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    REFUNDED = "refunded"


class ReturnLine(CanonicalModel):
    sku: str
    quantity: int
    reason: str = ""


class ReturnRequest(CanonicalModel):
    origin: Origin
    order_number: str
    lines: list[ReturnLine]
    reason: str = ""
    requested_at: UtcDatetime | None = None


class CreditNote(CanonicalModel):
    """An ERP credit (Brightpearl SC order, Acumatica return order or credit memo)."""

    origin: Origin
    parent_order_ref: str
    lines: list[OrderLine]
    currency: CurrencyCode
    total: Decimal


class Refund(CanonicalModel):
    origin: Origin | None = None
    return_ref: str
    amount: Decimal
    currency: CurrencyCode
    reference: str


def utc_now() -> datetime:
    """Wall-clock now, for activities and the API only (workflows use workflow.now())."""
    return datetime.now(UTC)
