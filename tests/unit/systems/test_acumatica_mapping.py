"""Acumatica mapping: canonical -> native (wire JSON) -> canonical keeps what Acumatica holds."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commerce_sync.domain.models import (
    Address,
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Origin,
    Payment,
    PaymentKind,
    Product,
    Shipment,
    ShipmentLine,
)
from commerce_sync.systems.acumatica import mapping
from commerce_sync.systems.acumatica.client import first_field_error
from commerce_sync.systems.acumatica.lookups import AcumaticaLookups
from commerce_sync.systems.acumatica.schema import dumps, loads, unwrap, wrap
from sandboxes.acumatica.odata import FilterError, compile_filter

LOOKUPS = AcumaticaLookups()
COUNTRIES = sorted(country.alpha_2 for country in pycountry.countries)

text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30
).map(str.strip)
required = text.filter(bool)
money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2)
ms_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))

addresses = st.builds(
    Address,
    name=text,
    company=text,
    line1=required,
    line2=text,
    city=text,
    region=text,
    postal_code=text,
    country=st.sampled_from(COUNTRIES),
    phone=text,
)
lines = st.builds(
    OrderLine,
    sku=required,
    name=text,
    quantity=st.integers(min_value=1, max_value=10_000),
    unit_price=money,
    tax_code=text,
    external_line_id=text,
)


def over_the_wire(native: dict[str, Any]) -> dict[str, Any]:
    """What the API would echo: the same wrapped JSON, numbers parsed as Decimal."""
    result: dict[str, Any] = loads(dumps(native))
    return result


@st.composite
def orders(draw: st.DrawFn) -> Order:
    order_lines = draw(st.lists(lines, min_size=1, max_size=4))
    shipping, tax, discount = draw(money), draw(money), draw(money)
    net = sum((line.net for line in order_lines), Decimal(0))
    return Order(
        origin=Origin(system="xcart", external_id=draw(required)),
        number=draw(required),
        status=draw(st.sampled_from([OrderStatus.PENDING, OrderStatus.ON_HOLD])),
        placed_at=draw(ms_datetimes),
        currency=draw(st.sampled_from(["USD", "EUR", "GBP", "CAD"])),
        customer=Customer(email=draw(required), first_name=draw(text), last_name=draw(text)),
        billing_address=draw(addresses),
        shipping_address=draw(addresses),
        lines=order_lines,
        shipping_method=draw(st.sampled_from(["", *LOOKUPS.ship_via])),
        shipping_total=shipping,
        tax_total=tax,
        discount_total=discount,
        total=net + shipping + tax - discount,
        payment=draw(
            st.none()
            | st.builds(
                Payment,
                method=st.sampled_from(list(LOOKUPS.payment_methods)),
                reference=required,
                amount=money,
                currency=st.just("USD"),
            )
        ),
    )


@settings(max_examples=50, deadline=None)
@given(order=orders(), customer_id=required, nbr=st.from_regex(r"\A[0-9]{6}\Z"))
def test_order_round_trip_keeps_what_acumatica_holds(
    order: Order, customer_id: str, nbr: str
) -> None:
    native = mapping.order_to_native(order, customer_id, LOOKUPS)
    native["OrderNbr"] = {"value": nbr}
    back = mapping.order_from_native(over_the_wire(native), LOOKUPS)

    assert back.origin == Origin(system="acumatica", external_id=f"SO/{nbr}")
    assert back.erp_ref == nbr
    assert back.number == order.number
    assert back.status == order.status
    assert back.placed_at == order.placed_at  # Date carries the time until the ERP truncates it
    assert back.currency == order.currency
    assert back.billing_address == order.billing_address
    assert back.shipping_address == order.shipping_address
    assert back.shipping_method == order.shipping_method
    assert (back.shipping_total, back.tax_total, back.discount_total, back.total) == (
        order.shipping_total,
        order.tax_total,
        order.discount_total,
        order.total,
    )
    assert [line.model_dump(exclude={"tax"}) for line in back.lines] == [
        line.model_dump(exclude={"tax"}) for line in order.lines
    ]
    assert back.customer.email == order.customer.email
    assert back.customer.origin == Origin(system="acumatica", external_id=customer_id)
    if order.payment is None:
        assert back.payment is None
    else:
        assert back.payment is not None
        assert (back.payment.method, back.payment.reference) == (
            order.payment.method,
            order.payment.reference,
        )
    assert native["ExternalRef"] == {"value": f"xcart:{order.origin.external_id}"}
    assert all(
        isinstance(row["UnitPrice"]["value"], Decimal | int)
        for row in over_the_wire(native)["Details"]
    )


customers = st.builds(
    Customer,
    email=required,
    first_name=text,
    last_name=text,
    phone=text,
    company=text,
    billing_address=st.none() | addresses,
    shipping_address=st.none() | addresses,
    active=st.booleans(),
)


@settings(max_examples=50, deadline=None)
@given(customer=customers, customer_id=st.from_regex(r"\AC[0-9]{6}\Z"))
def test_customer_round_trip(customer: Customer, customer_id: str) -> None:
    native = mapping.customer_to_native(customer, LOOKUPS, customer_id)
    back = mapping.customer_from_native(over_the_wire(native))
    assert back.origin == Origin(system="acumatica", external_id=customer_id)
    assert back.model_dump(exclude={"origin"}) == customer.model_dump(exclude={"origin"})


@settings(max_examples=50, deadline=None)
@given(
    payment=st.builds(
        Payment,
        kind=st.sampled_from(list(PaymentKind)),
        method=st.sampled_from(list(LOOKUPS.payment_methods)),
        reference=required,
        amount=money,
        currency=st.sampled_from(["USD", "EUR"]),
        paid_at=st.none() | ms_datetimes,
    ),
    nbr=st.from_regex(r"\A[0-9]{6}\Z"),
)
def test_payment_round_trip(payment: Payment, nbr: str) -> None:
    payment = payment.model_copy(update={"order_ref": f"SO/{nbr}"})
    native = mapping.payment_to_native(payment, "C000001", LOOKUPS, order_type="SO", order_nbr=nbr)
    native["ReferenceNbr"] = {"value": "000042"}
    back = mapping.payment_from_native(over_the_wire(native), LOOKUPS)
    doc_type = "Refund" if payment.kind == PaymentKind.REFUND else "Payment"
    assert back.origin == Origin(system="acumatica", external_id=f"{doc_type}/000042")
    assert back.model_dump(exclude={"origin"}) == payment.model_dump(exclude={"origin"})


@settings(max_examples=50, deadline=None)
@given(
    tracking=st.lists(required, max_size=3),
    carrier=st.sampled_from(sorted(set(LOOKUPS.carriers.values()))),
    quantities=st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=3),
    shipped_at=st.none() | ms_datetimes,
)
def test_shipment_round_trip(
    tracking: list[str], carrier: str, quantities: list[int], shipped_at: datetime | None
) -> None:
    shipment = Shipment(
        origin=Origin(system="acumatica", external_id="000007"),
        order_ref="SO/000123",
        tracking_numbers=tracking,
        carrier=carrier,
        shipped_at=shipped_at,
        lines=[
            ShipmentLine(sku=f"WIDGET-{n}", quantity=q) for n, q in enumerate(quantities, start=1)
        ],
    )
    back = mapping.shipment_from_native(
        over_the_wire(mapping.shipment_to_native(shipment, LOOKUPS)), LOOKUPS
    )
    assert back == shipment


@settings(max_examples=50, deadline=None)
@given(sku=required, name=text, description=text, price=money, enabled=st.booleans())
def test_product_round_trip(
    sku: str, name: str, description: str, price: Decimal, enabled: bool
) -> None:
    product = Product(
        origin=Origin(system="acumatica", external_id=sku),
        sku=sku,
        name=name,
        description=description,
        price=price,
        currency="USD",
        enabled=enabled,
    )
    assert mapping.product_from_native(over_the_wire(mapping.product_to_native(product))) == product


@settings(max_examples=50, deadline=None)
@given(amount=st.decimals(min_value=Decimal("-1e11"), max_value=Decimal("1e11"), places=4))
def test_money_stays_exact_on_the_wire(amount: Decimal) -> None:
    wire = loads(dumps(wrap({"PaymentAmount": amount})))
    assert unwrap(wire)["PaymentAmount"] == amount


def test_status_maps_both_ways() -> None:
    assert mapping.status_to_native(OrderStatus.CANCELLED, LOOKUPS) == "Canceled"
    assert mapping.status_from_native("Canceled", LOOKUPS) == OrderStatus.CANCELLED
    assert mapping.status_from_native("Completed", LOOKUPS) == OrderStatus.SHIPPED
    assert mapping.status_from_native("Back Order", LOOKUPS) == OrderStatus.PROCESSING
    assert mapping.status_from_native("On Hold", LOOKUPS) == OrderStatus.ON_HOLD


def test_codes_come_from_the_lookups() -> None:
    custom = AcumaticaLookups(ship_via={"ground": "MYGROUND"}, payment_methods={"card": "VISA"})
    assert mapping.ship_via_to_native("ground", custom) == "MYGROUND"
    assert mapping.ship_via_from_native("MYGROUND", custom) == "ground"
    assert mapping.payment_method_to_native("card", custom) == "VISA"
    assert mapping.payment_method_to_native("bitcoin", custom) == custom.payment_method
    assert mapping.parse_order_ref("RC/000004") == ("RC", "000004")
    assert mapping.parse_order_ref("000004") == ("SO", "000004")


def test_alpha3_country_from_the_erp_becomes_alpha2() -> None:
    native = {
        "AddressLine1": {"value": "1 Rue"},
        "City": {"value": "Paris"},
        "PostalCode": {"value": "75001"},
        "Country": {"value": "FRA"},
    }
    address = mapping.address_from_native(native)
    assert address is not None and address.country == "FR"


def test_return_order_takes_prices_from_the_parent() -> None:
    parent = {
        "OrderType": {"value": "SO"},
        "OrderNbr": {"value": "000009"},
        "CustomerID": {"value": "C000001"},
        "CurrencyID": {"value": "USD"},
        "Details": [
            {"InventoryID": {"value": "WIDGET-2"}, "UnitPrice": {"value": Decimal("14.99")}}
        ],
    }
    native = mapping.return_order_to_native(parent, [("WIDGET-2", 1, "too big")], "RMA-9", LOOKUPS)
    assert native["OrderType"] == {"value": "RC"}
    assert native["Details"][0]["Operation"] == {"value": "Receipt"}
    assert native["Details"][0]["UnitPrice"] == {"value": Decimal("14.99")}
    with pytest.raises(ValueError):
        mapping.return_order_to_native(parent, [("WIDGET-3", 1, "")], "RMA-9", LOOKUPS)


def test_422_echo_gives_the_field_path() -> None:
    echo = {
        "OrderType": {"value": "SO"},
        "Details": [
            {"InventoryID": {"value": "A"}},
            {"InventoryID": {"value": "X", "error": "not found"}},
        ],
        "error": "Inserting 'Sales Order' record raised at least one error.",
    }
    assert first_field_error(echo) == ("Details[1].InventoryID", "not found")
    assert first_field_error({"MainContact": {"Email": {"value": "x", "error": "bad"}}}) == (
        "MainContact.Email",
        "bad",
    )
    assert first_field_error({"error": "only a record error"}) is None


def test_filter_subset() -> None:
    record = {
        "CustomerOrder": "Web-1",
        "LastModified": datetime(2026, 1, 1, tzinfo=UTC),
        "MainContact": {"Email": "A@B.com"},
        "OrderTotal": Decimal("10.5"),
    }

    def get(path: tuple[str, ...]) -> Any:
        value: Any = record
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def check(text: str) -> bool:
        return compile_filter(text).predicate(get)

    assert check("CustomerOrder eq 'web-1'")
    assert check("MainContact/Email eq 'a@b.com' and OrderTotal gt 10")
    assert check("LastModified gt datetimeoffset'2025-12-31T23:00:00+00:00'")
    assert not check("LastModified gt datetimeoffset'2026-01-01T01:00:00+01:00'")
    assert check("(CustomerOrder eq 'x' or OrderTotal le 10.5) and not (OrderTotal lt 1)")
    assert check("substringof('EB', CustomerOrder) and startswith(CustomerOrder, 'we')")
    assert check("CustomerOrder eq 'it''s'") is False
    with pytest.raises(FilterError):
        compile_filter("CustomerOrder eq")
    with pytest.raises(FilterError):
        compile_filter("Details/InventoryID eq 'x'", lambda path: path[0] != "Details")
