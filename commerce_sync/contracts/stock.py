"""What the inventory push exchanges with the systems' ports.

Plain pydantic models (no I/O), so the inventory workflow may import them too.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from commerce_sync.domain.models import Order, OrderStatus

OPEN_ORDER_STATUSES = frozenset({OrderStatus.PENDING, OrderStatus.ON_HOLD, OrderStatus.PROCESSING})
"""A store order in one of these still waits for goods; cancelled, rejected, shipped and
later ones hold nothing back."""


class Availability(BaseModel):
    """What the ERP can sell of one SKU now (summed over its warehouses)."""

    sku: str
    available: int
    as_of: datetime | None = None


class StockChanges(BaseModel):
    """SKUs whose stock changed in the ERP, and where the next incremental read starts."""

    skus: list[str] = Field(default_factory=list)
    cursor: datetime | None = Field(
        default=None, description="the newest modification seen, in the ERP's own clock"
    )


class StockWriteResult(BaseModel):
    """What one batched store write did. Transient failures raise instead (the write is
    absolute, so repeating the whole batch is harmless)."""

    written: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(
        default_factory=list, description="already at that quantity: nothing was sent"
    )
    rejected: dict[str, str] = Field(
        default_factory=dict, description="SKU -> why the store refused it for good"
    )


class OrderStamp(BaseModel):
    """A store order from a listing of changed orders: enough to tell new from old."""

    order_id: str
    placed_at: datetime


class OrderReservation(BaseModel):
    """A store order's quantities per SKU, and whether it still waits to be fulfilled."""

    order_id: str
    placed_at: datetime
    open: bool
    lines: dict[str, int] = Field(default_factory=dict)


def order_quantities(order: Order) -> dict[str, int]:
    """The order's quantities per SKU (lines of one SKU summed): what it takes from stock."""
    quantities: dict[str, int] = {}
    for line in order.lines:
        if line.sku and line.quantity > 0:
            quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    return quantities


def reservation_of(order_id: str, order: Order) -> OrderReservation:
    """What a store order holds back: its quantities per SKU while it is still open."""
    return OrderReservation(
        order_id=order_id,
        placed_at=order.placed_at,
        open=order.status in OPEN_ORDER_STATUSES,
        lines=order_quantities(order),
    )
