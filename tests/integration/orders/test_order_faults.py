"""A batch of orders through flaky systems: one API call in five, on the store and on
the ERP, answers 503 or 429, and the first read, the creates and the first status write
time out (the system still does the work a moment later, the answer is lost). Every
order still reaches the ERP exactly once: one sales order per store order number with
its lines once, one customer, one payment, and the store hears the ERP number. Both pairs.

Retries come from Temporal (STEP_RETRY: 1 s, doubling; 429/503 retry after their
Retry-After); duplicates are prevented by the idempotent activities.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from commerce_sync.activities.errors import to_application_error
from commerce_sync.config.settings import Settings
from commerce_sync.domain.models import Address, Customer
from commerce_sync.systems.acumatica.client import AcumaticaClient
from commerce_sync.systems.brightpearl.client import BrightpearlClient
from commerce_sync.systems.errors import ConnectorError, TransientError
from commerce_sync.systems.kentico.client import KenticoClient
from commerce_sync.systems.read_retries import MAX_READ_WAIT_S
from commerce_sync.systems.xcart.client import XCartClient
from tests.integration.orders.order_stack import PAIRS, Stack, eventually
from tests.integration.orders.sandbox_views import (
    dead_letters,
    erp_customer_active,
    erp_customers,
    erp_order_cancelled,
    erp_order_lines,
    erp_payments,
    erp_sales_orders,
    inject,
    payment_reversed,
    receipts,
    store_order,
    store_status,
    store_status_id,
)

BATCH = 5
LINES = [{"sku": "WIDGET-1", "quantity": 2}, {"sku": "WIDGET-3", "quantity": 1}]
SEED = 21
# A timed-out call is served this long after its client gave up: well before the
# activity's retry (STEP_RETRY waits at least 1 s), as a slow system would.
LATE_BY_S = 0.25

# Calls that time out once each (delayed past the connector's timeout, then served): the
# ERP's creates, where a lost answer is the classic duplicate, and each system's first
# read and the store's first status write.
TIMEOUTS = {
    "brightpearl": [
        "GET *",
        "POST */contact-service/contact",
        "POST */order-service/sales-order",
        "POST */accounting-service/customer-payment",
    ],
    "acumatica": ["GET *", "PUT */Customer", "PUT */SalesOrder", "PUT */Payment"],
    "kentico": ["GET *", "PUT /rest/ecommerce.order/*"],
    "xcart": ["GET *", "PUT /admin.php"],
}


def flaky(system: str, timeout_s: float) -> list[dict[str, Any]]:
    """Fault rules for every API call of `system`, tried in order.

    503 and 429 (Retry-After: 1 s) each hit 10 % of the calls, 19 % together, for the whole
    test. Timeouts are not drawn at random but placed (`TIMEOUTS`, once each): a
    timeout's retry waits STEP_RETRY's doubling backoff, which for an activity that
    already failed a few throttled attempts has grown to a minute, so random timeouts
    would make the test's length a lottery; 503/429 retry after their Retry-After.
    """
    late = {"delay_s": timeout_s + LATE_BY_S, "count": 1}
    return [
        *({"match": match, **late} for match in TIMEOUTS[system]),
        {"match": "*", "status": 503, "rate": 0.1, "retry_after_s": 1},
        {"match": "*", "status": 429, "rate": 0.1, "retry_after_s": 1},
    ]


async def hits_by_kind(stack: Stack, system: str) -> dict[str, int]:
    response = await stack.sandbox.get(f"/{system}/_sandbox/faults")
    response.raise_for_status()
    kinds: dict[str, int] = {}
    for rule in response.json()["faults"]:
        kind = str(rule["status"]) if rule["status"] is not None else f"timeout of {rule['match']}"
        kinds[kind] = kinds.get(kind, 0) + int(rule["hits"])
    return kinds


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_batch_gets_through_transient_faults_exactly_once(stack: Stack, pair: str) -> None:
    store, erp = PAIRS[pair]
    for system in (store, erp):
        await inject(stack, system, *flaky(system, stack.settings.http_timeout_s), seed=SEED)
    emails = [f"flaky-{n}-{uuid.uuid4().hex[:8]}@example.com" for n in range(BATCH)]
    order_ids = [
        await stack.place_order(
            store,
            customer={"email": email, "first_name": "Fay", "last_name": "Lakey"},
            lines=LINES,
        )
        for email in emails
    ]
    try:
        statuses = [
            (await stack.wait_state(pair, order_id, "awaiting_shipment", timeout_s=90))["status"]
            for order_id in order_ids
        ]
        for system in (store, erp):
            kinds = await hits_by_kind(stack, system)
            assert all(kinds.values()), f"{system}: a fault never happened: {kinds}"

        processing = store_status_id(stack, pair, "processing")
        for order_id, email, status in zip(order_ids, emails, statuses, strict=True):
            number = status["store_order_number"]
            assert status["compensations"] == [] and status["error"] == ""
            orders = await erp_sales_orders(stack, erp, number)
            assert len(orders) == 1, f"order {number}: {len(orders)} ERP sales orders"
            order = orders[0]
            assert not erp_order_cancelled(erp, order)
            assert erp_order_lines(erp, order) == [
                ("WIDGET-1", Decimal(2)),
                ("WIDGET-3", Decimal(1)),
            ], f"order {number}"
            customers = await erp_customers(stack, erp, email)
            assert len(customers) == 1 and erp_customer_active(erp, customers[0]), customers
            payments = await erp_payments(stack, erp, order)
            assert len(payments) == 1, f"order {number}: payments {payments}"
            assert receipts(erp, payments) == payments
            assert not payment_reversed(erp, payments[0], payments)
            record = await store_order(stack, store, order_id)
            assert store_status(store, record) == processing
            assert dead_letters(stack, f"order:{pair}:{order_id}") == []
    finally:
        # The runs would wait for their shipments for ever on a task queue nobody polls.
        for order_id in order_ids:
            handle = stack.client.get_workflow_handle(f"order:{pair}:{order_id}")
            try:
                if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await handle.terminate(reason="test over")
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise


# ---- the retry decision behind the fast retries above --------------------------------


def _client(system: str, settings: Settings) -> Any:
    timeout = settings.http_timeout_s
    if system == "kentico":
        return KenticoClient(settings.kentico, timeout_s=timeout)
    if system == "xcart":
        return XCartClient(settings.xcart, timeout_s=timeout)
    if system == "brightpearl":
        return BrightpearlClient(settings.brightpearl, timeout_s=timeout)
    return AcumaticaClient(settings.acumatica, timeout_s=timeout)


async def _read_widget(system: str, client: Any) -> object:
    if system == "brightpearl":
        return (await client.find_products_by_sku(["WIDGET-1"]))["WIDGET-1"]
    if system == "acumatica":
        return [item.sku for item in await client.get_stock_items(["WIDGET-1"])] == ["WIDGET-1"]
    return await client.get_product_by_sku("WIDGET-1")


@pytest.mark.parametrize("status", [503, 429])
@pytest.mark.parametrize("system", ["kentico", "xcart", "brightpearl", "acumatica"])
async def test_retry_after_becomes_the_next_retry_delay(
    settings: Settings, sandboxes: httpx.AsyncClient, system: str, status: int
) -> None:
    """docs/design.md §4: 429/503 with Retry-After -> `ApplicationError(next_retry_delay=...)`,
    retryable, in every connector (each system says it in its own way: Brightpearl in
    `brightpearl-next-throttle-period`, the others in `Retry-After`). A wait longer than
    the connector spends on a read itself (`read_retries.MAX_READ_WAIT_S`) is the one
    that reaches Temporal."""
    wait_s = int(MAX_READ_WAIT_S) + 3
    rule = {"match": "GET *", "status": status, "retry_after_s": wait_s, "count": 1}
    (await sandboxes.post(f"/{system}/_sandbox/faults", json=rule)).raise_for_status()
    client = _client(system, settings)
    try:
        with pytest.raises(ConnectorError) as raised:
            await _read_widget(system, client)
        error = to_application_error(raised.value)
        assert (error.non_retryable, error.next_retry_delay) == (False, timedelta(seconds=wait_s))
        assert await _read_widget(system, client)  # the fault hit once; the system is back
    finally:
        await client.aclose()


@pytest.mark.parametrize("erp", ["brightpearl", "acumatica"])
async def test_a_call_that_times_out_is_still_served(
    settings: Settings, sandboxes: httpx.AsyncClient, erp: str
) -> None:
    """What makes the batch above a duplicate test: the connector gives up on a create
    (a retryable timeout), and the ERP creates the customer all the same."""
    email = f"late-{uuid.uuid4().hex[:8]}@example.com"
    create = "POST */contact-service/contact" if erp == "brightpearl" else "PUT */Customer"
    rule = {"match": create, "delay_s": settings.http_timeout_s + LATE_BY_S, "count": 1}
    (await sandboxes.post(f"/{erp}/_sandbox/faults", json=rule)).raise_for_status()
    customer = Customer(
        email=email,
        first_name="Lena",
        last_name="Late",
        billing_address=Address(
            line1="1 Main St", city="Austin", postal_code="78701", country="US"
        ),
    )
    client = _client(erp, settings)
    try:
        with pytest.raises(TransientError, match="timed out"):
            await (
                client.create_contact(customer)
                if erp == "brightpearl"
                else client.create_customer(customer)
            )
    finally:
        await client.aclose()

    async def created() -> list[dict[str, Any]]:
        state = (await sandboxes.get(f"/{erp}/_sandbox/state")).json()
        if erp == "brightpearl":
            records = state["contacts"].values()
            return [c for c in records if c["communication"]["emails"]["PRI"]["email"] == email]
        records = state["entities"]["Customer"]
        return [c for c in records if c["MainContact"]["Email"] == email]

    assert len(await eventually(created, 10.0, f"{erp} serving the timed-out create")) == 1


async def test_a_call_held_across_a_sandbox_reset_is_dropped(
    sandboxes: httpx.AsyncClient,
) -> None:
    """A call an earlier test's delay fault still holds must not land in the next test's
    fresh system (nor be counted in its request log): the reset between tests drops it."""
    create = "POST */contact-service/contact"
    rule = {"match": create, "delay_s": 1.0, "count": 1}
    (await sandboxes.post("/brightpearl/_sandbox/faults", json=rule)).raise_for_status()
    held = asyncio.create_task(
        sandboxes.post("/brightpearl/public-api/sandbox/contact-service/contact", json={})
    )

    async def holding() -> bool:
        faults = (await sandboxes.get("/brightpearl/_sandbox/faults")).json()["faults"]
        return bool(faults and faults[0]["hits"] == 1)

    await eventually(holding, 5.0, "the create to be held")
    (await sandboxes.post("/brightpearl/_sandbox/reset")).raise_for_status()
    answer = await held
    assert answer.status_code == 503, answer.text
    assert "reset while this was held" in answer.text
    logged = (await sandboxes.get("/brightpearl/_sandbox/requests")).json()["requests"]
    assert logged == []
