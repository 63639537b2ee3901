"""What an order goes through before the ERP sees it, on both pairs: its addresses, phone
and e-mail cleansed (the ERP receives the cleansed ones, the run's status says what
changed), an address no retry can fix dead-lettered naming the field, and anomaly flags
learnt from the pair's own earlier orders: an unusual order waits with its reasons, a
usual one goes straight through. Real dev server, real database, real sandboxes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from commerce_sync.contracts import search_attributes as sa
from tests.integration.orders.order_stack import (
    PAIRS,
    Stack,
    stack_with_rules,
)
from tests.integration.orders.sandbox_views import erp_sales_orders
from tests.integration.orders.test_order_approval import commerce_sync

Json = dict[str, Any]

# A few earlier orders are enough to learn from here; the fixed risk rules are set out
# of reach so that only the anomaly checks can hold an order back.
LEARN_FROM = 5
CHECK_RULES: dict[str, int | str | bool | float] = {
    "anomalies.min_history": LEARN_FROM,
    "anomalies.min_sku_orders": LEARN_FROM,
    "total_over": "1000000.00",
    "new_customer_first_order_over": "1000000.00",
}


@pytest.fixture
async def checks_stack(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    sqlite_url: str,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    async with stack_with_rules(
        temporal_client, sandbox_url, sandboxes, sqlite_url, tmp_path, CHECK_RULES
    ) as running:
        yield running


def _text(value: Any) -> str:
    """An Acumatica field as the sandbox keeps it ({"value": ...} or bare)."""
    if isinstance(value, dict):
        return str(value.get("value") or "")
    return str(value or "")


def erp_delivery_address(erp: str, order: Json) -> dict[str, str]:
    """The ERP order's shipping address: street line, city, region, postal code."""
    if erp == "brightpearl":
        party = order["parties"]["delivery"]
        return {
            "line1": party["addressLine1"],
            "line2": party["addressLine2"],
            "city": party["addressLine3"],
            "region": party["addressLine4"],
            "postal_code": party["postalCode"],
        }
    address = order["ShipToAddress"]
    return {
        "line1": _text(address.get("AddressLine1")),
        "line2": _text(address.get("AddressLine2")),
        "city": _text(address.get("City")),
        "region": _text(address.get("State")),
        "postal_code": _text(address.get("PostalCode")),
    }


def messy_order() -> Json:
    return {
        "customer": {
            "email": f"Messy.Shopper-{uuid.uuid4().hex[:8]}@EXAMPLE.COM",
            "first_name": "Max",
            "last_name": "Messy",
            "phone": "(512) 555-0123",
        },
        "shipping_address": {
            "line1": "  1200   north congress avenue ",
            "line2": "suite 300",
            "city": "austin",
            "region": "texas",
            "postal_code": "78701-1234",
            "country": "US",
        },
    }


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_messy_address_arrives_cleansed_in_the_erp(stack: Stack, pair: str) -> None:
    store, erp = PAIRS[pair]
    order_id = await stack.place_order(store, **messy_order())
    placed = await stack.wait_state(pair, order_id, "awaiting_shipment")

    [erp_order] = await erp_sales_orders(stack, erp, placed["status"]["store_order_number"])
    delivery = erp_delivery_address(erp, erp_order)
    assert delivery["line1"] == "1200 N CONGRESS AVE"
    assert delivery["line2"] == "STE 300"
    assert delivery["city"] == "AUSTIN"
    assert delivery["postal_code"] == "78701-1234"
    if erp == "acumatica":
        assert delivery["region"] == "TX"

    changes = {change["field"]: change for change in placed["status"]["cleansed"]}
    line1 = changes["shipping_address.line1"]
    assert line1["after"] == "1200 N CONGRESS AVE" and "congress avenue" in line1["before"]
    assert changes["customer.phone"]["after"] == "+15125550123"
    assert changes["customer.email"]["after"].endswith("@example.com")
    cleanse = [step for step in placed["status"]["steps"] if step["name"] == "cleanse"]
    assert cleanse and "shipping_address.line1" in cleanse[0]["detail"]


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_an_address_no_retry_can_fix_is_dead_lettered_naming_the_field(
    stack: Stack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    order = messy_order()
    order["shipping_address"]["postal_code"] = "7870"  # four digits: no US ZIP code
    order_id = await stack.place_order(store, **order)
    failed = await stack.wait_state(pair, order_id, "dead_lettered", "failed")

    assert "shipping_address.postal_code" in failed["status"]["error"]
    assert "7870" in failed["status"]["error"]
    assert await erp_sales_orders(stack, erp, failed["status"]["store_order_number"]) == []


async def _usual_orders(stack: Stack, store: str, pair: str, count: int) -> None:
    """`count` ordinary orders (2 x WIDGET-1), through to the ERP, to learn from."""
    placed = [await stack.place_order(store) for _ in range(count)]
    await asyncio.gather(
        *(stack.wait_state(pair, order_id, "awaiting_shipment") for order_id in placed)
    )


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_an_unusual_order_waits_with_its_reasons_and_a_usual_one_does_not(
    checks_stack: Stack, pair: str, tmp_path: Path
) -> None:
    stack = checks_stack
    store, _erp = PAIRS[pair]
    await _usual_orders(stack, store, pair, LEARN_FROM)

    # Thirty times the usual quantity: the total and the SKU's quantity stand out.
    unusual = await stack.place_order(store, lines=[{"sku": "WIDGET-1", "quantity": 60}])
    waiting = await stack.wait_state(pair, unusual, "awaiting_approval")
    status = waiting["status"]
    checks = {flag["check"]: flag for flag in status["flags"]}
    assert {"total_vs_store", "sku_quantity"} <= set(checks)
    assert status["anomaly_score"] >= 1.0
    assert "this store's median order" in checks["total_vs_store"]["reason"]
    assert "60 x WIDGET-1" in checks["sku_quantity"]["reason"]
    reasons = status["approval"]["reasons"]
    assert any("this store's median order" in reason for reason in reasons)
    [step] = [step for step in status["steps"] if step["name"] == "anomaly checks"]
    assert step["outcome"] == "approval required"
    assert f"against {LEARN_FROM} earlier orders" in step["detail"]

    # Flagged orders are found in the Web UI and the run lists by their search attribute.
    handle = stack.client.get_workflow_handle(waiting["workflow_id"])
    flags = (await handle.describe()).typed_search_attributes.get(sa.ORDER_FLAGS)
    assert flags is not None and {"total_vs_store", "sku_quantity"} <= set(flags)

    # The CLI shows the same reasons, decoded.
    shown = await commerce_sync(stack, tmp_path, "status", pair, unusual)
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())  # as read, whatever the terminal's wrapping
    assert "awaiting_approval" in text and "this store's median order" in text
    assert "sku_quantity" in text
    for target, says in (
        (["return:kentico-brightpearl:1"], "status shows order runs"),
        ([pair, "999999999"], f"no run order:{pair}:999999999"),
    ):
        refused = await commerce_sync(stack, tmp_path, "status", *target)
        assert refused.returncode == 1 and says in refused.stderr, refused.stderr
        assert refused.stderr.strip().count("\n") == 0

    # The next ordinary order is not held back by the one before it.
    usual = await stack.place_order(store)
    through = await stack.wait_state(pair, usual, "awaiting_shipment")
    assert through["status"]["flags"] == [] and through["status"]["anomaly_score"] == 0.0
    assert through["status"]["approval"] is None

    approved = await stack.http.post(
        f"{stack.api}/orders/{pair}/{unusual}/approval",
        json={"approved": True, "by": "ops"},
        headers=stack.headers(),
    )
    assert approved.status_code == 200, approved.text
    await stack.wait_state(pair, unusual, "awaiting_shipment")
