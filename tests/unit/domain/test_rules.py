"""Order validation and risk rules (domain/rules.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from commerce_sync.domain.models import Address, Customer, Order, OrderLine, Origin
from commerce_sync.domain.rules import (
    Problem,
    RiskInputs,
    RiskRuleSet,
    risk_reasons,
    unknown_sku_problems,
    validate_order,
)

PLACED = datetime(2026, 1, 10, tzinfo=UTC)
US = Address(line1="1 Main St", city="Austin", region="TX", postal_code="78701", country="US")
GB = Address(line1="1 High St", city="London", postal_code="EC1Y 8SY", country="GB")
CURRENCIES = ["USD", "EUR"]
OFF = RiskRuleSet(
    total_over=None,
    countries_differ=False,
    new_customer_first_order_over=None,
    max_orders_per_email_per_hour=None,
)
KNOWN = RiskInputs(is_new_customer=False, orders_from_email_last_hour=0)


def line(sku: str = "A", quantity: int = 1, unit_price: str = "10.00") -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price=Decimal(unit_price))


def order(
    lines: list[OrderLine] | None = None,
    currency: str = "USD",
    email: str = "a@example.com",
    billing: Address = US,
    shipping: Address = US,
    total: str = "10.00",
) -> Order:
    return Order(
        origin=Origin(system="xcart", external_id="7"),
        number="7",
        placed_at=PLACED,
        currency=currency,
        customer=Customer(email=email),
        billing_address=billing,
        shipping_address=shipping,
        lines=[line()] if lines is None else lines,
        total=Decimal(total),
    )


def problems(value: Order) -> list[str]:
    return [str(problem) for problem in validate_order(value, CURRENCIES)]


# --- Problem ---------------------------------------------------------------------------


def test_a_problem_reads_as_field_and_reason() -> None:
    problem = Problem("lines[0].sku", "is missing")
    assert str(problem) == "lines[0].sku: is missing"
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.reason = "other"  # type: ignore[misc]


# --- validate_order --------------------------------------------------------------------


def test_a_good_order_has_no_problems() -> None:
    assert validate_order(order(), CURRENCIES) == []
    assert problems(order(currency="EUR", billing=GB)) == []


def test_an_order_without_lines() -> None:
    assert problems(order(lines=[])) == ["lines: the order has no lines"]


@pytest.mark.parametrize("quantity", [0, -2])
def test_a_line_quantity_must_be_positive(quantity: int) -> None:
    assert problems(order(lines=[line(), line(quantity=quantity)])) == [
        f"lines[1].quantity: must be > 0, got {quantity}"
    ]


def test_a_line_needs_a_sku() -> None:
    assert problems(order(lines=[line(sku="")])) == ["lines[0].sku: is missing"]


def test_a_unit_price_must_not_be_negative() -> None:
    assert problems(order(lines=[line(unit_price="-0.01")])) == [
        "lines[0].unit_price: must not be negative"
    ]
    assert problems(order(lines=[line(unit_price="0")])) == []  # a free line is fine


def test_every_problem_of_a_line_is_named() -> None:
    assert problems(order(lines=[line(sku="", quantity=0, unit_price="-1")])) == [
        "lines[0].quantity: must be > 0, got 0",
        "lines[0].sku: is missing",
        "lines[0].unit_price: must not be negative",
    ]


def test_the_currency_must_be_one_of_the_pair() -> None:
    assert problems(order(currency="GBP")) == [
        "currency: GBP is not allowed for this pair (USD, EUR)"
    ]


@pytest.mark.parametrize("email", ["", "ann.example.com"])
def test_the_customer_needs_an_email(email: str) -> None:
    assert problems(order(email=email)) == ["customer.email: is missing or not an e-mail address"]


@pytest.mark.parametrize("field", ["line1", "city", "postal_code", "country"])
def test_an_address_needs_its_street_city_postal_code_and_country(field: str) -> None:
    # `country` cannot be empty on a validated model; model_copy does not validate.
    empty = US.model_copy(update={field: ""})
    assert problems(order(shipping=empty)) == [f"shipping_address.{field}: is missing"]
    assert problems(order(billing=empty)) == [f"billing_address.{field}: is missing"]


def test_an_address_of_spaces_is_missing() -> None:
    blank = US.model_copy(update={"line1": "   "})
    assert problems(order(billing=blank)) == ["billing_address.line1: is missing"]


def test_region_line2_and_phone_are_optional() -> None:
    bare = Address(line1="1 Main St", city="Austin", postal_code="78701", country="US")
    assert problems(order(billing=bare, shipping=bare)) == []


def test_problems_come_lines_currency_email_shipping_billing() -> None:
    empty = US.model_copy(update={"city": ""})
    assert problems(order(lines=[], currency="JPY", email="", billing=empty, shipping=empty)) == [
        "lines: the order has no lines",
        "currency: JPY is not allowed for this pair (USD, EUR)",
        "customer.email: is missing or not an e-mail address",
        "shipping_address.city: is missing",
        "billing_address.city: is missing",
    ]


# --- unknown_sku_problems --------------------------------------------------------------


def test_unknown_skus_are_named_by_line() -> None:
    value = order(lines=[line("A"), line("B"), line("A"), line("C")])
    assert [str(p) for p in unknown_sku_problems(value, ["A", "Z"])] == [
        "lines[0].sku: A is not known to the ERP",
        "lines[2].sku: A is not known to the ERP",
    ]
    assert unknown_sku_problems(value, []) == []


# --- risk_reasons ----------------------------------------------------------------------


def test_no_rules_no_reasons() -> None:
    risky = order(total="1000000.00", billing=GB, shipping=US)
    inputs = RiskInputs(is_new_customer=True, orders_from_email_last_hour=500)
    assert risk_reasons(risky, OFF, inputs) == []


def test_total_over() -> None:
    rules = dataclasses.replace(OFF, total_over=Decimal("100"))
    assert risk_reasons(order(total="100.01"), rules, KNOWN) == ["total 100.01 USD is over 100"]
    assert risk_reasons(order(total="100.00"), rules, KNOWN) == []  # at the limit: fine


def test_countries_differ() -> None:
    rules = dataclasses.replace(OFF, countries_differ=True)
    assert risk_reasons(order(billing=GB, shipping=US), rules, KNOWN) == [
        "billing country GB differs from shipping country US"
    ]
    assert risk_reasons(order(billing=US, shipping=US), rules, KNOWN) == []


def test_a_new_customers_first_order_over() -> None:
    rules = dataclasses.replace(OFF, new_customer_first_order_over=Decimal("50"))
    new = RiskInputs(is_new_customer=True, orders_from_email_last_hour=0)
    assert risk_reasons(order(total="50.01"), rules, new) == [
        "first order of a new customer is 50.01 USD, over 50"
    ]
    assert risk_reasons(order(total="50.00"), rules, new) == []
    assert risk_reasons(order(total="500.00"), rules, KNOWN) == []  # not a new customer


def test_too_many_orders_from_one_email_in_an_hour() -> None:
    rules = dataclasses.replace(OFF, max_orders_per_email_per_hour=3)
    busy = RiskInputs(is_new_customer=False, orders_from_email_last_hour=4)
    assert risk_reasons(order(), rules, busy) == [
        "4 orders from a@example.com in an hour (more than 3)"
    ]
    at_limit = RiskInputs(is_new_customer=False, orders_from_email_last_hour=3)
    assert risk_reasons(order(), rules, at_limit) == []


def test_every_matching_rule_gives_its_reason_in_order() -> None:
    rules = RiskRuleSet(
        total_over=Decimal("10"),
        countries_differ=True,
        new_customer_first_order_over=Decimal("10"),
        max_orders_per_email_per_hour=1,
    )
    inputs = RiskInputs(is_new_customer=True, orders_from_email_last_hour=2)
    reasons = risk_reasons(order(total="20.00", billing=GB), rules, inputs)
    assert reasons == [
        "total 20.00 USD is over 10",
        "billing country GB differs from shipping country US",
        "first order of a new customer is 20.00 USD, over 10",
        "2 orders from a@example.com in an hour (more than 1)",
    ]
