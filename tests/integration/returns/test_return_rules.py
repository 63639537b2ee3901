"""Returns that cannot be accepted are rejected back to the store with the reason, and
nothing is written to the ERP: more than shipped, outside the return window, a refund
over what was paid. Both pairs, through real webhooks."""

from __future__ import annotations

import pytest

from tests.integration.orders.order_stack import PAIRS
from tests.integration.orders.sandbox_views import erp_writes
from tests.integration.returns.return_stack import ReturnStack

STORE_REJECTED = {"kentico": "rejected", "xcart": "declined"}


async def clear_requests(rs: ReturnStack, erp: str) -> None:
    (await rs.stack.sandbox.delete(f"/{erp}/_sandbox/requests")).raise_for_status()


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_more_than_shipped_or_paid_is_rejected_without_erp_writes(
    returns: ReturnStack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    # Not shipped yet: nothing may be returned.
    order_id = await returns.stack.place_order(store, lines=[{"sku": "WIDGET-1", "quantity": 2}])
    await returns.stack.wait_state(pair, order_id, "awaiting_shipment")
    await clear_requests(returns, erp)
    rma = await returns.request_return(store, order_id, [{"sku": "WIDGET-1", "quantity": 1}])
    done = await returns.wait_return(pair, rma, "rejected", run_status="COMPLETED")
    assert "lines[WIDGET-1].quantity: 1 asked, 0 shipped" in done["status"]["error"]
    assert done["status"]["steps"][-1]["name"] == "rejected"
    assert await returns.store_return_status(store, rma) == STORE_REJECTED[store]
    assert await erp_writes(returns.stack, erp) == []

    if store != "kentico":
        return  # the X-Cart sandbox's shopper takes no discount: paid is always the total
    # A discounted order: the goods are worth more than was paid.
    order = await returns.shipped_order(
        pair, [{"sku": "WIDGET-2", "quantity": 2}], discount_total="10.00"
    )
    await clear_requests(returns, erp)
    rma = await returns.request_return(store, order.order_id, [{"sku": "WIDGET-2", "quantity": 2}])
    done = await returns.wait_return(pair, rma, "rejected", run_status="COMPLETED")
    assert "refund: 29.98 USD is more than the 19.98 USD paid" in done["status"]["error"]
    assert await returns.store_return_status(store, rma) == STORE_REJECTED[store]
    assert await erp_writes(returns.stack, erp) == []


@pytest.mark.parametrize("returns", [{"window_days": 0}], indirect=True)
@pytest.mark.parametrize("pair", list(PAIRS))
async def test_outside_the_return_window_is_rejected(returns: ReturnStack, pair: str) -> None:
    order = await returns.shipped_order(pair, [{"sku": "WIDGET-3", "quantity": 1}])
    await clear_requests(returns, order.erp)
    rma = await returns.request_return(
        order.store, order.order_id, [{"sku": "WIDGET-3", "quantity": 1}]
    )
    done = await returns.wait_return(pair, rma, "rejected", run_status="COMPLETED")
    assert "window: the 0-day return window closed" in done["status"]["error"]
    assert await returns.store_return_status(order.store, rma) == STORE_REJECTED[order.store]
    assert await erp_writes(returns.stack, order.erp) == []
