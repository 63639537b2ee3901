"""What a return may take back and what it refunds. Pure: the return workflow calls it.

A return is checked against the order as the store sold it (prices, tax, currency,
payment), what the ERP shipped, and what earlier returns of the order already took back
and refunded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from commerce_sync.domain.models import Order, OrderLine, ReturnLine, ReturnRequest

CENT = Decimal("0.01")


@dataclass(frozen=True)
class ReturnContext:
    """What the check needs besides the request and the order."""

    shipped: dict[str, int]
    already_returned: dict[str, int] = field(default_factory=dict)
    already_refunded: Decimal = Decimal("0")
    shipped_at: datetime | None = None
    now: datetime | None = None
    window_days: int = 30
    currencies: tuple[str, ...] = ()


def requested_quantities(request: ReturnRequest) -> dict[str, int]:
    """SKU -> quantity asked for (a SKU on several lines adds up)."""
    asked: dict[str, int] = {}
    for line in request.lines:
        asked[line.sku] = asked.get(line.sku, 0) + line.quantity
    return asked


def credit_lines(order: Order, request: ReturnRequest) -> list[OrderLine]:
    """The returned quantities priced as sold: the unit price of the order's line and its
    tax in proportion. SKUs not on the order are left out (validation refuses them)."""
    sold = {line.sku: line for line in reversed(order.lines)}
    lines: list[OrderLine] = []
    for sku, quantity in requested_quantities(request).items():
        line = sold.get(sku)
        if line is None or line.quantity <= 0:
            continue
        tax = (line.tax * quantity / line.quantity).quantize(CENT, rounding=ROUND_HALF_UP)
        lines.append(line.model_copy(update={"quantity": quantity, "tax": tax}))
    return lines


def refund_amount(lines: list[OrderLine]) -> Decimal:
    total = sum((line.unit_price * line.quantity + line.tax for line in lines), Decimal("0"))
    return total.quantize(CENT, rounding=ROUND_HALF_UP)


def restock_lines(lines: list[OrderLine]) -> list[ReturnLine]:
    return [ReturnLine(sku=line.sku, quantity=line.quantity) for line in lines]


def return_problems(request: ReturnRequest, order: Order, context: ReturnContext) -> list[str]:
    """Why the return cannot be accepted; empty when it can."""
    problems: list[str] = []
    asked = requested_quantities(request)
    if not asked:
        problems.append("lines: the return names no goods")
    for sku, quantity in sorted(asked.items()):
        if quantity <= 0:
            problems.append(f"lines[{sku}].quantity: must be positive")
            continue
        shipped = context.shipped.get(sku, 0)
        returned = context.already_returned.get(sku, 0)
        if not any(line.sku == sku for line in order.lines):
            problems.append(f"lines[{sku}]: not on order {order.number}")
        elif quantity > shipped - returned:
            problems.append(
                f"lines[{sku}].quantity: {quantity} asked, {shipped} shipped"
                + (f", {returned} already returned" if returned else "")
            )
    if context.now is not None:
        start = context.shipped_at or order.placed_at
        closes = start + timedelta(days=context.window_days)
        if context.now > closes:
            problems.append(
                f"window: the {context.window_days}-day return window closed "
                f"{closes.date().isoformat()}"
            )
    if context.currencies and order.currency not in context.currencies:
        problems.append(f"currency: {order.currency} is not a currency of the pair")
    if order.payment is not None and order.payment.currency != order.currency:
        problems.append(
            f"currency: paid in {order.payment.currency}, the order is in {order.currency}"
        )
    paid = order.payment.amount if order.payment is not None else order.total
    refund = refund_amount(credit_lines(order, request))
    left = paid - context.already_refunded
    if refund > left:
        problems.append(
            f"refund: {refund} {order.currency} is more than the {left} {order.currency} "
            "paid and not yet refunded"
        )
    return problems
