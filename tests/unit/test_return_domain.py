"""What a return may take back and what it refunds (domain/returns.py), and how a store's
`return.requested` is routed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from commerce_sync.config.pairs import load_pairs
from commerce_sync.domain.models import (
    Address,
    Customer,
    Order,
    OrderLine,
    Origin,
    Payment,
    ReturnLine,
    ReturnRequest,
)
from commerce_sync.domain.returns import (
    ReturnContext,
    credit_lines,
    refund_amount,
    return_problems,
)
from commerce_sync.intake.bodies import StoreEvent
from commerce_sync.intake.routing import store_routes

PLACED = datetime(2026, 1, 10, tzinfo=UTC)
SHIPPED = PLACED + timedelta(days=2)
ADDRESS = Address(line1="1 Main St", city="Austin", postal_code="78701", country="US")


def order(paid: str = "50.00", currency: str = "USD") -> Order:
    return Order(
        origin=Origin(system="kentico", external_id="7"),
        number="7",
        placed_at=PLACED,
        currency=currency,
        customer=Customer(email="a@example.com"),
        billing_address=ADDRESS,
        shipping_address=ADDRESS,
        lines=[
            OrderLine(sku="A", quantity=3, unit_price=Decimal("10.00"), tax=Decimal("3.00")),
            OrderLine(sku="B", quantity=1, unit_price=Decimal("17.00")),
        ],
        total=Decimal("50.00"),
        payment=Payment(method="card", reference="ch_1", amount=Decimal(paid), currency=currency),
    )


def request(*lines: tuple[str, int]) -> ReturnRequest:
    return ReturnRequest(
        origin=Origin(system="kentico", external_id="1"),
        order_number="7",
        lines=[ReturnLine(sku=sku, quantity=quantity) for sku, quantity in lines],
    )


def context(**changes: object) -> ReturnContext:
    base: dict[str, object] = {
        "shipped": {"A": 3, "B": 1},
        "shipped_at": SHIPPED,
        "now": SHIPPED + timedelta(days=5),
        "window_days": 30,
        "currencies": ("USD",),
    }
    return ReturnContext(**{**base, **changes})  # type: ignore[arg-type]


def test_credit_is_priced_as_sold_with_tax_in_proportion() -> None:
    lines = credit_lines(order(), request(("A", 1), ("A", 1), ("B", 1)))
    assert [(line.sku, line.quantity, line.tax) for line in lines] == [
        ("A", 2, Decimal("2.00")),
        ("B", 1, Decimal("0")),
    ]
    assert refund_amount(lines) == Decimal("39.00")
    assert return_problems(request(("A", 2), ("B", 1)), order(), context()) == []


def test_every_reason_to_refuse_is_named() -> None:
    assert return_problems(request(("A", 4)), order(), context()) == [
        "lines[A].quantity: 4 asked, 3 shipped"
    ]
    returned = context(already_returned={"A": 2}, already_refunded=Decimal("22.00"))
    assert return_problems(request(("A", 2)), order(), returned) == [
        "lines[A].quantity: 2 asked, 3 shipped, 2 already returned"
    ]
    assert return_problems(request(("C", 1)), order(), context()) == ["lines[C]: not on order 7"]
    late = context(now=SHIPPED + timedelta(days=30, seconds=1))
    assert return_problems(request(("B", 1)), order(), late) == [
        "window: the 30-day return window closed 2026-02-11"
    ]
    unshipped = context(shipped={}, shipped_at=None, now=PLACED + timedelta(days=31))
    assert return_problems(request(("B", 1)), order(), unshipped) == [
        "lines[B].quantity: 1 asked, 0 shipped",
        "window: the 30-day return window closed 2026-02-09",
    ]
    refunded = context(already_refunded=Decimal("40.00"))
    assert return_problems(request(("A", 1)), order(), refunded) == [
        "refund: 11.00 USD is more than the 10.00 USD paid and not yet refunded"
    ]
    assert return_problems(request(("B", 1)), order(currency="EUR"), context()) == [
        "currency: EUR is not a currency of the pair"
    ]


def test_return_requested_starts_one_return_run_per_request() -> None:
    pairs = load_pairs()
    event = StoreEvent.model_validate(
        {
            "type": "return.requested",
            "timestamp": "2026-01-10T00:00:00Z",
            "data": {"id": "12", "store": "xcart"},
        }
    )
    routes = store_routes(event, pairs)
    assert [(r.workflow, r.workflow_id, r.signal) for r in routes] == [
        ("ReturnSync", "return:xcart-acumatica:12", None)
    ]
    assert routes[0].arg.model_dump() == {
        "pair": "xcart-acumatica",
        "rma_id": "12",
        "trigger": "webhook",
    }
