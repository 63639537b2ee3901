"""X-Cart mapping: canonical -> native -> (JSON as X-Cart sends it) -> canonical."""

from __future__ import annotations

import json
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
from commerce_sync.systems.xcart import mapping
from commerce_sync.systems.xcart.lookups import XCartLookups

LOOKUPS = XCartLookups()
WORD = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéüß", min_size=1, max_size=8
)
TEXT = st.lists(WORD, min_size=0, max_size=3).map(" ".join)
MONEY = st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False, allow_infinity=False)
COUNTRY = st.sampled_from(["US", "GB", "DE", "FR", "CA", "JP", "AU", "NL"])
TIMES = st.integers(min_value=1_500_000_000, max_value=2_000_000_000).map(
    lambda s: datetime.fromtimestamp(s, UTC)
)
IDS = st.integers(min_value=1, max_value=10**6).map(str)
# statuses X-Cart can hold (on_hold is written as New and read back as pending)
HOLDABLE = [s for s in OrderStatus if s != OrderStatus.ON_HOLD]


def as_xcart_json(native: dict[str, Any]) -> dict[str, Any]:
    """What the wire does: X-Cart prints money as JSON numbers; the client parses Decimals."""
    text = json.dumps(native, default=lambda v: float(v) if isinstance(v, Decimal) else str(v))
    result: dict[str, Any] = json.loads(text, parse_float=Decimal)
    return result


@st.composite
def addresses(draw: st.DrawFn) -> Address:
    return Address(
        name=f"{draw(WORD)} {draw(WORD)}",
        company=draw(TEXT),
        line1=f"{draw(st.integers(1, 999))} {draw(WORD)} St",
        line2=draw(TEXT),
        city=draw(WORD),
        region=draw(TEXT),
        postal_code=draw(st.from_regex(r"[0-9A-Z]{3,8}", fullmatch=True)),
        country=draw(COUNTRY),
        phone=draw(st.from_regex(r"\+[0-9]{6,12}", fullmatch=True)),
    )


@st.composite
def customers(draw: st.DrawFn, with_times: bool = True) -> Customer:
    billing = draw(addresses())
    shipping = draw(st.one_of(st.none(), st.just(billing), addresses()))
    first, _, last = billing.name.partition(" ")
    return Customer(
        origin=Origin(system="xcart", external_id=draw(IDS)),
        email=f"{draw(WORD).lower()}@example.com",
        first_name=first,
        last_name=last,
        phone=billing.phone,
        company=billing.company,
        billing_address=billing,
        shipping_address=shipping,
        active=draw(st.booleans()),
        created_at=draw(TIMES) if with_times else None,
        updated_at=draw(TIMES) if with_times else None,
    )


@st.composite
def orders(draw: st.DrawFn) -> Order:
    customer = draw(customers(with_times=False))
    customer.active = True
    if draw(st.booleans()):
        customer.origin = None
    billing = customer.billing_address
    assert billing is not None
    shipping = customer.shipping_address or billing
    customer.shipping_address = shipping
    lines = draw(
        st.lists(
            st.builds(
                OrderLine,
                sku=st.from_regex(r"[A-Z]{2,6}-[0-9]{1,3}", fullmatch=True),
                name=TEXT,
                quantity=st.integers(1, 50),
                unit_price=MONEY,
                tax=MONEY,
                tax_code=st.sampled_from(["", "TAXABLE", "CDEV.STAX.1"]),
                external_line_id=IDS,
            ),
            min_size=1,
            max_size=4,
        )
    )
    for line in lines:
        if not line.tax_code:
            line.tax = Decimal("0")
    number = draw(IDS)
    has_payment = draw(st.booleans())
    status = draw(st.sampled_from(HOLDABLE))
    return Order(
        origin=Origin(system="xcart", external_id=draw(IDS)),
        number=number,
        status=status,
        placed_at=draw(TIMES),
        updated_at=draw(TIMES),
        currency=draw(st.sampled_from(["USD", "EUR", "GBP"])),
        customer=customer,
        billing_address=billing,
        shipping_address=shipping,
        lines=lines,
        shipping_method=draw(TEXT),
        shipping_total=draw(MONEY),
        tax_total=draw(MONEY),
        discount_total=draw(MONEY),
        total=draw(MONEY),
        payment=Payment(
            origin=Origin(system="xcart", external_id=draw(IDS)),
            method=draw(WORD),
            reference=draw(WORD),
            amount=draw(MONEY),
            currency="USD",
            paid_at=draw(TIMES),
            order_ref=number,
        )
        if has_payment
        else None,
        tracking_numbers=draw(
            st.lists(st.from_regex(r"1Z[0-9A-Z]{8}", fullmatch=True), max_size=3)
        ),
        erp_ref=draw(st.one_of(st.just(""), st.from_regex(r"SO[0-9]{6}", fullmatch=True))),
    )


@settings(max_examples=50, deadline=None)
@given(orders())
def test_order_round_trip_keeps_every_field(order: Order) -> None:
    native = as_xcart_json(mapping.order_to_native(order, LOOKUPS))
    back = mapping.order_from_native(native, LOOKUPS)
    # The read also keeps `adminNotes` exactly as stored (a status write merges into it).
    assert back.store_notes == native["adminNotes"]
    assert back.model_copy(update={"store_notes": None}) == order
    assert isinstance(back.total, Decimal) and back.total == order.total
    assert all(isinstance(line.unit_price, Decimal) for line in back.lines)
    assert len(back.currency) == 3 and back.billing_address.country == order.billing_address.country


@settings(max_examples=50, deadline=None)
@given(customers())
def test_customer_round_trip(customer: Customer) -> None:
    native = mapping.customer_to_native(customer)
    native.update(
        profile_id=int(customer.origin.external_id) if customer.origin else 0,
        added=mapping.to_unix(customer.created_at),
        updateDate=mapping.to_unix(customer.updated_at),
    )
    back = mapping.customer_from_native(as_xcart_json(native))
    assert back == customer


@settings(max_examples=50, deadline=None)
@given(
    st.builds(
        Product,
        origin=IDS.map(lambda i: Origin(system="xcart", external_id=i)),
        sku=st.from_regex(r"[A-Z0-9-]{1,12}", fullmatch=True),
        name=TEXT.filter(bool),
        description=TEXT,
        price=MONEY,
        currency=st.just("USD"),
        enabled=st.booleans(),
        updated_at=TIMES,
    )
)
def test_product_round_trip(product: Product) -> None:
    assert product.origin is not None
    native = mapping.product_to_native(product, LOOKUPS)
    native.update(
        product_id=int(product.origin.external_id), updateDate=mapping.to_unix(product.updated_at)
    )
    back = mapping.product_from_native(as_xcart_json(native), LOOKUPS)
    assert back == product
    assert str(back.price) == str(product.price) or back.price == product.price


@settings(max_examples=50, deadline=None)
@given(
    st.builds(
        ReturnRequest,
        origin=IDS.map(lambda i: Origin(system="xcart", external_id=i)),
        order_number=IDS,
        lines=st.lists(
            st.builds(
                ReturnLine,
                sku=st.from_regex(r"[A-Z]{3}-[0-9]", fullmatch=True),
                quantity=st.integers(1, 9),
                reason=TEXT,
            ),
            min_size=1,
            max_size=3,
        ),
        reason=TEXT,
        requested_at=TIMES,
    )
)
def test_return_round_trip(request_: ReturnRequest) -> None:
    back = mapping.return_from_native(as_xcart_json(mapping.return_to_native(request_)))
    assert back == request_


def test_money_from_json_numbers_is_exact() -> None:
    assert mapping.money(19.99) == Decimal("19.99")
    assert mapping.money(Decimal("0.10")) == Decimal("0.10")
    assert mapping.money("7.5") == Decimal("7.5")
    assert mapping.money(None) == Decimal("0")


def test_status_maps_use_the_lookups() -> None:
    assert mapping.shipping_status_id(OrderStatus.SHIPPED, LOOKUPS) == 3
    assert mapping.order_status_from_native(4, "P", LOOKUPS) == OrderStatus.DELIVERED
    assert mapping.order_status_from_native(3, "R", LOOKUPS) == OrderStatus.REFUNDED
    assert mapping.payment_status_code("refunded", LOOKUPS) == "R"
    assert mapping.payment_status_code("PP", LOOKUPS) == "PP"
    custom = XCartLookups(shipping_status_ids={"shipped": 7})
    assert mapping.shipping_status_id("shipped", custom) == 7
    with pytest.raises(ValueError):
        mapping.shipping_status_id("pending", custom)
    with pytest.raises(ValueError):
        mapping.payment_status_code("bartered", LOOKUPS)


def test_admin_notes_keep_one_erp_line_and_do_not_repeat_a_note() -> None:
    notes = mapping.notes_with("Customer called.", erp_ref="SO1", note="synced")
    assert notes == "ERP order: SO1\nCustomer called.\nsynced"
    again = mapping.notes_with(notes, erp_ref="SO2", note="synced")
    assert again == "ERP order: SO2\nCustomer called.\nsynced"
    assert mapping.erp_ref_from_notes(again) == "SO2"
    assert mapping.erp_ref_from_notes("nothing here") == ""


def test_country_codes_stay_iso_alpha2() -> None:
    native = {
        "firstname": "A",
        "lastname": "B",
        "street": "1 St",
        "city": "X",
        "zipcode": "1",
        "country_code": "DEU",
    }
    assert mapping.address_from_native(native).country == "DE"
    address = Address(line1="1 St", city="X", postal_code="1", country="GB")
    assert (
        mapping.address_to_native(address, is_billing=True, is_shipping=False)["country_code"]
        == "GB"
    )


def test_product_in_a_foreign_currency_is_refused() -> None:
    product = Product(sku="A", name="A", price=Decimal("1"), currency="EUR")
    with pytest.raises(ValueError, match="USD"):
        mapping.product_to_native(product, LOOKUPS)


def test_order_surcharges_and_guest_order() -> None:
    native = {
        "order_id": 7,
        "orderNumber": "10007",
        "date": 1767225600,
        "lastRenewDate": 0,
        "total": 27.5,
        "subtotal": 20.0,
        "orig_profile": None,
        "profile": {
            "login": "g@example.com",
            "addresses": [
                {
                    "is_billing": True,
                    "is_shipping": False,
                    "firstname": "G",
                    "lastname": "",
                    "street": "1 St",
                    "city": "X",
                    "zipcode": "1",
                    "country_code": "US",
                },
                {
                    "is_billing": False,
                    "is_shipping": True,
                    "firstname": "H",
                    "lastname": "I",
                    "street": "2 St",
                    "city": "Y",
                    "zipcode": "2",
                    "country_code": "CA",
                },
            ],
        },
        "shippingStatus": {"id": 2},
        "paymentStatus": {"code": "Q"},
        "items": [{"item_id": 1, "sku": "W", "price": 10.0, "amount": 2}],
        "surcharges": [
            {"type": "shipping", "value": 5.0},
            {"type": "tax", "value": 3.5},
            {"type": "discount", "value": -1.0},
        ],
        "payment_transactions": [{"transaction_id": 1, "status": "F", "type": "sale", "value": 1}],
        "currency": {"code": "USD"},
        "trackingNumbers": [{"value": "1Z"}],
        "adminNotes": "",
    }
    order = mapping.order_from_native(native, LOOKUPS)
    assert order.customer.origin is None and order.customer.email == "g@example.com"
    assert (order.shipping_total, order.tax_total, order.discount_total) == (
        Decimal("5.0"),
        Decimal("3.5"),
        Decimal("1.0"),
    )
    assert order.shipping_address.country == "CA" and order.billing_address.name == "G"
    assert order.status == OrderStatus.PROCESSING and order.payment is None
    assert order.updated_at is None and order.tracking_numbers == ["1Z"]


def _book_address(address_id: int, street: str, **flags: bool) -> dict[str, Any]:
    return {
        "address_id": address_id,
        "is_billing": flags.get("billing", False),
        "is_shipping": flags.get("shipping", False),
        "firstname": "Kim",
        "lastname": "Ode",
        "street": street,
        "city": "Austin",
        "country_code": "US",
        "zipcode": "78702",
    }


def test_an_address_repeating_an_older_one_is_a_twin_whose_roles_the_older_keeps() -> None:
    older = _book_address(4, "9 Elm St", billing=True)
    twin = _book_address(7, " 9 ELM ST ", shipping=True)
    other = _book_address(5, "1 Oak St")
    kept = mapping.without_twins([twin, other, older])
    assert [a["address_id"] for a in kept] == [4, 5]
    assert kept[0]["is_billing"] and kept[0]["is_shipping"]


def test_an_address_to_create_saying_what_one_already_says_reuses_its_id() -> None:
    """No role matches (the landed address of an earlier attempt has none here): the
    content does, so the address is written with its id, and not listed twice."""
    landed = _book_address(9, "9 Elm St")
    wanted = {**_book_address(0, "9 Elm St", billing=True, shipping=True)}
    del wanted["address_id"]
    merged = mapping.merge_addresses([landed], [wanted])
    assert [(a["address_id"], a["is_billing"]) for a in merged] == [(9, True)]


def test_the_tracking_text_fits_its_32_character_column() -> None:
    one = "1Z999AA10123456784"
    assert mapping.tracking_text("UPS", [one]) == f"UPS {one}"
    two = mapping.tracking_text("UPS", [one, "1Z999AA10123456785"])
    assert two == f"UPS {one} +1" and len(two) <= mapping.TRACKING_TEXT_MAX
    long_carrier = mapping.tracking_text("United Parcel Service Worldwide", [one])
    assert long_carrier == one
    assert mapping.tracking_text("UPS", ["X" * 33]) == ""
    assert mapping.tracking_text("UPS", []) == "UPS"
    for count in range(1, 6):
        numbers = [f"1Z999AA1012345678{n}" for n in range(count)]
        text = mapping.tracking_text("FedEx Ground", numbers)
        assert len(text) <= mapping.TRACKING_TEXT_MAX and numbers[0] in text
