"""Explainable anomaly flags for a store order, learned from the merchant's own history.

"Learned from the merchant's own history" means that nothing here is a fixed threshold
in money or units: what is usual is read from the pair's earlier orders (their totals,
the same customer's totals, the quantities each SKU is bought in, the countries orders
are billed in and shipped to, the e-mails seen at a shipping address), gathered by an
activity into an `OrderHistory`. A shop whose orders are usually 40.00 and one whose
orders are usually 40,000.00 get the same rules (`AnomalyRules`) and flag different
orders. Only `first_order_express` is a fixed rule, set by the merchant.

Method. The numeric checks score how far the order stands out with a robust z-score:
z = (x - median) / (1.4826 * MAD), where MAD is the median absolute deviation from the
median and 1.4826 makes it estimate the standard deviation of normal data. The median
and the MAD ignore the few extreme orders a history always has (a wholesale order, a
typo refunded later), which a mean and a standard deviation would chase. Only orders
ABOVE the usual are flagged: a small order is no risk.

- Totals are compared on a log scale: order totals are skewed (many small, a few large)
  and "3x the usual order" is the same surprise at 30.00 as at 3,000.00. The centre is
  the median of the positive totals (for an even count, the mean of the two middle
  ones, still a median of the logs), so an order at the store's median scores 0.
  Totals <= 0 (free orders, credits) have no logarithm and are skipped.
- Quantities are compared on a linear scale (units are counted, small and discrete).
- A customer with `min_customer_orders` earlier orders is measured against their own
  (`total_vs_customer`), not the store's: the store-wide total and quantity checks are
  skipped for them, or every trade buyer's usual bulk order would wait. (Measured on
  `bench/anomalies.py`'s labelled stream: they were 32-58 of 53-86 false alarms.)
- Floors: a history whose orders are all alike has a MAD of 0 and would make every
  difference infinitely unusual, so the scale is floored: at log(1.10) for totals (as if
  orders usually spread by 10%; log(1.25) against a customer's own few orders) and at
  1.0 unit for quantities.

Scores. Every check scores 1.0 at its limit from `AnomalyRules` (z / limit for the
robust checks; the rarity limit over a shipping route's share, at most 2.0; other
e-mails at an address against their limit), so scores of different checks are
comparable, and
they are rounded to 2 decimals (and capped at MAX_SCORE so they stay finite whatever
the limits). The order's score is their sum: evidence adds up, two
half-way signs weigh as much as one sign at its limit, and the order waits for
approval when the sum reaches `approve_at`. Flags under `report_from` are left out (and
so do not count), and a check that finds nothing unusual (score 0) never flags.

Reasons are one sentence a merchant can read, with the figures that explain the flag.
They never contain the customer's e-mail or address: reasons are shown in lists and
alerts.

Everything here is pure and deterministic (no I/O, no clock, no randomness; decimal
arithmetic in a fixed context whatever the thread's context is): the
`Database.assess_order` activity computes the flags and the workflow records the
result, so a replay reads them back rather than computing them again.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Context, Decimal, DivisionByZero, InvalidOperation, localcontext

from pydantic import BaseModel, Field

from commerce_sync.domain.models import Order
from commerce_sync.domain.pair_rules import AnomalyRules

CHECKS = (
    "total_vs_store",
    "total_vs_customer",
    "sku_quantity",
    "rare_route",
    "shared_address",
    "first_order_express",
)

# 1.4826 * MAD estimates the standard deviation of normally distributed data.
MAD_TO_SIGMA = 1.4826
# The smallest spread assumed: orders usually differing by 10% in total, by one unit.
TOTAL_SCALE_FLOOR = math.log(1.10)
# A customer's few orders say little about their spread: three alike would make 1.8x
# their usual "unusual". Their floor is a 25% spread (a flag from about 3.8x).
CUSTOMER_SCALE_FLOOR = math.log(1.25)
QUANTITY_SCALE_FLOOR = 1.0
# Scores stay finite whatever the limits: a score this high already means "absurd".
MAX_SCORE = 1_000_000.0

# Decimal arithmetic in a fixed context (the thread's context may have been changed);
# an overflow gives Infinity rather than an error.
_DECIMALS = Context(prec=28, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero])


class OrderHistory(BaseModel):
    """What the app database knows of the pair's earlier orders (placed before this one,
    this one excluded), gathered by an activity."""

    store_totals: list[Decimal] = Field(
        default_factory=list,
        description="the pair's earlier order totals in this order's currency (within "
        "history_days)",
    )
    customer_totals: list[Decimal] = Field(
        default_factory=list,
        description="the same customer's (same e-mail) earlier totals, same currency",
    )
    sku_quantities: dict[str, list[int]] = Field(
        default_factory=dict,
        description="per SKU of this order: the quantity of that SKU in each earlier order "
        "that had it",
    )
    orders_billed_in_country: int = Field(
        default=0, description="earlier orders billed in this order's billing country"
    )
    orders_on_route: int = Field(
        default=0, description="of those, shipped to this order's shipping country"
    )
    other_emails_at_address: int = Field(
        default=0,
        description="distinct other e-mails that shipped to this order's shipping address "
        "within address_window_days",
    )


class AnomalyFlag(BaseModel):
    """One unusual thing about an order, scored against its check's limit."""

    check: str = Field(description="one of " + ", ".join(CHECKS))
    score: float = Field(description="1.0 = at the check's limit; rounded to 2 decimals")
    reason: str = Field(description="one sentence a merchant can read, with the figures")


def anomaly_flags(
    order: Order, history: OrderHistory, rules: AnomalyRules, *, is_new_customer: bool
) -> list[AnomalyFlag]:
    """Flags scoring at least rules.report_from, highest score first (ties by check
    name). Empty when rules.enabled is False.

    `sku_quantity` gives at most one flag, for the worst SKU (its reason counts the other
    unusual SKUs): the lines of one order are one decision of one buyer, so a bulk order
    that is large on five SKUs is one unusual fact, not five to add up; and each check
    then names at most one flag (the `OrderFlags` search attribute lists check names)."""
    returning, new = anomaly_flags_both_ways(order, history, rules)
    return new if is_new_customer else returning


def anomaly_flags_both_ways(
    order: Order, history: OrderHistory, rules: AnomalyRules
) -> tuple[list[AnomalyFlag], list[AnomalyFlag]]:
    """`anomaly_flags` for a returning customer and for a new one, for an order weighed
    before the ERP has said which (`Database.assess_order`). The checks against the
    history run once: only `first_order_express` depends on the customer being new, and
    the store-wide total check over a full sample is most of the cost."""
    if not rules.enabled:
        return [], []
    # A customer with a history of their own is measured against it: a trade buyer's
    # usual 40-unit order is not unusual because the store's shoppers buy two.
    known = sum(1 for total in history.customer_totals if _positive(total))
    store_wide = known < rules.min_customer_orders
    with localcontext(_DECIMALS):
        learned = [
            _total_vs_store(order, history, rules) if store_wide else None,
            _total_vs_customer(order, history, rules),
            _sku_quantity(order, history, rules) if store_wide else None,
            _rare_route(order, history, rules),
            _shared_address(history, rules),
        ]
        express = _first_order_express(order, rules)
    return _ranked(learned, rules), _ranked([*learned, express], rules)


def _ranked(found: list[AnomalyFlag | None], rules: AnomalyRules) -> list[AnomalyFlag]:
    """The reported flags, highest score first (ties by check name)."""
    flags = [flag for flag in found if flag is not None and _reported(flag.score, rules)]
    return sorted(flags, key=lambda flag: (-flag.score, flag.check))


def anomaly_score(flags: list[AnomalyFlag]) -> float:
    """The order's score: the sum of its flags' scores, rounded to 2 decimals (two
    half-way flags make one whole)."""
    return round(math.fsum(flag.score for flag in flags), 2)


def needs_approval(flags: list[AnomalyFlag], rules: AnomalyRules) -> bool:
    """Whether the flags add up to the pair's approval threshold."""
    return anomaly_score(flags) >= rules.approve_at


# -- the checks --------------------------------------------------------------------------


def _total_vs_store(order: Order, history: OrderHistory, rules: AnomalyRules) -> AnomalyFlag | None:
    return _total_check(
        "total_vs_store",
        "this store's median order",
        order,
        history.store_totals,
        rules.total_vs_store,
        rules.min_history,
    )


def _total_vs_customer(
    order: Order, history: OrderHistory, rules: AnomalyRules
) -> AnomalyFlag | None:
    return _total_check(
        "total_vs_customer",
        "this customer's median order",
        order,
        history.customer_totals,
        rules.total_vs_customer,
        rules.min_customer_orders,
        floor=CUSTOMER_SCALE_FLOOR,
    )


def _total_check(
    check: str,
    whose: str,
    order: Order,
    totals: Sequence[Decimal],
    limit: float | None,
    min_orders: int,
    *,
    floor: float = TOTAL_SCALE_FLOOR,
) -> AnomalyFlag | None:
    """The robust z-score of log(order.total) against the logs of `totals`."""
    if limit is None or not _positive(order.total):
        return None
    learned = [total for total in totals if _positive(total)]
    if len(learned) < min_orders:
        return None
    median = statistics.median(learned)
    centre = _log(median)
    spread = statistics.median([abs(_log(total) - centre) for total in learned])
    scale = max(MAD_TO_SIGMA * spread, floor)
    z = (_log(order.total) - centre) / scale
    if z <= 0:
        return None
    usual_up_to = median * Decimal(limit * scale).exp()
    ratio = order.total / median
    reason = (
        f"total {_money(order.total)} {order.currency} is {_ratio(ratio)}x {whose} "
        f"({_money(median)} over {len(learned)} orders; usual up to {_money(usual_up_to)})"
    )
    return AnomalyFlag(check=check, score=_round(z / limit), reason=reason)


def _sku_quantity(order: Order, history: OrderHistory, rules: AnomalyRules) -> AnomalyFlag | None:
    """The worst SKU by the robust z-score of its quantity (summed over the order's
    lines) against the quantities earlier orders took of it."""
    limit = rules.sku_quantity
    if limit is None:
        return None
    quantities: dict[str, int] = {}
    for line in order.lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    scored: list[tuple[float, str, str]] = []
    for sku in sorted(quantities):
        quantity = quantities[sku]
        learned = [earlier for earlier in history.sku_quantities.get(sku, []) if earlier > 0]
        if len(learned) < rules.min_sku_orders:
            continue
        median = statistics.median([float(earlier) for earlier in learned])
        spread = statistics.median([abs(earlier - median) for earlier in learned])
        scale = max(MAD_TO_SIGMA * spread, QUANTITY_SCALE_FLOOR)
        z = (quantity - median) / scale
        if z <= 0:
            continue
        low = max(1, math.ceil(median - scale))
        high = max(low, math.floor(median + scale))
        usual = f"{low}" if low == high else f"{low}-{high}"
        reason = (
            f"{quantity} x {sku} where orders usually take {usual} "
            f"(median {_count(median)} over {len(learned)} orders)"
        )
        scored.append((_round(z / limit), sku, reason))
    if not scored:
        return None
    scored.sort(key=lambda item: (-item[0], item[1]))
    score, _sku, reason = scored[0]
    others = sum(1 for other in scored[1:] if _reported(other[0], rules))
    if others:
        reason += (
            f", and {others} other SKU{'s' if others > 1 else ''} "
            f"{'are' if others > 1 else 'is'} also over {'their' if others > 1 else 'its'} "
            "usual quantity"
        )
    return AnomalyFlag(check="sku_quantity", score=score, reason=reason)


def _rare_route(order: Order, history: OrderHistory, rules: AnomalyRules) -> AnomalyFlag | None:
    """Shipping abroad to a country few of the billing country's orders went to: the
    limit over the route's share, so a route at the `rare_route_share` limit scores 1.0,
    one twice as common 0.5, and one seen at most half as often as the limit (never, or
    once in a big history) 2.0. (Scoring 1 - share/limit left a route seen once out of
    600 orders at 0.92: reported, but never enough to wait.)"""
    limit = rules.rare_route_share
    billed = order.billing_address.country
    shipped = order.shipping_address.country
    if limit is None or billed == shipped:
        return None
    orders = history.orders_billed_in_country
    if orders < rules.min_history:
        return None
    on_route = min(max(history.orders_on_route, 0), orders)
    share = on_route / orders
    reason = (
        f"billed in {billed}, shipped to {shipped}: {on_route} of {orders} earlier orders "
        f"billed in {billed} went to {shipped} (under {limit * 100:g}% is rare)"
    )
    return AnomalyFlag(
        check="rare_route", score=_round(limit / max(share, limit / 2)), reason=reason
    )


def _shared_address(history: OrderHistory, rules: AnomalyRules) -> AnomalyFlag | None:
    """Other customers' e-mails seen at this shipping address (reshippers, drop points)."""
    limit = rules.max_emails_per_address
    others = history.other_emails_at_address
    if limit is None or others <= 0:
        return None
    reason = (
        f"{others + 1} different e-mails ordered to this address in the last "
        f"{rules.address_window_days} days, this one included (limit {limit})"
    )
    return AnomalyFlag(check="shared_address", score=_round(others / limit), reason=reason)


def _first_order_express(order: Order, rules: AnomalyRules) -> AnomalyFlag | None:
    """A fixed rule: a new customer's first order shipped express over the limit always
    scores 1.0 ("ask"); weighed as if the customer were new (a returning one never gets
    it, `anomaly_flags_both_ways`)."""
    limit = rules.first_order_express_over
    if limit is None or not order.total > limit:
        return None
    method = order.shipping_method.casefold()
    if not any(
        word.strip() and word.strip().casefold() in method for word in rules.express_methods
    ):
        return None
    reason = (
        f'first order of a new customer ships by "{order.shipping_method}" at '
        f"{_money(order.total)} {order.currency}, over the {_money(limit)} {order.currency} "
        "limit for express shipping on a first order"
    )
    return AnomalyFlag(check="first_order_express", score=1.0, reason=reason)


# -- helpers ---------------------------------------------------------------------------


def _reported(score: float, rules: AnomalyRules) -> bool:
    return score > 0 and score >= rules.report_from


def _log(value: Decimal) -> float:
    """ln of a positive, finite amount. In floats: `Decimal.ln` at 28 digits was 70 ms of
    CPU per new customer's order over a full store sample (`bench.assessment
    --new-customers`), for figures only compared and shown to two places. Through
    `Decimal.ln` only where the amount is beyond a float's range."""
    as_float = float(value)
    if 0.0 < as_float < math.inf:
        return math.log(as_float)
    return float(value.ln())


def _positive(value: Decimal) -> bool:
    return value.is_finite() and value > 0


def _round(score: float) -> float:
    return round(min(score, MAX_SCORE), 2)


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _ratio(value: Decimal) -> str:
    return f"{value:.1f}"


def _count(value: float) -> str:
    """A median of whole units: `2`, or `2.5` between two."""
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
