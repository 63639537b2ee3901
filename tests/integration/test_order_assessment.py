"""The order assessment made beside the ERP's customer lookup (SQLite and Postgres): the
run does not know yet whether the customer is new, so the assessment weighs the order
both ways and the run picks (`OrderAssessment.if_new_customer`)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine

from commerce_sync.activities.database import DatabaseActivities
from commerce_sync.config.pairs import load_pairs
from commerce_sync.contracts.orders import OrderAssessmentInput
from commerce_sync.domain.anomalies import AnomalyFlag
from commerce_sync.domain.models import Address, Customer, Order, OrderLine, Origin

PAIR = "kentico-brightpearl"  # pairs.toml: a new customer's first express order over 400.00


def express_order(number: str) -> Order:
    address = Address(
        line1="1 Main St", city="Austin", region="TX", postal_code="78701", country="US"
    )
    return Order(
        origin=Origin(system="kentico", external_id=number),
        number=number,
        placed_at=datetime(2026, 12, 6, 10, 0, tzinfo=UTC),
        currency="USD",
        customer=Customer(email=f"first-{number}@example.com", first_name="Fay", last_name="First"),
        billing_address=address,
        shipping_address=address,
        lines=[OrderLine(sku="WIDGET-1", quantity=1, unit_price=Decimal("950.00"))],
        shipping_method="Express",
        total=Decimal("950.00"),
    )


def checks(flags: list[AnomalyFlag]) -> set[str]:
    return {flag.check for flag in flags}


def test_an_assessment_made_before_the_customer_is_known_weighs_both_ways(
    engine: Engine,
) -> None:
    activities = DatabaseActivities(engine, load_pairs())

    unknown = activities.assess_order(
        OrderAssessmentInput(
            pair=PAIR, store_order_id="1", order=express_order("1"), is_new_customer=None
        )
    )
    assert "first_order_express" not in checks(unknown.flags)
    assert unknown.if_new_customer is not None
    assert "first_order_express" in checks(unknown.if_new_customer.flags)
    assert unknown.if_new_customer.score >= unknown.score + 1.0
    assert unknown.first_run  # recorded now, as before

    # Asked with the answer known, it weighs one way, as runs recorded before did.
    known = activities.assess_order(
        OrderAssessmentInput(
            pair=PAIR, store_order_id="2", order=express_order("2"), is_new_customer=True
        )
    )
    assert known.if_new_customer is None
    assert "first_order_express" in checks(known.flags)
