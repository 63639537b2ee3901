"""A sales order create whose answer is lost and that lands after its retry has created
the order again (the ERP does the work, the connector times out, the retry's lookup runs
before the first request lands): the run keeps the order it recorded and cancels the
twin before anything ships, so one store order is one live ERP order.

Acumatica is where this happens: sales orders are auto-numbered and nothing is unique
on `CustomerOrder`. Brightpearl refuses the late create itself (its `externalRef` is
unique per integration instance), and its run finds no twin to cancel.
"""

from __future__ import annotations

import uuid

import pytest

from commerce_sync.systems.acumatica.mapping import order_ref
from tests.integration.orders.order_stack import PAIRS, Stack, eventually
from tests.integration.orders.sandbox_views import (
    alerts,
    erp_order_cancelled,
    erp_sales_orders,
    inject,
)

# The first create is held past the connector's timeout and past the retry's lookup
# (the retry comes 1 s after the timeout), then carried out.
LANDS_AFTER_RETRY_S = 3.0
CREATE = {"brightpearl": "POST */order-service/sales-order", "acumatica": "PUT */SalesOrder"}


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_create_landing_after_its_retry_leaves_one_live_erp_order(
    stack: Stack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    held = stack.settings.http_timeout_s + LANDS_AFTER_RETRY_S
    await inject(stack, erp, {"match": CREATE[erp], "delay_s": held, "count": 1})
    order_id = await stack.place_order(
        store, customer={"email": f"late-{uuid.uuid4().hex[:8]}@example.com"}
    )
    status = (await stack.wait_state(pair, order_id, "awaiting_shipment"))["status"]
    number = status["store_order_number"]

    async def landed() -> list[dict[str, object]] | None:
        orders = await erp_sales_orders(stack, erp, number)
        # Acumatica: the late request makes a second order; Brightpearl refuses it.
        expected = 2 if erp == "acumatica" else 1
        return orders if len(orders) == expected else None

    await eventually(landed, held + 10.0, f"the late create of {number} to land")
    await stack.ship(erp, status["erp_order_number"], f"1Z{uuid.uuid4().hex[:12].upper()}")
    shipped = (await stack.wait_state(pair, order_id, "shipped"))["status"]

    orders = await erp_sales_orders(stack, erp, number)
    live = [order for order in orders if not erp_order_cancelled(erp, order)]
    assert len(live) == 1, f"{len(live)} live ERP orders for store order {number}"
    if erp == "acumatica":
        assert (
            order_ref(str(live[0]["OrderType"]), str(live[0]["OrderNbr"]))
            == (status["erp_order_id"])
        )
        twin = next(order for order in orders if erp_order_cancelled(erp, order))
        steps = {step["name"]: step["detail"] for step in shipped["steps"]}
        assert steps["cancel duplicate ERP orders"] == order_ref("SO", str(twin["OrderNbr"]))
        workflow_id = f"order:{pair}:{order_id}"
        assert [a.kind for a in alerts(stack, workflow_id)] == ["duplicate_erp_order"]
    else:
        assert "cancel duplicate ERP orders" not in {step["name"] for step in shipped["steps"]}
