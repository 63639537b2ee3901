"""The Acumatica sandbox's incremental indexes (keys, stock held by open orders, push
query rows) and the check the test suite runs after every write to it; and its filtered
lists, which filter the stored records before viewing them, with their check.

The suite runs every sandbox with `COMMERCE_SYNC_SANDBOX_CHECKS=1` (tests/conftest.py),
so each test that writes to the Acumatica sandbox over HTTP also checks the indexes. These
tests show that the check catches a write that does not mark what it changed, which is the
mistake the indexes invite; they use the sandbox's own methods, as the unit under test.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from commerce_sync.config.settings import Settings
from sandboxes.acumatica.odata import compile_filter
from sandboxes.acumatica.sandbox import CHECKS_ENV, DERIVED_MEMBERS, AcumaticaSandbox


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> AcumaticaSandbox:
    """A sandbox whose writes do not check themselves: the tests call the check."""
    monkeypatch.delenv(CHECKS_ENV, raising=False)
    return AcumaticaSandbox(Settings(_env_file=None).acumatica)


def a_customer(sandbox: AcumaticaSandbox) -> dict[str, Any]:
    return next(iter(sandbox.db["Customer"].values()))


def test_a_fresh_sandbox_passes_the_check(sandbox: AcumaticaSandbox) -> None:
    sandbox.check_indexes()


def test_a_marked_change_updates_the_rows_and_pushes_it(sandbox: AcumaticaSandbox) -> None:
    customer = copy.deepcopy(a_customer(sandbox))
    customer["CustomerName"] = "Renamed Ltd"
    sandbox._insert("Customer", customer)  # a new version, as `_put` stores it
    sandbox._commit()

    sandbox.check_indexes()
    pushed = [event for event in sandbox.events if event.type == "CS-Customers"]
    assert len(pushed) == 1
    inserted = json.loads(pushed[0].body)["Inserted"]
    assert [row["CustomerName"] for row in inserted] == ["Renamed Ltd"]


def test_a_change_made_without_marking_it_fails_the_check(sandbox: AcumaticaSandbox) -> None:
    a_customer(sandbox)["CustomerName"] = "Changed In Place"
    sandbox._commit()

    with pytest.raises(AssertionError, match="CS-Customers differs"):
        sandbox.check_indexes()


def test_an_order_stored_without_insert_fails_the_check(sandbox: AcumaticaSandbox) -> None:
    order: dict[str, Any] = {
        "id": "order-1",
        "OrderType": "SO",
        "OrderNbr": "000001",
        "Status": "Open",
        "Details": [
            {"InventoryID": "WIDGET-1", "WarehouseID": "WHOLESALE", "Operation": "Issue",
             "OpenQty": Decimal(2)},
        ],
    }  # fmt: skip
    sandbox.db["SalesOrder"][order["id"]] = order
    sandbox._commit()

    with pytest.raises(AssertionError, match="keys differs"):
        sandbox.check_indexes()
    sandbox._insert("SalesOrder", order)
    sandbox._commit()
    sandbox.check_indexes()
    on_hand, available = sandbox._last_stock[("WIDGET-1", "WHOLESALE")]
    assert available == on_hand - 2


def test_with_the_checks_on_a_write_checks_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHECKS_ENV, "1")
    sandbox = AcumaticaSandbox(Settings(_env_file=None).acumatica)
    a_customer(sandbox)["CustomerName"] = "Changed In Place"

    with pytest.raises(AssertionError, match="CS-Customers differs"):
        sandbox._commit()


def customer_ids(views: list[dict[str, Any]]) -> list[str]:
    return [view["CustomerID"] for view in views]


def test_a_filter_on_stored_members_finds_what_the_views_would(
    sandbox: AcumaticaSandbox,
) -> None:
    found = compile_filter("MainContact/Email eq 'OTTO.often@example.com'")

    views = sandbox._filtered_views("Customer", found)

    assert customer_ids(views) == ["C000002"]
    sandbox._check_filtered("Customer", found, views)


def test_a_filter_on_a_derived_member_reads_the_views(sandbox: AcumaticaSandbox) -> None:
    # The stored customer has no PrimaryContact: the view derives it from MainContact.
    found = compile_filter("PrimaryContact/Email eq 'rita.returning@example.com'")
    assert all("PrimaryContact" not in record for record in sandbox.db["Customer"].values())

    views = sandbox._filtered_views("Customer", found)

    assert customer_ids(views) == ["C000001"]
    sandbox._check_filtered("Customer", found, views)


def test_a_derived_member_left_unlisted_fails_the_check(
    sandbox: AcumaticaSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        DERIVED_MEMBERS, "Customer", DERIVED_MEMBERS["Customer"] - {"PrimaryContact"}
    )
    found = compile_filter("PrimaryContact/Email eq 'rita.returning@example.com'")

    views = sandbox._filtered_views("Customer", found)  # filtered as stored: nothing

    assert views == []
    with pytest.raises(AssertionError, match=r"derive \['PrimaryContact'\]"):
        sandbox._check_filtered("Customer", found, views)


def test_with_the_checks_on_a_filtered_list_checks_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CHECKS_ENV, "1")
    sandbox = AcumaticaSandbox(Settings(_env_file=None).acumatica)
    monkeypatch.setitem(DERIVED_MEMBERS, "Customer", frozenset())

    with pytest.raises(AssertionError, match="not in DERIVED_MEMBERS"):
        sandbox._filtered_views("Customer", compile_filter("CustomerID eq 'C000001'"))


def a_payment(reference: str, *orders: tuple[str, str, Decimal]) -> dict[str, Any]:
    return {
        "id": f"payment-{reference}",
        "Type": "Payment",
        "ReferenceNbr": reference,
        "Status": "Open",
        "OrdersToApply": [
            {"OrderType": order_type, "OrderNbr": number, "AppliedToOrder": amount}
            for order_type, number, amount in orders
        ],
    }


def payments_of(sandbox: AcumaticaSandbox, number: str) -> list[tuple[str, Decimal]]:
    key = ("SO", number)
    return [
        (p["ReferenceNbr"], amount) for p, amount in sandbox._order_links(only=key).payments[key]
    ]


def test_an_orders_payments_come_from_the_index_in_the_order_made(
    sandbox: AcumaticaSandbox,
) -> None:
    sandbox._insert("Payment", a_payment("P1", ("SO", "000001", Decimal("5.00"))))
    sandbox._insert(
        "Payment",
        a_payment("P2", ("SO", "000002", Decimal(3)), ("SO", "000001", Decimal("7.5"))),
    )
    sandbox._commit()
    assert payments_of(sandbox, "000001") == [("P1", Decimal("5.00")), ("P2", Decimal("7.5"))]

    voided = sandbox.db["Payment"]["payment-P1"]
    voided["Status"] = "Voided"  # a voided payment stays indexed, and is left out
    sandbox._changed(voided)
    moved = copy.deepcopy(sandbox.db["Payment"]["payment-P2"])
    moved["OrdersToApply"] = moved["OrdersToApply"][:1]  # now names 000002 only
    sandbox._insert("Payment", moved)
    sandbox._commit()

    assert payments_of(sandbox, "000001") == []
    assert payments_of(sandbox, "000002") == [("P2", Decimal(3))]
    sandbox.check_indexes()


def test_a_payment_relinked_without_marking_it_fails_the_check(
    sandbox: AcumaticaSandbox,
) -> None:
    sandbox._insert("Payment", a_payment("P1", ("SO", "000001", Decimal(5))))
    sandbox._commit()
    sandbox._order_links(only=("SO", "000001"))  # indexed now
    sandbox.db["Payment"]["payment-P1"]["OrdersToApply"][0]["OrderNbr"] = "000009"

    with pytest.raises(AssertionError, match="order links differs"):
        sandbox.check_indexes()


def test_with_the_checks_on_a_stale_link_fails_the_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CHECKS_ENV, "1")
    sandbox = AcumaticaSandbox(Settings(_env_file=None).acumatica)
    sandbox._insert("Payment", a_payment("P1", ("SO", "000001", Decimal(5))))
    sandbox._commit()
    sandbox.db["Payment"]["payment-P1"]["OrdersToApply"][0]["AppliedToOrder"] = Decimal(6)
    payments_of(sandbox, "000001")  # amounts are read from the record: still right
    sandbox.db["Payment"]["payment-P1"]["OrdersToApply"][0]["OrderNbr"] = "000009"

    with pytest.raises(AssertionError, match="order links differ from the database"):
        payments_of(sandbox, "000009")


def test_only_a_conjunction_names_the_text_every_match_has() -> None:
    found = compile_filter("CustomerOrder eq 'K-1' and OrderType eq 'SO' and OrderTotal gt 5")
    assert found.equalities == ((("CustomerOrder",), "k-1"), (("OrderType",), "so"))
    assert compile_filter("CustomerOrder eq 'K-1' or OrderType eq 'SO'").equalities == ()
    assert compile_filter("not (CustomerOrder eq 'K-1')").equalities == ()
    assert compile_filter("OrderTotal eq 5").equalities == ()


def test_an_email_lookup_follows_the_customers_writes(sandbox: AcumaticaSandbox) -> None:
    def by_email(email: str) -> list[str]:
        found = compile_filter(f"MainContact/Email eq '{email}'")
        views = sandbox._filtered_views("Customer", found)
        sandbox._check_filtered("Customer", found, views)
        return customer_ids(views)

    assert by_email("rita.returning@example.com") == ["C000001"]  # the index is made
    renamed = copy.deepcopy(sandbox.db["Customer"][a_customer(sandbox)["id"]])
    renamed["MainContact"]["Email"] = "Rita.New@example.com"
    sandbox._insert("Customer", renamed)
    sandbox._commit()

    assert by_email("rita.returning@example.com") == []
    assert by_email("rita.new@EXAMPLE.com") == ["C000001"]
    sandbox.check_indexes()


def test_a_text_changed_without_marking_it_fails_the_check(sandbox: AcumaticaSandbox) -> None:
    sandbox._filtered_views("Customer", compile_filter("MainContact/Email eq 'x@example.com'"))
    a_customer(sandbox)["MainContact"]["Email"] = "changed@example.com"

    with pytest.raises(AssertionError, match="text indexes differs"):
        sandbox.check_indexes()
