"""Orders that cannot be synced, and orders the shopper cancels: both pairs, through real
webhooks, against the real Temporal dev server and the sandboxes.

- an unknown SKU is dead-lettered before anything reaches the ERP;
- a permanent failure after the ERP order exists unwinds every step in reverse,
  dead-letters and alerts, and fails the run;
- a cancellation in the store before shipment unwinds what the run did, and one that
  arrives before the run synced anything leaves the ERP untouched.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

import pytest

from tests.integration.orders.order_stack import PAIRS, Stack, eventually, point_webhooks
from tests.integration.orders.sandbox_views import (
    add_store_only_product,
    alerts,
    clear_faults,
    dead_letters,
    erp_customer_active,
    erp_customers,
    erp_order_cancelled,
    erp_payments,
    erp_sales_orders,
    erp_writes,
    fault_hits,
    inject,
    payment_reversed,
    receipts,
    relayed_event,
    store_order,
    store_status,
    store_status_id,
)

CUSTOMER = {"first_name": "Jane", "last_name": "Doe", "phone": "+1 512 555 0100"}


def shopper(tag: str) -> dict[str, str]:
    return {**CUSTOMER, "email": f"{tag}-{uuid.uuid4().hex[:8]}@example.com"}


def workflow_id(pair: str, order_id: str) -> str:
    return f"order:{pair}:{order_id}"


async def assert_customer_gone_or_inactive(stack: Stack, erp: str, email: str) -> None:
    """The customer this run created was removed, or (where the ERP keeps it because
    documents refer to it) deactivated."""
    for customer in await erp_customers(stack, erp, email):
        assert not erp_customer_active(erp, customer), customer


# ---- 1. unknown SKU --------------------------------------------------------------------


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_unknown_sku_is_dead_lettered_and_nothing_reaches_the_erp(
    stack: Stack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    sku = f"STORE-ONLY-{uuid.uuid4().hex[:6].upper()}"
    await add_store_only_product(stack, store, sku, "12.50")
    customer = shopper("ghost")
    order_id = await stack.place_order(
        store,
        customer=customer,
        lines=[{"sku": "WIDGET-1", "quantity": 1}, {"sku": sku, "quantity": 2}],
    )

    done = await stack.wait_state(pair, order_id, "dead_lettered", run_status="FAILED")
    status = done["status"]
    assert f"lines[1].sku: {sku} is not known to the ERP" in status["error"]
    assert "WIDGET-1" not in status["error"]
    assert [s["name"] for s in status["steps"]] == ["read order", "cleanse", "validate"]
    assert status["steps"][-1]["outcome"] == "failed"
    assert (status["erp_customer_id"], status["erp_order_id"], status["compensations"]) == (
        "",
        "",
        [],
    )

    letters = dead_letters(stack, workflow_id(pair, order_id))
    assert len(letters) == 1
    letter = letters[0]
    assert (letter.pair, letter.process, letter.reason, letter.status) == (
        pair,
        "order",
        "invalid_order",
        "open",
    )
    assert sku in letter.error and "is not known to the ERP" in letter.error
    assert letter.payload["store_order_id"] == order_id
    assert letter.payload["skus"] == ["WIDGET-1", sku]
    assert [alert.kind for alert in alerts(stack, workflow_id(pair, order_id))] == ["order_failed"]

    # Nothing in the ERP: no sales order, no customer, not one write call.
    assert await erp_sales_orders(stack, erp, status["store_order_number"]) == []
    assert await erp_customers(stack, erp, customer["email"]) == []
    assert await erp_writes(stack, erp) == []
    # ... and the store's order is left as the shopper placed it.
    record = await store_order(stack, store, order_id)
    assert store_status(store, record) == store_status_id(stack, pair, "pending")


# ---- 2. permanent failure after the ERP order exists -----------------------------------

# A non-retryable refusal (400) of one step, per system. The store rule hits once: the
# compensation that restores the store status must get through.
PAYMENT_REFUSED = {
    "brightpearl": {"match": "POST */accounting-service/customer-payment", "status": 400},
    "acumatica": {"match": "PUT */Payment", "status": 400},
}
STORE_STATUS_REFUSED = {
    "kentico": {"match": "PUT /rest/ecommerce.order/*", "status": 400, "count": 1},
    "xcart": {"match": "PUT /admin.php", "status": 400, "count": 1},
}
REFUSAL = "the processor refused the payment: card declined"


@pytest.mark.parametrize("pair", list(PAIRS))
@pytest.mark.parametrize("failing_step", ["record payment", "confirm to store"])
async def test_permanent_failure_unwinds_in_reverse_and_fails_the_run(
    stack: Stack, pair: str, failing_step: str
) -> None:
    store, erp = PAIRS[pair]
    if failing_step == "record payment":
        await inject(stack, erp, {**PAYMENT_REFUSED[erp], "message": REFUSAL})
        undone = ["cancel the ERP sales order", "delete the customer this run created"]
    else:
        await inject(stack, store, {**STORE_STATUS_REFUSED[store], "message": REFUSAL})
        undone = [
            "restore the store status",
            "reverse the payment",
            "cancel the ERP sales order",
            "delete the customer this run created",
        ]
    customer = shopper("declined")
    order_id = await stack.place_order(store, customer=customer)

    done = await stack.wait_state(pair, order_id, "failed", run_status="FAILED")
    status = done["status"]
    steps = [s["name"] for s in status["steps"]]
    assert steps[-1] == (
        "create ERP order" if failing_step == "record payment" else "record payment"
    )
    assert "HTTP 400" in status["error"] and "card declined" in status["error"]
    assert status["erp_order_id"] and status["erp_customer_id"]
    ensured = next(s for s in status["steps"] if s["name"] == "ensure customer")
    assert ensured["detail"] == f"created {status['erp_customer_id']}"
    assert [(c["name"], c["outcome"]) for c in status["compensations"]] == [
        (name, "ok") for name in undone
    ]

    # The ERP order exists once and is cancelled; the customer is gone or inactive.
    orders = await erp_sales_orders(stack, erp, status["store_order_number"])
    assert len(orders) == 1
    assert erp_order_cancelled(erp, orders[0]), orders[0]
    await assert_customer_gone_or_inactive(stack, erp, customer["email"])
    payments = await erp_payments(stack, erp, orders[0])
    taken = receipts(erp, payments)
    if failing_step == "record payment":
        assert taken == []
    else:
        assert len(taken) == 1 and payment_reversed(erp, taken[0], payments), payments

    # The store shows the order as it was before the sync touched it.
    record = await store_order(stack, store, order_id)
    assert store_status(store, record) == store_status_id(stack, pair, "pending")

    letters = dead_letters(stack, workflow_id(pair, order_id))
    assert len(letters) == 1
    assert letters[0].reason == "ValidationFailed" and "card declined" in letters[0].error
    assert letters[0].payload["store_order_number"] == status["store_order_number"]
    kinds = [alert.kind for alert in alerts(stack, workflow_id(pair, order_id))]
    assert kinds == ["order_failed"]


# ---- 3. the shopper cancels ------------------------------------------------------------


async def cancel_in_store(stack: Stack, store: str, order_id: str) -> str:
    response = await stack.sandbox.post(f"/{store}/_sandbox/orders/{order_id}/cancel")
    assert response.status_code == 200, response.text
    return str(response.json()["event_id"])


async def store_event(stack: Stack, store: str, event_id: str) -> dict[str, Any]:
    response = await stack.sandbox.get(f"/{store}/_sandbox/events")
    response.raise_for_status()
    return next(e for e in response.json()["events"] if e["id"] == event_id)


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_cancellation_while_waiting_for_shipment_unwinds_the_sync(
    stack: Stack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    customer = shopper("changed-mind")
    order_id = await stack.place_order(store, customer=customer)
    waiting = (await stack.wait_state(pair, order_id, "awaiting_shipment"))["status"]
    orders = await erp_sales_orders(stack, erp, waiting["store_order_number"])
    assert len(orders) == 1 and not erp_order_cancelled(erp, orders[0])

    await cancel_in_store(stack, store, order_id)

    done = await stack.wait_state(pair, order_id, "cancelled", run_status="COMPLETED")
    status = done["status"]
    assert [(c["name"], c["outcome"]) for c in status["compensations"]] == [
        ("reverse the payment", "ok"),
        ("cancel the ERP sales order", "ok"),
        ("delete the customer this run created", "ok"),
    ]
    orders = await erp_sales_orders(stack, erp, waiting["store_order_number"])
    assert len(orders) == 1 and erp_order_cancelled(erp, orders[0]), orders
    payments = await erp_payments(stack, erp, orders[0])
    taken = receipts(erp, payments)
    assert len(taken) == 1 and payment_reversed(erp, taken[0], payments), payments
    await assert_customer_gone_or_inactive(stack, erp, customer["email"])
    # The store's own cancellation stands: the run does not write its old status back.
    record = await store_order(stack, store, order_id)
    assert store_status(store, record) == store_status_id(stack, pair, "cancelled")
    assert dead_letters(stack, workflow_id(pair, order_id)) == []


# Where the run is held (that system's API answers 503 to every read) when the shopper
# cancels, and how the run ends: reading the order, it then reads a cancelled order;
# validating, it read the order still pending and then sees the `cancel` signal.
HELD_AT = {
    "reading the order": ("store", "cancelled in the store before it was synced"),
    "validating": ("erp", "cancelled before sync"),
}


@pytest.mark.parametrize("pair", list(PAIRS))
@pytest.mark.parametrize("held_at", list(HELD_AT))
async def test_cancellation_before_the_sync_leaves_the_erp_alone(
    stack: Stack, pair: str, held_at: str
) -> None:
    """A system is down while the run reads or validates the order; the shopper cancels;
    the system comes back. The run must stop before it syncs anything."""
    store, erp = PAIRS[pair]
    side, detail = HELD_AT[held_at]
    down = store if side == "store" else erp
    await inject(stack, down, {"match": "GET *", "status": 503, "retry_after_s": 1})
    customer = shopper("quick-cancel")
    order_id = await stack.place_order(store, customer=customer)
    if side == "store":
        await eventually(lambda: fault_hits(stack, down), what=f"{store} refusing the read")
    else:  # the order is read; the SKU check against the ERP is what waits
        await eventually(lambda: _has_read_the_order(stack, pair, order_id), what="order read")

    event_id = await cancel_in_store(stack, store, order_id)
    delivered = await eventually(
        lambda: _delivered(stack, store, event_id), what="order.cancelled delivered"
    )
    assert delivered["last_status"] == 202
    await clear_faults(stack, down)

    done = await stack.wait_state(pair, order_id, "cancelled", run_status="COMPLETED")
    status = done["status"]
    assert (status["steps"][-1]["name"], status["steps"][-1]["detail"]) == ("cancelled", detail)
    assert "ensure customer" not in [s["name"] for s in status["steps"]]
    assert status["compensations"] == []
    assert await erp_sales_orders(stack, erp, status["store_order_number"]) == []
    assert await erp_customers(stack, erp, customer["email"]) == []
    assert await erp_writes(stack, erp) == []
    assert dead_letters(stack, workflow_id(pair, order_id)) == []


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_cancellation_delivered_before_the_order_leaves_the_erp_alone(
    stack: Stack, pair: str
) -> None:
    """Webhooks arrive out of order: `order.cancelled` first (it signal-starts the run,
    which ends at once), then the late `order.created`, which must not start a sync."""
    store, erp = PAIRS[pair]
    hooks = stack.settings.webhooks
    secret = hooks.kentico if store == "kentico" else hooks.xcart
    assert secret is not None
    # Hold the store's deliveries: the receiver refuses an unknown path with a 404.
    held = {"url": f"{stack.api}/held", "secret": secret.get_secret_value(), "max_attempts": 1}
    (await stack.sandbox.post(f"/{store}/_sandbox/webhooks", json=held)).raise_for_status()
    response = await stack.sandbox.post(
        f"/{store}/_sandbox/orders",
        json={
            "customer": shopper("out-of-order"),
            "shipping_address": {
                "line1": "1 Main St",
                "city": "Austin",
                "region": "TX",
                "postal_code": "78701",
                "country": "US",
            },
            "lines": [{"sku": "WIDGET-1", "quantity": 1}],
            "currency": "USD",
            "shipping_method": "ground",
            "payment": {"method": "card", "reference": f"ch_{uuid.uuid4().hex[:12]}"},
        },
    )
    assert response.status_code == 200, response.text
    order_id, created_event = str(response.json()["id"]), str(response.json()["event_id"])
    cancelled_event = await cancel_in_store(stack, store, order_id)
    for event_id in (created_event, cancelled_event):
        held_event = await eventually(partial(_attempted, stack, store, event_id))
        assert held_event["last_status"] == 404 and not held_event["delivered"]

    await point_webhooks(stack.sandbox, stack.settings, stack.api)
    handle = stack.client.get_workflow_handle(workflow_id(pair, order_id))
    run_ids = []
    for event_id in (cancelled_event, created_event):
        redelivered = await stack.sandbox.post(f"/{store}/_sandbox/events/{event_id}/redeliver")
        assert redelivered.status_code == 200, redelivered.text
        assert redelivered.json()["last_status"] == 202
        # Accepted is recorded: a relay starts (or signals) the run a moment later.
        await eventually(
            partial(relayed_event, stack, store, event_id), what=f"{event_id} started by a relay"
        )
        run_ids.append((await handle.describe()).run_id)

    done = await stack.wait_state(pair, order_id, "cancelled", run_status="COMPLETED")
    status = done["status"]
    assert [s["name"] for s in status["steps"]] == ["cancelled"]
    # One run only: the late order.created found the cancelled run and started nothing.
    assert run_ids[0] == run_ids[1] == (await handle.describe()).run_id
    requests = (await stack.sandbox.get(f"/{erp}/_sandbox/requests")).json()["requests"]
    assert requests == []
    assert dead_letters(stack, workflow_id(pair, order_id)) == []


async def _has_read_the_order(stack: Stack, pair: str, order_id: str) -> bool:
    status = await stack.order_status(pair, order_id)
    return status is not None and "read order" in [s["name"] for s in status["status"]["steps"]]


async def _delivered(stack: Stack, store: str, event_id: str) -> dict[str, Any] | None:
    event = await store_event(stack, store, event_id)
    return event if event["delivered"] else None


async def _attempted(stack: Stack, store: str, event_id: str) -> dict[str, Any] | None:
    event = await store_event(stack, store, event_id)
    return event if event["attempts"] >= 1 and event["last_status"] is not None else None
