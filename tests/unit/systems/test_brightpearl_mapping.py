"""Brightpearl mapping: canonical -> native -> canonical keeps what Brightpearl holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commerce_sync.domain.countries import alpha3
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
)
from commerce_sync.systems.brightpearl import mapping
from commerce_sync.systems.brightpearl.idsets import IdSetError, chunks, format_id_set, parse_id_set
from commerce_sync.systems.brightpearl.lookups import BrightpearlLookups

LOOKUPS = BrightpearlLookups()
COUNTRIES = sorted(c.alpha_2 for c in pycountry.countries)
# statuses that are the first (canonical) name of their Brightpearl id
PRIMARY_STATUSES = [
    OrderStatus(name)
    for name, value in LOOKUPS.order_status_ids.items()
    if mapping.status_from_id(value, LOOKUPS).value == name
]

words = (
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789 -'.é", min_size=1, max_size=20)
    .map(str.strip)
    .filter(bool)
)
maybe_words = st.one_of(st.just(""), words)
money = st.decimals(min_value=Decimal("0"), max_value=Decimal("99999"), places=2, allow_nan=False)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=(d.microsecond // 1000) * 1000))


@st.composite
def addresses(draw: st.DrawFn) -> Address:
    return Address(
        name=draw(maybe_words),
        company=draw(maybe_words),
        line1=draw(words),
        line2=draw(maybe_words),
        city=draw(words),
        region=draw(maybe_words),
        postal_code=draw(words),
        country=draw(st.sampled_from(COUNTRIES)),
        phone=draw(maybe_words),
    )


emails = st.emails().map(lambda e: e.strip())


@st.composite
def lines(draw: st.DrawFn) -> OrderLine:
    n = draw(st.integers(min_value=1, max_value=10))
    return OrderLine(
        sku=f"WIDGET-{n}",
        name=f"Widget {n}",
        quantity=draw(st.integers(min_value=1, max_value=50)),
        unit_price=draw(money),
        tax=draw(money),
        tax_code=draw(st.sampled_from(sorted(LOOKUPS.tax_codes))),
    )


@st.composite
def orders(draw: st.DrawFn) -> Order:
    order_lines = draw(st.lists(lines(), min_size=1, max_size=5))
    shipping = draw(money)
    shipping_tax = draw(money)
    discount = draw(money)
    line_tax = sum((line.tax for line in order_lines), Decimal("0"))
    net = sum((line.net for line in order_lines), Decimal("0"))
    tax_total = line_tax + shipping_tax
    return Order(
        origin=Origin(system="kentico", external_id=draw(words)),
        number=draw(words),
        status=draw(st.sampled_from(PRIMARY_STATUSES)),
        placed_at=draw(moments),
        currency=draw(st.sampled_from(["USD", "GBP", "EUR", "JPY"])),
        customer=Customer(
            email=draw(emails),
            first_name=draw(words.filter(lambda w: " " not in w)),
            last_name=draw(maybe_words),
            phone=draw(maybe_words),
            company=draw(maybe_words),
        ),
        billing_address=draw(addresses()),
        shipping_address=draw(addresses()),
        lines=order_lines,
        shipping_method=draw(st.sampled_from(["", *sorted(LOOKUPS.shipping_method_ids)])),
        shipping_total=shipping,
        tax_total=tax_total,
        discount_total=discount,
        total=net + tax_total + shipping - discount,
    )


def read_shape(
    header: dict[str, Any], rows: list[dict[str, Any]], order: Order, contact_id: int
) -> dict[str, Any]:
    """What `GET order/{id}` answers for an order created from `header` and `rows`:
    rows keyed by id with `rowValue`, SKUs filled in, the customer party from the contact."""
    sku_by_product = {int(line.sku.split("-")[1]) + 1000: line.sku for line in order.lines}
    native = json.loads(json.dumps(header))
    native["id"] = 10001
    native["updatedOn"] = "2026-01-01T00:00:00.000Z"
    native["parties"]["customer"] = {
        "contactId": contact_id,
        "addressFullName": f"{order.customer.first_name} {order.customer.last_name}".strip(),
        "companyName": order.customer.company,
        "telephone": order.customer.phone,
        "email": order.customer.email,
    }
    native["orderRows"] = {
        str(50001 + index): {
            "productId": row.get("productId"),
            "productName": row.get("productName", ""),
            "productSku": sku_by_product.get(row.get("productId", 0), ""),
            "quantity": {"magnitude": row["quantity"]["magnitude"] + ".0000"},
            "rowValue": {
                "taxCode": row["taxCode"],
                "rowNet": row["rowNet"],
                "rowTax": row["rowTax"],
            },
            "nominalCode": row["nominalCode"],
        }
        for index, row in enumerate(rows)
    }
    return dict(native)


@settings(max_examples=50, deadline=None)
@given(orders())
def test_order_round_trip_keeps_what_brightpearl_holds(order: Order) -> None:
    product_ids = {line.sku: int(line.sku.split("-")[1]) + 1000 for line in order.lines}
    header = mapping.order_to_native(order, 204, LOOKUPS)
    rows = mapping.order_rows_to_native(order, product_ids, LOOKUPS)
    json.dumps(header), json.dumps(rows)  # only JSON types: money travels as strings
    assert header["parties"]["delivery"]["countryIsoCode"] == alpha3(order.shipping_address.country)

    back = mapping.order_from_native(read_shape(header, rows, order, 204), LOOKUPS)
    assert back.origin == Origin(system="brightpearl", external_id="10001")
    assert back.erp_ref == "10001"
    assert (back.number, back.status, back.placed_at, back.currency) == (
        order.number,
        order.status,
        order.placed_at,
        order.currency,
    )
    assert back.billing_address == order.billing_address
    assert back.shipping_address == order.shipping_address
    assert back.shipping_method == order.shipping_method
    for field in ("shipping_total", "tax_total", "discount_total", "total"):
        assert getattr(back, field) == getattr(order, field), field
    assert [(l.sku, l.name, l.quantity, l.unit_price, l.tax, l.tax_code) for l in back.lines] == [  # noqa: E741
        (l.sku, l.name, l.quantity, l.unit_price, l.tax, l.tax_code)
        for l in order.lines  # noqa: E741
    ]
    assert (back.customer.email, back.customer.first_name, back.customer.last_name) == (
        order.customer.email,
        order.customer.first_name,
        order.customer.last_name,
    )
    assert (back.customer.phone, back.customer.company) == (
        order.customer.phone,
        order.customer.company,
    )


@st.composite
def customers(draw: st.DrawFn) -> Customer:
    billing = draw(st.one_of(st.none(), addresses()))
    shipping = draw(st.one_of(st.none(), addresses())) if billing is not None else None
    return Customer(
        email=draw(emails),
        first_name=draw(maybe_words),
        last_name=draw(maybe_words),
        phone=draw(maybe_words),
        company=draw(maybe_words),
        billing_address=billing,
        shipping_address=shipping,
        active=draw(st.booleans()),
    )


@settings(max_examples=50, deadline=None)
@given(customers(), moments)
def test_contact_round_trip(customer: Customer, when: datetime) -> None:
    postal: dict[str, Any] = {}
    ids: dict[str, int] = {}
    if customer.billing_address is not None:
        postal["501"] = mapping.address_to_postal(customer.billing_address)
        ids = {"DEF": 501, "BIL": 501, "DEL": 501}
        if customer.shipping_address is not None:
            postal["502"] = mapping.address_to_postal(customer.shipping_address)
            ids["DEL"] = 502
    native = mapping.customer_to_contact(customer, ids, LOOKUPS)
    native.update(
        {
            "contactId": 204,
            "postalAddresses": postal,
            "createdOn": mapping.bp_datetime(when),
            "updatedOn": mapping.bp_datetime(when),
        }
    )
    back = mapping.contact_from_native(json.loads(json.dumps(native)))
    assert back.origin == Origin(system="brightpearl", external_id="204")
    for field in ("email", "first_name", "last_name", "phone", "company", "active"):
        assert getattr(back, field) == getattr(customer, field), field
    assert back.created_at == when and back.updated_at == when
    expected_shipping = customer.shipping_address or customer.billing_address
    for got, want in (
        (back.billing_address, customer.billing_address),
        (back.shipping_address, expected_shipping),
    ):
        if want is None:
            assert got is None
            continue
        assert got is not None
        assert mapping.address_to_postal(got) == mapping.address_to_postal(want)
        assert (got.company, got.phone) == (customer.company, customer.phone)


@settings(max_examples=50, deadline=None)
@given(addresses(), emails)
def test_order_party_round_trip_is_lossless(address: Address, email: str) -> None:
    party = mapping.address_to_party(address, email)
    assert len(party["countryIsoCode"]) == 3 and party["email"] == email
    assert mapping.party_to_address(party) == address


@settings(max_examples=50, deadline=None)
@given(
    sku=words,
    name=words,
    description=maybe_words,
    price=st.decimals(
        min_value=Decimal("0"), max_value=Decimal("99999"), places=4, allow_nan=False
    ),
    currency=st.sampled_from(["USD", "GBP"]),
    enabled=st.booleans(),
    when=moments,
)
def test_product_round_trip(
    sku: str,
    name: str,
    description: str,
    price: Decimal,
    currency: str,
    enabled: bool,
    when: datetime,
) -> None:
    product = Product(
        sku=sku,
        name=name,
        description=description,
        price=price,
        currency=currency,
        enabled=enabled,
        updated_at=when,
    )
    native, prices = mapping.product_to_native(product, 1001, LOOKUPS)
    back = mapping.product_from_native(
        json.loads(json.dumps(native)), json.loads(json.dumps(prices)), LOOKUPS
    )
    assert back.model_dump(exclude={"origin"}) == product.model_dump(exclude={"origin"})
    assert back.origin == Origin(system="brightpearl", external_id="1001")


@settings(max_examples=50, deadline=None)
@given(
    kind=st.sampled_from(list(PaymentKind)),
    method=st.sampled_from(sorted(LOOKUPS.payment_method_codes)),
    reference=words,
    amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2),
    currency=st.sampled_from(["USD", "GBP", "EUR"]),
    when=moments,
)
def test_payment_round_trip(
    kind: PaymentKind, method: str, reference: str, amount: Decimal, currency: str, when: datetime
) -> None:
    payment = Payment(
        kind=kind,
        method=method,
        reference=reference,
        amount=amount,
        currency=currency,
        paid_at=when,
    )
    native = mapping.payment_to_native(payment, 10001, LOOKUPS)
    assert native["paymentType"] == ("RECEIPT" if kind == PaymentKind.RECEIPT else "PAYMENT")
    row = {
        "paymentId": 9001,
        "transactionRef": native["transactionRef"],
        "paymentMethodCode": native["paymentMethodCode"],
        "paymentType": native["paymentType"],
        "orderId": native["orderId"],
        "currencyCode": native["currencyIsoCode"],
        "amountPaid": native["amountPaid"],
        "paymentDate": native["paymentDate"],
    }
    back = mapping.payment_from_native(json.loads(json.dumps(row)), LOOKUPS)
    assert back.model_dump(exclude={"origin", "order_ref"}) == payment.model_dump(
        exclude={"origin", "order_ref"}
    )
    assert back.order_ref == "10001"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=60))
def test_id_sets_round_trip(ids: list[int]) -> None:
    text = format_id_set(ids)
    assert parse_id_set(text) == sorted(set(ids))
    assert len(text) <= len(",".join(str(i) for i in sorted(set(ids))))


def test_id_set_examples() -> None:
    assert parse_id_set("1-5,7,12") == [1, 2, 3, 4, 5, 7, 12]
    assert parse_id_set("7") == [7]
    assert parse_id_set("1,3,9") == [1, 3, 9]
    assert format_id_set([12, 1, 2, 3, 7, 4, 5]) == "1-5,7,12"
    assert format_id_set([1001, 1002]) == "1001,1002"
    assert chunks([5, 1, 5, 2, 3], 2) == [[5, 1], [2, 3]]
    for bad in ("", "a", "5-1", "1,,2", "1-"):
        with pytest.raises(IdSetError):
            parse_id_set(bad)
    with pytest.raises(IdSetError):
        parse_id_set("1-201", max_size=200)


def test_money_is_exact_and_never_a_float() -> None:
    assert mapping.money("12.5000") == Decimal("12.5")
    assert mapping.money(0.1) == Decimal("0.1")
    assert mapping.money_str(Decimal("0.10")) == "0.10"
    assert mapping.money_str(Decimal("1E+2")) == "100"
    line = OrderLine(sku="WIDGET-1", quantity=3, unit_price=Decimal("0.10"), tax=Decimal("0.06"))
    row = mapping.line_to_row(line, 1001, LOOKUPS)
    assert row["rowNet"] == {"value": "0.30"} and row["rowTax"] == {"value": "0.06"}
    assert row["taxCode"] == "T20"
    with pytest.raises(ValueError):
        mapping.quantity("1.5")


def test_availability_and_goods_out_note_examples() -> None:
    entry = {
        "total": {"inStock": 10, "onHand": 8, "allocated": 2, "inTransit": 0},
        "warehouses": {"2": {"inStock": 10, "onHand": 8, "allocated": 2, "inTransit": 0}},
    }
    total = mapping.availability_from_native("WIDGET-7", entry)
    assert (total.on_hand, total.available, total.warehouse) == (10, 8, "")
    other = mapping.availability_from_native("WIDGET-7", entry, warehouse_id=3)
    assert (other.on_hand, other.available, other.warehouse) == (0, 0, "3")

    note = {
        "orderId": 10001,
        "status": {"shipped": True, "shippedOn": "2026-01-16T12:00:00.000Z"},
        "shipping": {"reference": "1Z999AA10123456784", "shippingMethodId": 8, "boxes": 1},
        "orderRows": {"50001": [{"productId": 1007, "quantity": 2, "locationId": 2}]},
    }
    shipment = mapping.shipment_from_native(7001, note, {"50001": "WIDGET-7"}, LOOKUPS)
    assert shipment.origin == Origin(system="brightpearl", external_id="7001")
    assert (shipment.order_ref, shipment.tracking_numbers, shipment.carrier) == (
        "10001",
        ["1Z999AA10123456784"],
        "ups",
    )
    assert shipment.shipped_at == datetime(2026, 1, 16, 12, tzinfo=UTC)
    assert [(s.sku, s.quantity) for s in shipment.lines] == [("WIDGET-7", 2)]
    unshipped = mapping.shipment_from_native(
        7002, {**note, "status": {"shipped": False}}, {}, LOOKUPS
    )
    assert unshipped.shipped_at is None and unshipped.lines[0].sku == "1007"


def test_lookups_translate_codes() -> None:
    assert mapping.status_id(OrderStatus.DELIVERED, LOOKUPS) == 4
    assert mapping.status_from_id(4, LOOKUPS) == OrderStatus.SHIPPED
    assert mapping.status_from_id(99, LOOKUPS) == OrderStatus.PROCESSING
    assert mapping.tax_code("", LOOKUPS) == "T20" and mapping.tax_class("T0", LOOKUPS) == "zero"
    assert mapping.shipping_method_name(6, LOOKUPS) == "express"
    with pytest.raises(ValueError):
        mapping.shipping_method_id("teleport", LOOKUPS)
    with pytest.raises(ValueError):
        mapping.tax_code("luxury", LOOKUPS)
    assert (
        mapping.bp_datetime(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
        == "2026-01-02T03:04:05.678Z"
    )
    rows = mapping.search_rows(
        {"results": [[1, "a"]], "metaData": {"columns": [{"name": "id"}, {"name": "x"}]}}
    )
    assert rows == [{"id": 1, "x": "a"}]
