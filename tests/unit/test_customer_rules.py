"""E-mail normalisation, merge by system-of-record rules, sync directions, fingerprints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from commerce_sync.domain.customers import (
    apply_fields,
    changed_fields,
    email_variants,
    fingerprint,
    flowing_fields,
    merge_customer,
    normalise_email,
    numbering_key,
    same_person,
)
from commerce_sync.domain.models import Address, Customer, Origin
from commerce_sync.domain.pair_rules import CustomerRules


def _at(day: int) -> datetime:
    return datetime(2025, 3, day, tzinfo=UTC)


def _address(line1: str, city: str = "Austin") -> Address:
    return Address(line1=line1, city=city, postal_code="78701", country="US")


def _customer(system: str, ident: str, day: int | None, **fields: object) -> Customer:
    return Customer.model_validate(
        {
            "origin": Origin(system=system, external_id=ident),
            "email": "jane@example.com",
            "updated_at": _at(day) if day else None,
            **fields,
        }
    )


@pytest.mark.parametrize(
    ("raw", "plus", "expected"),
    [
        ("  Jane.Doe@Example.COM ", True, "jane.doe@example.com"),
        ("jane+shop@example.com", True, "jane@example.com"),
        ("jane+shop@example.com", False, "jane+shop@example.com"),
        ("JANE+a+b@EXAMPLE.com", True, "jane@example.com"),
        ("+only@example.com", True, "+only@example.com"),
        ("no-at-sign", True, "no-at-sign"),
        ("STRASSE@example.com", True, "strasse@example.com"),
    ],
)
def test_normalise_email(raw: str, plus: bool, expected: str) -> None:
    assert normalise_email(raw, plus_addressing=plus) == expected


def test_same_person_follows_the_plus_addressing_setting() -> None:
    assert same_person("a+tag@x.com", " A@X.com", CustomerRules())
    assert not same_person(
        "a+tag@x.com", "a@x.com", CustomerRules(plus_addressing_is_same_person=False)
    )
    assert not same_person("a@x.com", "b@x.com", CustomerRules())
    assert email_variants(" a+tag@x.com", CustomerRules()) == ["a+tag@x.com", "a@x.com"]
    assert email_variants("a@x.com", CustomerRules()) == ["a@x.com"]


def test_merge_takes_each_field_from_its_owner_then_the_newest_non_empty() -> None:
    rules = CustomerRules(
        field_owner={"first_name": "store", "billing_address": "store", "company": "erp"}
    )
    survivor = _customer("brightpearl", "201", 1, first_name="J", phone="", company="")
    duplicate = _customer(
        "brightpearl", "202", 5, first_name="Janet", phone="555 0101", company="Dup Ltd"
    )
    older_dup = _customer("brightpearl", "203", 3, phone="555 0202", last_name="Doe")
    store = _customer("kentico", "7", 2, first_name="Jane", billing_address=_address("1 Store St"))
    merged = merge_customer(survivor, [duplicate, older_dup, store], rules)
    assert merged.origin == survivor.origin and merged.email == survivor.email
    assert merged.first_name == "Jane"  # owned by the store: the store's, though older
    assert merged.billing_address == _address("1 Store St")
    assert merged.company == "Dup Ltd"  # owned by the ERP: the newest ERP value
    assert merged.phone == "555 0101"  # no rule: newest non-empty of any record
    assert merged.last_name == "Doe"  # only one record has it
    assert merged.active is True


def test_merge_falls_back_when_the_owner_holds_nothing_and_keeps_the_survivor_on_ties() -> None:
    rules = CustomerRules(field_owner={"company": "erp", "phone": "store"})
    survivor = _customer("kentico", "1", None, company="Survivor Co", phone="111")
    duplicate = _customer("kentico", "2", None, company="Dup Co", phone="222")
    merged = merge_customer(survivor, [duplicate], rules)
    # No ERP record: the newest non-empty of all; equal (unknown) times keep the survivor.
    assert (merged.company, merged.phone) == ("Survivor Co", "111")
    newer = duplicate.model_copy(update={"updated_at": _at(9)})
    assert merge_customer(survivor, [newer], rules).company == "Dup Co"
    empty = _customer("kentico", "1", 1)
    assert merge_customer(empty, [], rules).shipping_address is None


def test_fields_flow_only_in_the_direction_their_owner_allows() -> None:
    rules = CustomerRules(field_owner={"email": "store", "phone": "store", "company": "erp"})
    from_store = flowing_fields(rules, "store")
    from_erp = flowing_fields(rules, "erp")
    assert "phone" in from_store and "phone" not in from_erp
    assert "company" in from_erp and "company" not in from_store
    assert "first_name" in from_store and "first_name" in from_erp  # no rule: both ways
    erp = _customer("brightpearl", "201", 1, phone="1", company="Old", first_name="Jane")
    store = _customer("kentico", "5", 2, phone="2", company="New", first_name="Jane")
    assert changed_fields(erp, store, from_store) == ["phone"]
    written = apply_fields(erp, store, from_store)
    assert (written.phone, written.company, written.origin) == ("2", "Old", erp.origin)


def test_an_empty_address_never_clears_and_address_case_does_not_count() -> None:
    rules = CustomerRules()
    with_address = _customer("kentico", "5", 1, billing_address=_address("1 Main St"))
    without = _customer("xcart", "6", 1)
    assert changed_fields(with_address, without, flowing_fields(rules, "store")) == []
    shouted = _customer("kentico", "5", 1, billing_address=_address("1 MAIN ST", "AUSTIN"))
    assert changed_fields(with_address, shouted, ["billing_address"]) == []
    moved = _customer("kentico", "5", 1, billing_address=_address("9 Elm St"))
    assert changed_fields(with_address, moved, ["billing_address"]) == ["billing_address"]


def test_fingerprint_covers_the_synced_fields_and_active_only() -> None:
    base = _customer("kentico", "5", 1, first_name="Jane", phone="1")
    assert fingerprint(base) == fingerprint(base.model_copy(update={"updated_at": _at(20)}))
    assert fingerprint(base) == fingerprint(base.model_copy(update={"email": "JANE@example.com"}))
    assert fingerprint(base) != fingerprint(base.model_copy(update={"phone": "2"}))
    assert fingerprint(base) != fingerprint(base.model_copy(update={"active": False}))


def test_numbering_key_orders_customer_ids_oldest_first() -> None:
    # Acumatica's `CustomerID`s and Brightpearl's contact ids: by number, not as text.
    assert sorted(["C000010", "C000100", "C000009"], key=numbering_key) == [
        "C000009",
        "C000010",
        "C000100",
    ]
    assert sorted(["1003", "204", "99"], key=numbering_key) == ["99", "204", "1003"]
    # Ids without digits compare as text after any numbered one of value 0.
    assert numbering_key("ABC") < numbering_key("ABD") < numbering_key("C1")
