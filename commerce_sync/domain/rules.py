"""Pure business rules for orders: validation and risk checks. No I/O, deterministic.

Workflows call these directly (they are plain functions over canonical models), so a
rule change is a workflow change: guard it with `workflow.patched` when running orders
would decide differently on replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from commerce_sync.domain.models import Address, Order


@dataclass(frozen=True)
class Problem:
    """Why an order cannot be synced: a field path and a reason a merchant can read."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def _address_problems(prefix: str, address: Address) -> list[Problem]:
    problems = []
    for name in ("line1", "city", "postal_code", "country"):
        if not str(getattr(address, name)).strip():
            problems.append(Problem(f"{prefix}.{name}", "is missing"))
    return problems


def validate_order(order: Order, allowed_currencies: list[str]) -> list[Problem]:
    """Everything wrong with `order` that no retry can fix. Unknown SKUs are checked
    against the ERP separately (`unknown_sku_problems`)."""
    problems: list[Problem] = []
    if not order.lines:
        problems.append(Problem("lines", "the order has no lines"))
    for index, line in enumerate(order.lines):
        if line.quantity <= 0:
            problems.append(
                Problem(f"lines[{index}].quantity", f"must be > 0, got {line.quantity}")
            )
        if not line.sku.strip():
            problems.append(Problem(f"lines[{index}].sku", "is missing"))
        if line.unit_price < 0:
            problems.append(Problem(f"lines[{index}].unit_price", "must not be negative"))
    if order.currency not in allowed_currencies:
        allowed = ", ".join(allowed_currencies)
        problems.append(
            Problem("currency", f"{order.currency} is not allowed for this pair ({allowed})")
        )
    if not order.customer.email.strip() or "@" not in order.customer.email:
        problems.append(Problem("customer.email", "is missing or not an e-mail address"))
    problems += _address_problems("shipping_address", order.shipping_address)
    problems += _address_problems("billing_address", order.billing_address)
    return problems


def unknown_sku_problems(order: Order, unknown_skus: list[str]) -> list[Problem]:
    unknown = set(unknown_skus)
    return [
        Problem(f"lines[{index}].sku", f"{line.sku} is not known to the ERP")
        for index, line in enumerate(order.lines)
        if line.sku in unknown
    ]


@dataclass(frozen=True)
class RiskInputs:
    """What the risk rules look at besides the order itself."""

    is_new_customer: bool
    orders_from_email_last_hour: int


@dataclass(frozen=True)
class RiskRuleSet:
    total_over: Decimal | None
    countries_differ: bool
    new_customer_first_order_over: Decimal | None
    max_orders_per_email_per_hour: int | None


def risk_reasons(order: Order, rules: RiskRuleSet, inputs: RiskInputs) -> list[str]:
    """The reasons this order needs a person's approval; empty when none."""
    reasons: list[str] = []
    if rules.total_over is not None and order.total > rules.total_over:
        reasons.append(f"total {order.total} {order.currency} is over {rules.total_over}")
    if rules.countries_differ and order.billing_address.country != order.shipping_address.country:
        reasons.append(
            f"billing country {order.billing_address.country} differs from "
            f"shipping country {order.shipping_address.country}"
        )
    if (
        rules.new_customer_first_order_over is not None
        and inputs.is_new_customer
        and order.total > rules.new_customer_first_order_over
    ):
        reasons.append(
            f"first order of a new customer is {order.total} {order.currency}, "
            f"over {rules.new_customer_first_order_over}"
        )
    if (
        rules.max_orders_per_email_per_hour is not None
        and inputs.orders_from_email_last_hour > rules.max_orders_per_email_per_hour
    ):
        reasons.append(
            f"{inputs.orders_from_email_last_hour} orders from {order.customer.email} in an hour "
            f"(more than {rules.max_orders_per_email_per_hour})"
        )
    return reasons
