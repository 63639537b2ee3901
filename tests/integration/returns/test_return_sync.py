"""A store return request becomes an ERP credit, goods back on hand and a refund of the
right amount in the order's currency, once, and the store hears it: both pairs, from a
shipped order, through real webhooks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.integration.orders.order_stack import PAIRS
from tests.integration.returns.return_stack import ReturnStack

STORE_REFUNDED = {"kentico": "refunded", "xcart": "completed"}
STORE_REJECTED = {"kentico": "rejected", "xcart": "declined"}
PRICE = {"WIDGET-1": Decimal("9.99"), "WIDGET-2": Decimal("14.99")}


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_partial_then_rest_returned_once_each(returns: ReturnStack, pair: str) -> None:
    order = await returns.shipped_order(
        pair, [{"sku": "WIDGET-1", "quantity": 3}, {"sku": "WIDGET-2", "quantity": 1}]
    )
    stock_before = await returns.on_hand(order.erp, "WIDGET-1")

    # A partial return: one of the three WIDGET-1.
    first = await returns.request_return(
        order.store, order.order_id, [{"sku": "WIDGET-1", "quantity": 1}]
    )
    done = await returns.wait_return(pair, first, "refunded", run_status="COMPLETED")
    status = done["status"]
    reference = status["reference"]
    assert reference.startswith(f"RMA-{order.store}-{first}-")
    assert Decimal(status["refund_amount"]) == PRICE["WIDGET-1"]
    assert status["currency"] == "USD"
    assert [step["name"] for step in status["steps"]] == [
        "read return",
        "validate",
        "approval",
        "create ERP credit",
        "restock",
        "refund",
        "confirm to store",
        "refunded",
    ]
    credits = await returns.credits(order)
    assert len(credits) == 1
    assert returns.credit_lines(order.erp, credits[0]) == {"WIDGET-1": 1}
    assert await returns.refunds(order.erp, reference) == [("PAYMENT", PRICE["WIDGET-1"], "USD")]
    assert await returns.on_hand(order.erp, "WIDGET-1") == stock_before + 1
    assert await returns.store_return_status(order.store, first) == STORE_REFUNDED[order.store]

    # The same request delivered again starts nothing: still one credit, one refund.
    await returns.redeliver_last_event()
    again = await returns.wait_return(pair, first, "refunded", run_status="COMPLETED")
    assert again["status"]["steps"] == status["steps"]
    assert len(await returns.credits(order)) == 1
    assert len(await returns.refunds(order.erp, reference)) == 1

    # The rest of the order: two WIDGET-1 (the earlier return counted) and the WIDGET-2.
    second = await returns.request_return(
        order.store,
        order.order_id,
        [{"sku": "WIDGET-1", "quantity": 2}, {"sku": "WIDGET-2", "quantity": 1}],
    )
    rest = await returns.wait_return(pair, second, "refunded", run_status="COMPLETED")
    expected = 2 * PRICE["WIDGET-1"] + PRICE["WIDGET-2"]
    assert Decimal(rest["status"]["refund_amount"]) == expected
    credits = await returns.credits(order)
    assert len(credits) == 2
    assert sorted(
        returns.credit_lines(order.erp, c) == {"WIDGET-1": 2, "WIDGET-2": 1} for c in credits
    ) == [False, True]
    assert await returns.refunds(order.erp, rest["status"]["reference"]) == [
        ("PAYMENT", expected, "USD")
    ]
    assert await returns.on_hand(order.erp, "WIDGET-1") == stock_before + 3

    # Nothing is left to return: a third request is rejected to the store, no ERP write.
    third = await returns.request_return(
        order.store, order.order_id, [{"sku": "WIDGET-1", "quantity": 1}]
    )
    refused = await returns.wait_return(pair, third, "rejected", run_status="COMPLETED")
    assert "1 asked, 3 shipped, 3 already returned" in refused["status"]["error"]
    assert await returns.store_return_status(order.store, third) == STORE_REJECTED[order.store]
    assert len(await returns.credits(order)) == 2
    assert await returns.refunds(order.erp, refused["status"]["reference"]) == []
