"""Address and contact cleansing before the ERP write (domain/cleansing.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commerce_sync.domain.cleansing import (
    CleansedOrder,
    CleansingProblem,
    FieldChange,
    cleanse_address,
    cleanse_order,
)
from commerce_sync.domain.models import Address, Customer, Order, OrderLine, Origin
from commerce_sync.domain.pair_rules import CleansingRules

PLACED = datetime(2026, 1, 10, tzinfo=UTC)
RULES = CleansingRules()
DROP = CleansingRules(invalid_phone="drop")
NO_USPS = CleansingRules(usps_us_addresses=False)


def us(**changes: str) -> Address:
    """A US address already in its cleansed form, with `changes`."""
    fields = {"line1": "1 MAIN ST", "city": "AUSTIN", "region": "TX", "postal_code": "78701"}
    return Address.model_validate({**fields, "country": "US", **changes})


def gb(**changes: str) -> Address:
    fields = {"line1": "1 High St", "city": "London", "postal_code": "EC1Y 8SY"}
    return Address.model_validate({**fields, "country": "GB", **changes})


def order(
    billing: Address | None = None,
    shipping: Address | None = None,
    email: str = "a@example.com",
    phone: str = "",
    customer_billing: Address | None = None,
    customer_shipping: Address | None = None,
) -> Order:
    return Order(
        origin=Origin(system="kentico", external_id="7"),
        number="7",
        placed_at=PLACED,
        currency="USD",
        customer=Customer(
            email=email,
            first_name="Ann",
            phone=phone,
            billing_address=customer_billing,
            shipping_address=customer_shipping,
        ),
        billing_address=billing or us(),
        shipping_address=shipping or us(),
        lines=[OrderLine(sku="A", quantity=1, unit_price=Decimal("10.00"))],
        total=Decimal("10.00"),
    )


def address_of(
    address: Address, rules: CleansingRules = RULES
) -> tuple[Address, dict[str, tuple[str, str, str]], list[str]]:
    """`cleanse_address` with changes as {field: (before, after, why)}, problems as text."""
    cleansed, changes, problems = cleanse_address("a", address, rules)
    by_field = {c.field.removeprefix("a."): (c.before, c.after, c.why) for c in changes}
    return cleansed, by_field, [str(problem) for problem in problems]


# --- regions ---------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["texas", "Texas", "TEXAS", " Tëxas ", "tx", "US-TX", "us-tx"])
def test_a_us_state_is_written_as_its_code(region: str) -> None:
    cleansed, changes, problems = address_of(us(region=region))
    assert cleansed.region == "TX"
    assert problems == []
    assert changes["region"][1] == "TX"


def test_a_state_name_says_why() -> None:
    _, changes, _ = address_of(us(region="texas"))
    assert changes == {"region": ("texas", "TX", "state name as its code")}


def test_an_unknown_region_is_a_problem_and_no_fuzzy_matching() -> None:
    cleansed, changes, problems = address_of(us(region="Calif"))
    assert cleansed.region == "Calif"
    assert "region" not in changes
    assert problems == ["a.region: 'Calif' is not a US state"]


def test_a_missing_region_is_a_problem_where_the_country_needs_one() -> None:
    _, _, problems = address_of(us(region=""))
    assert problems == ["a.region: is missing (US addresses need one)"]
    assert address_of(gb(region=""))[2] == []


def test_a_region_is_kept_where_the_country_has_no_list() -> None:
    cleansed, changes, problems = address_of(gb(region="Greater   London"))
    assert cleansed.region == "Greater London"
    assert changes == {"region": ("Greater   London", "Greater London", "extra spaces removed")}
    assert problems == []


def test_an_unknown_region_is_kept_where_the_country_does_not_need_one() -> None:
    # Google lists Irish counties as "Co. Dublin"; the post needs no county at all.
    dublin = Address(
        line1="1 Main St", city="Dublin", region="Dublin", postal_code="D02 X285", country="IE"
    )
    cleansed, changes, problems = address_of(dublin)
    assert (cleansed.region, changes, problems) == ("Dublin", {}, [])


def test_a_region_written_in_latin_letters_is_not_rewritten_in_another_script() -> None:
    tokyo = Address(
        line1="1-1 Chiyoda", city="Chiyoda-ku", region="Tokyo", postal_code="100-0001", country="JP"
    )
    cleansed, changes, problems = address_of(tokyo)
    assert (cleansed.region, problems) == ("Tokyo", [])
    assert "region" not in changes


def test_a_region_matches_any_of_its_names() -> None:
    address = Address(
        line1="1 Rue X",
        city="Vancouver",
        region="Colombie-Britannique",
        postal_code="V8X 3X4",
        country="CA",
    )
    cleansed, _, problems = address_of(address)
    assert (cleansed.region, problems) == ("BC", [])


# --- postal codes ----------------------------------------------------------------------


def test_zip_plus_4_is_written_with_a_hyphen() -> None:
    cleansed, changes, problems = address_of(us(postal_code="78701 1234"))
    assert cleansed.postal_code == "78701-1234"
    assert changes == {"postal_code": ("78701 1234", "78701-1234", "ZIP+4 written with a hyphen")}
    assert problems == []
    assert address_of(us(postal_code="78701-1234"))[1:] == ({}, [])
    assert address_of(us(postal_code="78701 1234"), NO_USPS)[0].postal_code == "78701-1234"


@pytest.mark.parametrize("code", ["1234", "787011234", "ABCDE", "78701-12"])
def test_a_bad_zip_is_a_problem(code: str) -> None:
    cleansed, _, problems = address_of(us(postal_code=code))
    assert problems == [f"a.postal_code: {code!r} is not a US ZIP code (e.g. 95014)"]
    assert cleansed.postal_code == code  # not scourgify's guess ("01234", "78701-1234")


def test_a_missing_postal_code_is_a_problem_where_required() -> None:
    assert address_of(us(postal_code=""))[2] == ["a.postal_code: is missing"]
    hong_kong = Address(
        line1="1 Queen's Rd",
        city="Central",
        region="Hong Kong Island",
        postal_code="",
        country="HK",
    )
    assert address_of(hong_kong)[2] == []


@pytest.mark.parametrize(
    ("given", "cleansed"),
    [
        ("ec1y  8sy", "EC1Y 8SY"),
        ("EC1Y8SY", "EC1Y8SY"),
        ("m2 5bq", "M2 5BQ"),
        ("BFPO 61", "BFPO 61"),
    ],
)
def test_a_gb_postcode_is_upper_case(given: str, cleansed: str) -> None:
    address, _, problems = address_of(gb(postal_code=given))
    assert (address.postal_code, problems) == (cleansed, [])


@pytest.mark.parametrize("code", ["1234", "EC1Y 8SYXYZ", "QQ1 1AA"])
def test_a_bad_gb_postcode_is_a_problem(code: str) -> None:
    # "EC1Y 8SYXYZ" passes Google's own pattern with `re.match` (an alternation anchored
    # only at its ends): the whole code must match.
    assert address_of(gb(postal_code=code))[2] == [
        f"a.postal_code: {code!r} is not a GB postal code (e.g. EC1Y 8SY)"
    ]


def test_a_postal_code_prefix_of_the_country_is_removed() -> None:
    swiss = Address(line1="Bahnhofstrasse 1", city="Zürich", postal_code="ch-8001", country="CH")
    cleansed, changes, problems = address_of(swiss)
    assert (cleansed.postal_code, problems) == ("8001", [])
    assert changes["postal_code"] == (
        "ch-8001",
        "8001",
        "in upper case, country prefix CH- removed",
    )


# --- countries -------------------------------------------------------------------------


def test_an_unknown_country_is_a_problem_and_its_checks_are_skipped() -> None:
    address = us(country="ZZ", region="Nowhere", postal_code="x1", phone="12", line1="1  Main St")
    cleansed, changes, problems = address_of(address)
    assert problems == ["a.country: ZZ is not an ISO 3166 country"]
    assert (cleansed.region, cleansed.phone, cleansed.line1) == ("Nowhere", "12", "1 Main St")
    assert changes["postal_code"] == ("x1", "X1", "in upper case")


# --- USPS lines ------------------------------------------------------------------------


def test_us_lines_and_city_in_usps_form() -> None:
    address = us(line1="1 Main Street", line2="apartment 4", city="san  antonio")
    cleansed, changes, problems = address_of(address)
    assert (cleansed.line1, cleansed.line2, cleansed.city) == ("1 MAIN ST", "APT 4", "SAN ANTONIO")
    assert changes == {
        "line1": ("1 Main Street", "1 MAIN ST", "USPS street abbreviations"),
        "line2": ("apartment 4", "APT 4", "USPS unit abbreviations"),
        "city": (
            "san  antonio",
            "SAN ANTONIO",
            "extra spaces removed, USPS city form (upper case)",
        ),
    }
    assert problems == []


def test_a_unit_in_line1_moves_to_line2() -> None:
    cleansed, changes, _ = address_of(us(line1="1600 Pennsylvania Avenue Northwest Suite 4"))
    assert (cleansed.line1, cleansed.line2) == ("1600 PENNSYLVANIA AVE NW", "STE 4")
    assert changes["line1"][2] == "USPS street abbreviations, unit moved to line 2"


@pytest.mark.parametrize(
    "line1",
    [
        "PO  Box 123",  # scourgify refuses PO boxes (ambiguous to it)
        "c/o Ann  Smith",  # and "care of" lines
        "1",  # scourgify would make it "1 AUSTIN, TX, 78701"
    ],
)
def test_us_lines_scourgify_cannot_tell_are_kept(line1: str) -> None:
    cleansed, changes, problems = address_of(us(line1=line1, city="austin"))
    assert cleansed.line1 == " ".join(line1.split())
    assert cleansed.city == "austin"
    assert set(changes) <= {"line1"}
    assert problems == []


def test_usps_form_can_be_turned_off() -> None:
    address = us(line1="1 Main  Street", city="austin", region="texas")
    cleansed, changes, _ = address_of(address, NO_USPS)
    assert (cleansed.line1, cleansed.city, cleansed.region) == ("1 Main Street", "austin", "TX")
    assert changes["line1"] == ("1 Main  Street", "1 Main Street", "extra spaces removed")


def test_lines_elsewhere_lose_extra_spaces_only() -> None:
    address = gb(
        line1="1  High    Street", line2="Flat   2", city="London  Town", name="Ann  Smith"
    )
    cleansed, changes, _ = address_of(address)
    assert (cleansed.line1, cleansed.line2, cleansed.city) == (
        "1 High Street",
        "Flat 2",
        "London Town",
    )
    assert cleansed.name == "Ann  Smith"  # names are never touched
    assert {why for _, _, why in changes.values()} == {"extra spaces removed"}


# --- phones ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "phone", "e164"),
    [
        (us(), "(512) 867-5309", "+15128675309"),
        (us(), "+44 20 7946 0000", "+442079460000"),  # international on a US address
        (gb(), "020 7946 0000", "+442079460000"),
        (us(), "512 867 5309 x12", "+15128675309 ext. 12"),  # the extension is kept
    ],
)
def test_a_valid_phone_is_written_in_e164(address: Address, phone: str, e164: str) -> None:
    cleansed, changes, problems = address_of(address.model_copy(update={"phone": phone}))
    assert (cleansed.phone, problems) == (e164, [])
    assert changes == {"phone": (phone, e164, "E.164 phone number")}


@pytest.mark.parametrize("phone", ["12", "abc", "020 7946 0000"])
def test_an_invalid_phone_is_a_problem(phone: str) -> None:
    cleansed, changes, problems = address_of(us(phone=phone))
    assert cleansed.phone == phone
    assert changes == {}
    assert problems == [f"a.phone: {phone!r} is not a valid phone number for US"]


def test_an_invalid_phone_is_dropped_when_the_pair_says_so() -> None:
    cleansed, changes, problems = address_of(us(phone="12"), DROP)
    assert (cleansed.phone, problems) == ("", [])
    assert changes == {"phone": ("12", "", "not a valid phone number for US, dropped")}


def test_an_empty_phone_is_left_alone() -> None:
    assert address_of(us(phone=""))[1:] == ({}, [])


def test_the_customer_phone_is_read_in_the_billing_country_else_shipping() -> None:
    result = cleanse_order(order(billing=gb(), shipping=us(), phone="020 7946 0000"), RULES)
    assert result.order.customer.phone == "+442079460000"
    assert result.changes == [
        FieldChange(
            field="customer.phone",
            before="020 7946 0000",
            after="+442079460000",
            why="E.164 phone number",
        )
    ]
    unknown = cleanse_order(order(billing=gb(country="ZZ"), phone="(512) 867-5309"), RULES)
    assert unknown.order.customer.phone == "+15128675309"


@pytest.mark.parametrize(("rules", "phone"), [(RULES, "12"), (DROP, "")])
def test_an_invalid_customer_phone(rules: CleansingRules, phone: str) -> None:
    result = cleanse_order(order(phone="12"), rules)
    assert result.order.customer.phone == phone
    if rules.invalid_phone == "problem":
        assert [str(p) for p in result.problems] == [
            "customer.phone: '12' is not a valid phone number for US"
        ]
    else:
        assert result.problems == []
        assert [c.field for c in result.changes] == ["customer.phone"]


# --- e-mail ----------------------------------------------------------------------------


def test_the_email_is_normalised() -> None:
    result = cleanse_order(order(email="Ann.Smith@Example.COM"), RULES)
    assert result.order.customer.email == "Ann.Smith@example.com"
    assert result.changes == [
        FieldChange(
            field="customer.email",
            before="Ann.Smith@Example.COM",
            after="Ann.Smith@example.com",
            why="e-mail domain in lower case",
        )
    ]
    assert cleanse_order(order(email="a@example.com"), RULES).changes == []


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("not-an-email", "An email address must have an @-sign."),
        ("a..b@example.com", "An email address cannot have two periods in a row."),
        # special-use domains can never receive mail: refused (see the module docstring)
        ("a@shop.test", "The part after the @-sign is a special-use or reserved name"),
        ("a@printer.local", "The part after the @-sign is a special-use or reserved name"),
    ],
)
def test_an_invalid_email_is_a_problem(email: str, reason: str) -> None:
    result = cleanse_order(order(email=email), RULES)
    assert result.order.customer.email == email
    [problem] = result.problems
    assert problem.field == "customer.email"
    assert problem.reason.startswith(reason)


# --- the whole order -------------------------------------------------------------------


def messy() -> Order:
    return order(
        billing=us(line1="1 Main Street", region="texas", phone="(512) 867-5309"),
        shipping=gb(postal_code="ec1y 8sy", region="Calif"),
        email="A@Example.com",
        phone="512 867 5309",
        customer_billing=us(postal_code="78701 1234"),
        customer_shipping=us(region="Calif"),
    )


def test_changes_and_problems_come_in_a_stable_order() -> None:
    result = cleanse_order(messy(), RULES)
    assert [change.field for change in result.changes] == [
        "customer.email",
        "customer.phone",
        "customer.billing_address.postal_code",
        "billing_address.line1",
        "billing_address.region",
        "billing_address.phone",
        "shipping_address.postal_code",
    ]
    # The customer's profile address cannot be fixed, but the order ships to its own.
    assert result.problems == []
    assert result.order.customer.shipping_address is not None
    assert result.order.customer.shipping_address.region == "Calif"
    assert result.order.customer.billing_address is not None
    assert result.order.customer.billing_address.postal_code == "78701-1234"


def test_the_order_given_is_not_changed() -> None:
    given = messy()
    before = given.model_dump()
    result = cleanse_order(given, RULES)
    assert given.model_dump() == before
    assert result.order.billing_address is not given.billing_address


def test_nothing_happens_when_cleansing_is_off() -> None:
    given = messy()
    result = cleanse_order(given, CleansingRules(enabled=False))
    assert result == CleansedOrder(order=given)


def test_a_cleansed_order_is_a_payload() -> None:
    result = cleanse_order(messy(), RULES)
    assert CleansedOrder.model_validate_json(result.model_dump_json()) == result
    problem = CleansingProblem(field="a.b", reason="is missing")
    assert str(problem) == "a.b: is missing"


# --- properties ------------------------------------------------------------------------

STATES = ["TX", "tx", "Texas", "NEW YORK", "california", "District of Columbia", "PR", "Calif", ""]
STREETS = ["Main", "Oak", "Pennsylvania", "5th", "Martin Luther King Jr"]
TYPES = ["Street", "St", "Avenue", "ave.", "Road", "Boulevard", "Lane", "Hwy", ""]
UNITS = ["", "Apt 4", "apartment 12B", "Suite #200", "Unit 3", "Fl 2", "#5"]
CITIES = ["Austin", "san  antonio", "NEW YORK", "Washington", "St. Louis"]
text = st.text(alphabet="abcXYZ019 #-.,/'é", max_size=16)


@st.composite
def phones(draw: st.DrawFn) -> str:
    return draw(
        st.one_of(
            st.sampled_from(["", "(512) 867-5309", "+44 20 7946 0000", "020 7946 0000", "12", "x"]),
            st.text(alphabet="0123456789 +()-x.", max_size=18),
        )
    )


@st.composite
def us_addresses(draw: st.DrawFn) -> Address:
    number = draw(st.integers(min_value=1, max_value=99999))
    street = f"{number} {draw(st.sampled_from(STREETS))} {draw(st.sampled_from(TYPES))}"
    zip5 = f"{draw(st.integers(min_value=0, max_value=99999)):05d}"
    plus4 = f"{draw(st.integers(min_value=0, max_value=9999)):04d}"
    return Address(
        name=draw(st.sampled_from(["", "Ann  Smith"])),
        line1=draw(st.one_of(st.just(street), text)),
        line2=draw(st.one_of(st.sampled_from(UNITS), text)),
        city=draw(st.one_of(st.sampled_from(CITIES), text)),
        region=draw(st.one_of(st.sampled_from(STATES), text)),
        postal_code=draw(
            st.one_of(
                st.sampled_from([zip5, f"{zip5}-{plus4}", f"{zip5} {plus4}", zip5 + plus4]),
                text,
            )
        ),
        country="US",
        phone=draw(phones()),
    )


@st.composite
def gb_addresses(draw: st.DrawFn) -> Address:
    return Address(
        line1=draw(st.one_of(st.just("10  Downing Street"), text)),
        line2=draw(text),
        city=draw(st.one_of(st.just("London"), text)),
        region=draw(st.one_of(st.just(""), text)),
        postal_code=draw(
            st.one_of(st.sampled_from(["EC1Y 8SY", "sw1a 2aa", "SW1A2AA", "GIR 0AA"]), text)
        ),
        country=draw(st.sampled_from(["GB", "GB", "ZZ"])),
        phone=draw(phones()),
    )


addresses = st.one_of(us_addresses(), gb_addresses())


@st.composite
def orders(draw: st.DrawFn) -> tuple[Order, CleansingRules]:
    rules = CleansingRules(
        usps_us_addresses=draw(st.booleans()),
        invalid_phone=draw(st.sampled_from(["problem", "drop"])),
    )
    given = order(
        billing=draw(addresses),
        shipping=draw(addresses),
        email=draw(st.sampled_from(["a@example.com", "A@Example.COM", "bad", "a@x.test"])),
        phone=draw(phones()),
        customer_billing=draw(st.one_of(st.none(), addresses)),
        customer_shipping=draw(st.one_of(st.none(), addresses)),
    )
    return given, rules


def flat(value: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of a dumped model by its dotted path."""
    if isinstance(value, dict):
        leaves: dict[str, Any] = {}
        for key, inner in value.items():
            leaves.update(flat(inner, f"{path}.{key}" if path else key))
        return leaves
    return {path: value}


@settings(max_examples=100, deadline=None)
@given(orders())
def test_cleansing_is_idempotent(case: tuple[Order, CleansingRules]) -> None:
    given, rules = case
    first = cleanse_order(given, rules)
    second = cleanse_order(first.order, rules)
    assert second.changes == []
    assert second.problems == first.problems
    assert second.order == first.order


@settings(max_examples=100, deadline=None)
@given(orders())
def test_changes_say_exactly_what_changed(case: tuple[Order, CleansingRules]) -> None:
    given, rules = case
    result = cleanse_order(given, rules)
    before, after = flat(given.model_dump()), flat(result.order.model_dump())
    changes = {change.field: change for change in result.changes}
    assert len(changes) == len(result.changes)
    assert before.keys() == after.keys()
    for path, value in before.items():
        if path in changes:
            assert changes[path].before == value != changes[path].after == after[path]
        else:
            assert after[path] == value, path
    # a Temporal payload: what the ERP write reads back is what the changes say
    assert Order.model_validate_json(result.order.model_dump_json()) == result.order


@settings(max_examples=100, deadline=None)
@given(orders())
def test_a_us_address_without_problems_has_a_zip_and_a_state(
    case: tuple[Order, CleansingRules],
) -> None:
    given, rules = case
    result = cleanse_order(given, rules)
    troubled = {problem.field.rsplit(".", 1)[0] for problem in result.problems}
    cleansed = result.order
    # (the customer's profile addresses are cleansed too, but their problems are not the
    # order's: they may stay as written)
    found = [
        ("billing_address", cleansed.billing_address),
        ("shipping_address", cleansed.shipping_address),
    ]
    for prefix, address in found:
        if address is not None and address.country == "US" and prefix not in troubled:
            assert re.fullmatch(r"\d{5}(-\d{4})?", address.postal_code)
            assert re.fullmatch(r"[A-Z]{2}", address.region)
