"""Kentico mapping: canonical -> native -> (the wire) -> canonical keeps what Kentico holds."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

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
    Product,
    ReturnLine,
    ReturnRequest,
)
from commerce_sync.systems.kentico import exactjson, mapping
from commerce_sync.systems.kentico.formats import (
    format_datetime,
    merge_custom_data,
    parse_custom_data,
    parse_payment_result,
    where_datetime,
    where_text,
)
from commerce_sync.systems.kentico.lookups import KenticoLookups
from commerce_sync.systems.kentico.mapping import GeoTables, MappingError

LOOKUPS = KenticoLookups()
GEO = GeoTables(
    countries={1: "US", 2: "CA", 3: "DE", 4: "GB"},
    states={10: (1, "TX", "Texas"), 11: (1, "WA", "Washington"), 12: (2, "ON", "Ontario")},
)
SKU_IDS = {f"WIDGET-{n}": n for n in range(1, 11)}
SKU_NUMBERS = {v: k for k, v in SKU_IDS.items()}

text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Cn", "Zl", "Zp")), max_size=24
).map(str.strip)
money = st.decimals(min_value=0, max_value=Decimal("99999999.9999"), places=4)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def wire(value: Any) -> Any:
    """What the REST service sends back: exact JSON text, parsed again."""
    return exactjson.loads(exactjson.dumps(value))


@st.composite
def addresses(draw: st.DrawFn) -> Address:
    country_id = draw(st.sampled_from(sorted(GEO.countries)))
    regions = [code for (cid, code, _) in GEO.states.values() if cid == country_id]
    return Address(
        name=draw(text),
        line1=draw(text.filter(bool)),
        line2=draw(text),
        city=draw(text),
        region=draw(st.sampled_from(["", *regions])),
        postal_code=draw(text),
        country=GEO.countries[country_id],
        phone=draw(text),
    )


@st.composite
def customers(draw: st.DrawFn) -> Customer:
    billing = draw(st.none() | addresses())
    shipping = draw(st.none() | st.just(billing) | addresses())
    return Customer(
        origin=Origin(system="kentico", external_id=str(draw(st.integers(1, 10**6)))),
        email=draw(st.emails()),
        first_name=draw(text),
        last_name=draw(text),
        phone=draw(text),
        company=draw(text),
        billing_address=billing,
        shipping_address=shipping,
        active=draw(st.booleans()),
        created_at=draw(moments),
        updated_at=draw(moments),
    )


def customer_rows(customer: Customer) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    assert customer.origin is not None
    customer_id = int(customer.origin.external_id)
    row = {
        **mapping.customer_to_native(customer),
        "CustomerID": customer_id,
        "CustomerCreated": format_datetime(customer.created_at) if customer.created_at else None,
        "CustomerLastModified": format_datetime(customer.updated_at)
        if customer.updated_at
        else None,
    }
    rows = [
        {**address, "AddressID": n, "AddressCustomerID": customer_id}
        for n, address in enumerate(mapping.customer_addresses_to_native(customer, GEO), start=1)
    ]
    return wire(row), wire(rows)


@st.composite
def orders(draw: st.DrawFn) -> Order:
    order_id = draw(st.integers(1, 10**7))
    currency = draw(st.sampled_from(sorted(LOOKUPS.currency_ids)))
    line_ids = draw(st.lists(st.integers(1, 10**6), min_size=1, max_size=5, unique=True))
    lines = [
        OrderLine(
            sku=draw(st.sampled_from(sorted(SKU_IDS))),
            name=draw(text),
            quantity=draw(st.integers(1, 1000)),
            unit_price=draw(money),
            tax=draw(money),
            tax_code=draw(st.sampled_from(["", "standard", "zero"])),
            external_line_id=str(line_id),
        )
        for line_id in sorted(line_ids)
    ]
    total = draw(money)
    paid = draw(st.booleans())
    payment = None
    if paid:
        payment = Payment(
            origin=Origin(system="kentico", external_id=str(order_id)),
            method=draw(st.sampled_from(sorted(LOOKUPS.payment_option_ids))),
            reference=draw(text),
            amount=total,
            currency=currency,
            paid_at=draw(st.none() | moments),
            order_ref=str(order_id),
        )
    return Order(
        origin=Origin(system="kentico", external_id=str(order_id)),
        number=str(order_id),
        status=draw(st.sampled_from(list(OrderStatus))),
        placed_at=draw(moments),
        updated_at=draw(moments),
        currency=currency,
        customer=draw(customers()),
        billing_address=draw(addresses()),
        shipping_address=draw(addresses()),
        lines=lines,
        shipping_method=draw(st.sampled_from(["", *sorted(LOOKUPS.shipping_option_ids)])),
        shipping_total=draw(money),
        tax_total=draw(money),
        discount_total=draw(money),
        total=total,
        payment=payment,
        tracking_numbers=draw(
            st.lists(st.from_regex(r"[A-Z0-9]{6,18}", fullmatch=True), max_size=3)
        ),
        erp_ref=draw(st.sampled_from(["", "SO-1001", "4711"])),
    )


@settings(max_examples=50, deadline=None)
@given(orders())
def test_order_round_trip_keeps_every_field(order: Order) -> None:
    native = mapping.order_to_native(order, SKU_IDS, LOOKUPS, GEO)
    customer_row, _ = customer_rows(order.customer)
    back = mapping.order_from_native(
        wire(native.order),
        wire(native.items),
        wire(native.addresses),
        customer_row,
        SKU_NUMBERS,
        LOOKUPS,
        GEO,
    )
    # The read also keeps `OrderCustomData` exactly as stored (status and tracking writes
    # merge into it).
    assert back.store_notes == wire(native.order)["OrderCustomData"]
    # The order's customer has the order's addresses (its address book is not read).
    assert back.customer.billing_address == order.billing_address
    assert back.customer.shipping_address == order.shipping_address
    as_placed = order.customer.model_copy(
        update={
            "billing_address": order.billing_address,
            "shipping_address": order.shipping_address,
        }
    )
    assert back.model_copy(update={"store_notes": None}) == order.model_copy(
        update={"customer": as_placed}
    )
    assert isinstance(back.total, Decimal) and str(back.total) == str(order.total)
    assert all(
        str(a.unit_price) == str(b.unit_price) for a, b in zip(back.lines, order.lines, strict=True)
    )


@settings(max_examples=50, deadline=None)
@given(customers())
def test_customer_round_trip(customer: Customer) -> None:
    row, rows = customer_rows(customer)
    back = mapping.customer_from_native(row, rows, GEO)
    assert back == customer
    if (
        customer.billing_address is not None
        and customer.billing_address == customer.shipping_address
    ):
        assert len(rows) == 1  # one row flagged for both roles


@settings(max_examples=50, deadline=None)
@given(
    sku=st.from_regex(r"[A-Z][A-Z0-9-]{0,20}", fullmatch=True),
    name=text.filter(bool),
    description=text,
    price=money,
    enabled=st.booleans(),
    modified=moments,
    product_id=st.integers(1, 10**6),
)
def test_product_round_trip_keeps_price_exact(
    sku: str,
    name: str,
    description: str,
    price: Decimal,
    enabled: bool,
    modified: datetime,
    product_id: int,
) -> None:
    product = Product(
        origin=Origin(system="kentico", external_id=str(product_id)),
        sku=sku,
        name=name,
        description=description,
        price=price,
        currency="USD",
        enabled=enabled,
        updated_at=modified,
    )
    row = wire(
        {
            **mapping.product_to_native(product, LOOKUPS),
            "SKUID": product_id,
            "SKULastModified": format_datetime(modified),
        }
    )
    back = mapping.product_from_native(row, LOOKUPS)
    assert back == product
    assert str(back.price) == str(price)


@settings(max_examples=50, deadline=None)
@given(
    return_id=st.integers(1, 10**6),
    order_id=st.integers(1, 10**6),
    lines=st.lists(
        st.builds(
            ReturnLine,
            sku=st.sampled_from(sorted(SKU_IDS)),
            quantity=st.integers(1, 50),
            reason=text,
        ),
        min_size=1,
        max_size=4,
    ),
    reason=text,
    when=moments,
)
def test_return_round_trip(
    return_id: int, order_id: int, lines: list[ReturnLine], reason: str, when: datetime
) -> None:
    request = ReturnRequest(
        origin=Origin(system="kentico", external_id=str(return_id)),
        order_number=str(order_id),
        lines=lines,
        reason=reason,
        requested_at=when,
    )
    row = wire({**mapping.return_to_native(request), "ItemID": return_id})
    assert mapping.return_from_native(row) == request


def test_product_in_another_currency_is_refused() -> None:
    product = Product(sku="X", name="X", price=Decimal("1.00"), currency="EUR")
    with pytest.raises(MappingError) as info:
        mapping.product_to_native(product, LOOKUPS)
    assert info.value.field == "currency"


def test_unknown_country_and_status_name_the_field() -> None:
    with pytest.raises(MappingError) as info:
        GEO.country_id("FR")
    assert info.value.field == "country"
    with pytest.raises(MappingError) as info:
        mapping.status_from_id(99, LOOKUPS)
    assert info.value.field == "status"


def test_unknown_region_is_left_out_and_names_match_too() -> None:
    address = Address(
        line1="1 Main St", city="Austin", region="Texas", postal_code="1", country="US"
    )
    assert mapping.address_to_native(address, GEO)["AddressStateID"] == 10
    unknown = address.model_copy(update={"region": "Atlantis"})
    assert mapping.address_to_native(unknown, GEO)["AddressStateID"] is None


def test_stock_and_tracking_examples() -> None:
    level = mapping.stock_from_native({"SKUNumber": "WIDGET-1", "SKUAvailableItems": 7})
    assert (level.sku, level.on_hand, level.available) == ("WIDGET-1", 7, 7)
    assert mapping.split_tracking("1Z1, 1Z2;1Z3 ,") == ["1Z1", "1Z2", "1Z3"]
    assert mapping.join_tracking(["1Z1", " ", "1Z2"]) == "1Z1, 1Z2"


def test_custom_data_and_payment_result_formats() -> None:
    text_ = merge_custom_data(
        "<CustomData><Other>x &amp; y</Other></CustomData>", {"ErpOrderNumber": "SO-1"}
    )
    assert parse_custom_data(text_) == {"Other": "x & y", "ErpOrderNumber": "SO-1"}
    assert parse_custom_data(merge_custom_data(text_, {"Other": None})) == {
        "ErpOrderNumber": "SO-1"
    }
    assert parse_custom_data("not xml") == {}
    assert parse_payment_result(
        '<result><item name="transactionid" header="h" value="ch_1" /></result>'
    ) == {"transactionid": "ch_1"}


def test_where_literals_are_quoted_and_utc() -> None:
    assert where_text("o'brien@example.com") == "N'o''brien@example.com'"
    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert where_datetime(moment) == "2026-01-02T03:04:05.000006"


@settings(max_examples=50, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_exact_json_keeps_every_digit(value: Decimal) -> None:
    back = exactjson.loads(exactjson.dumps({"v": value}))["v"]
    assert Decimal(back) == value
