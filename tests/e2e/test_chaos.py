"""Chaos, both pairs at once, with the API and the worker as their own processes:

- every create an order makes in its ERP (Brightpearl's postal address among them), and
  then every create its return makes, loses its answer once (held past the connector's
  timeout, then carried out, after the retry has made the record again);
- one in ten of every call to each of the four systems is answered 503, one in ten 429;
- the worker is killed with SIGKILL while an order's create is held, and again while a
  return's is, and a new one takes over.

Each store order still ends as one active ERP customer, one live ERP order and one
payment, and its return as one live credit, its goods received once and its money paid
back once; nothing is left behind: no second active customer, live order, credit or
refund, no goods-in note or receipt but the return's, no postal address no contact uses.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from tests.e2e.durability_stack import (
    OPERATOR_KEY,
    PAIRS,
    PlacedOrder,
    Services,
    StackConfig,
    eventually,
    place_order,
    point_webhooks,
    ship,
    state_of,
)
from tests.integration.orders.order_stack import pairs_file_with

Json = dict[str, Any]

HTTP_TIMEOUT_S = 5.0
HELD_S = HTTP_TIMEOUT_S + 3.0  # past the timeout and the retry's lookup, then carried out
CHECK_AFTER_S = 20  # the runs look for twins this long after their creates
ORDER_CREATES = {
    "brightpearl": [
        "POST */contact-service/postal-address",
        "POST */contact-service/contact",
        "POST */order-service/sales-order",
        "POST */accounting-service/customer-payment",
    ],
    "acumatica": ["PUT */Customer", "PUT */SalesOrder", "PUT */Payment"],
}
RETURN_CREATES = {
    "brightpearl": [
        "POST */order-service/sales-credit",
        "POST */warehouse-service/order/*/goods-note/goods-in",
        "POST */accounting-service/customer-payment",
    ],
    "acumatica": ["PUT */SalesOrder", "POST */SalesOrder/SalesOrderCreateReceipt", "PUT */Payment"],
}
# The worker dies while this create of the Brightpearl pair is held.
KILL_DURING = {
    "order": "POST */order-service/sales-order",
    "return": "POST */order-service/sales-credit",
}
RETURNED = [{"sku": "WIDGET-1", "quantity": 1}]


FLAKY = [
    {"match": "*", "status": 503, "rate": 0.1},
    {"match": "*", "status": 429, "rate": 0.1, "retry_after_s": 1},
]


async def set_faults(sandbox: httpx.AsyncClient, creates: dict[str, list[str]], seed: int) -> None:
    """Every system flaky (one call in ten 503, one in ten 429); in the ERPs each of
    `creates` first held once (rules apply in order: a held call is then served)."""
    for offset, system in enumerate(("kentico", "xcart", "brightpearl", "acumatica")):
        held = [
            {"match": match, "delay_s": HELD_S, "count": 1} for match in creates.get(system, [])
        ]
        (await sandbox.delete(f"/{system}/_sandbox/faults")).raise_for_status()
        response = await sandbox.post(
            f"/{system}/_sandbox/faults", json={"rules": held + FLAKY, "seed": seed + offset}
        )
        response.raise_for_status()


async def all_served(sandbox: httpx.AsyncClient, creates: dict[str, list[str]]) -> None:
    """Until every held create has been carried out: each rule was hit (the request
    arrived), and its hold has passed since it was first seen hit."""
    first_seen: dict[tuple[str, str], float] = {}

    async def every_rule_hit() -> bool:
        for erp, matches in creates.items():
            for match in matches:
                if (erp, match) not in first_seen and await held_once(sandbox, erp, match):
                    first_seen[(erp, match)] = time.monotonic()
        return len(first_seen) == sum(len(matches) for matches in creates.values())

    await eventually(every_rule_hit, 180.0, "every held create to arrive")
    await asyncio.sleep(max(first_seen.values()) + HELD_S + 1.0 - time.monotonic())


async def held_once(sandbox: httpx.AsyncClient, erp: str, match: str) -> bool:
    faults = (await sandbox.get(f"/{erp}/_sandbox/faults")).json()["faults"]
    return any(rule["match"] == match and rule["hits"] >= 1 for rule in faults)


def kill_and_replace(stack: Services, worker: Any, name: str) -> Any:
    assert worker.kill() == -signal.SIGKILL
    return stack.worker(name)


# ---- what the ERPs hold ----------------------------------------------------------------


def customers(state: Json, erp: str, email: str) -> list[Json]:
    if erp == "brightpearl":
        return [
            c
            for c in state["contacts"].values()
            if ((c.get("communication") or {}).get("emails") or {}).get("PRI", {}).get("email")
            == email
        ]
    return [
        c
        for c in state["entities"].get("Customer", [])
        if (c.get("MainContact") or {}).get("Email") == email
    ]


def active(erp: str, customer: Json) -> bool:
    if erp == "brightpearl":
        return bool(customer["contactStatus"]["current"]["contactStatusId"] != 2)
    return bool(customer.get("Status") == "Active")


def orders(state: Json, erp: str, reference: str, *, credit: bool = False) -> list[Json]:
    """Sales orders carrying the store order number, or credits carrying a return's."""
    if erp == "brightpearl":
        kind, key = ("SC", "externalRef") if credit else ("SO", "reference")
        return [
            o
            for o in state["orders"].values()
            if o.get(key) == reference and o.get("orderTypeCode") == kind
        ]
    kind = "RC" if credit else "SO"
    return [
        o
        for o in state["entities"].get("SalesOrder", [])
        if o.get("CustomerOrder") == reference and o.get("OrderType") == kind
    ]


def live(erp: str, order: Json) -> bool:
    if erp == "brightpearl":
        return bool(order["orderStatus"]["orderStatusId"] != 5)
    return bool(order.get("Status") != "Canceled")


def live_payments(state: Json, erp: str, reference: str) -> list[Json]:
    """The shopper's payments keyed `reference` that took money and were not reversed."""
    if erp == "brightpearl":
        voided = {
            p["transactionRef"].removesuffix("-void")
            for p in state["payments"].values()
            if p["paymentType"] == "VOID"
        }
        return [
            p
            for p in state["payments"].values()
            if p["transactionRef"] == reference
            and p["paymentType"] == "RECEIPT"
            and reference not in voided
        ]
    return [
        p
        for p in state["entities"].get("Payment", [])
        if p.get("PaymentRef") == reference
        and p.get("Type") == "Payment"
        and p.get("Status") != "Voided"
    ]


def refunded_amount(state: Json, erp: str, reference: str) -> Decimal:
    """Money paid back under the return's reference, reversals netted."""
    total = Decimal(0)
    if erp == "brightpearl":
        for p in state["payments"].values():
            if p["transactionRef"] == reference and p["paymentType"] == "PAYMENT":
                total += Decimal(str(p["amountPaid"]))
            if p["transactionRef"] == f"{reference}-void" and p["paymentType"] == "VOID":
                total -= Decimal(str(p["amountPaid"]))
        return total
    for p in state["entities"].get("Payment", []):
        if p.get("PaymentRef") == reference and p.get("Type") == "Refund":
            if p.get("Status") not in ("Voided", "Balanced", "On Hold"):
                total += Decimal(str(p["PaymentAmount"]))
    return total


def goods_received(state: Json, erp: str, credit: Json) -> list[Json]:
    if erp == "brightpearl":
        return [n for n in state["goods_in_notes"].values() if n["orderId"] == credit["id"]]
    return [
        s
        for s in state["entities"].get("Shipment", [])
        if s.get("Type") == "Receipt"
        and any(
            row.get("OrderType") == credit["OrderType"]
            and row.get("OrderNbr") == credit["OrderNbr"]
            for row in s.get("Orders", [])
        )
    ]


def orphan_addresses(state: Json) -> list[str]:
    """Brightpearl postal addresses no contact refers to."""
    used = {
        str(address_id)
        for contact in state["contacts"].values()
        for address_id in (contact.get("postAddressIds") or {}).values()
    }
    return sorted(set(state["postal_addresses"]) - used)


# ---- the test --------------------------------------------------------------------------


async def order_status(http: httpx.AsyncClient, api: str, path: str) -> Json | None:
    response = await http.get(f"{api}/{path}", headers={"authorization": f"Bearer {OPERATOR_KEY}"})
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    result: Json = response.json()
    return result


async def wait_for(
    http: httpx.AsyncClient, api: str, path: str, state: str, *, completed: bool = False
) -> Json:
    async def check() -> Json | None:
        found = await order_status(http, api, path)
        if not found or found["status"]["state"] != state:
            return None
        if completed and found["run_status"] != "COMPLETED":
            return None
        return found

    return await eventually(check, 300.0, f"{path} {state}")


async def request_return(sandbox: httpx.AsyncClient, order: PlacedOrder) -> str:
    response = await sandbox.post(
        f"/{order.store}/_sandbox/returns",
        json={"order": order.id, "lines": RETURNED, "reason": "does not fit"},
    )
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


async def test_lost_answers_flaky_systems_and_a_killed_worker_leave_one_of_everything(
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    temporal_client: Client,
    http: httpx.AsyncClient,
    tmp_path: Path,
    services: Callable[[StackConfig], Services],
) -> None:
    config = StackConfig(
        sandbox_url,
        f"sqlite:///{tmp_path / 'commerce-sync.db'}",
        temporal_client.service_client.config.target_host,
        tmp_path / "data",
        http_timeout_s=HTTP_TIMEOUT_S,
        pairs_file=pairs_file_with(tmp_path, {"duplicate_check_after": CHECK_AFTER_S}),
    )
    stack = services(config)
    api = stack.api()
    worker = stack.worker()
    await api.wait_ready(http)
    await point_webhooks(sandboxes, config, api.url)
    await set_faults(sandboxes, ORDER_CREATES, seed=13)

    # ---- the orders ----
    placed = [await place_order(sandboxes, pair) for pair in PAIRS]
    await eventually(
        partial(held_once, sandboxes, "brightpearl", KILL_DURING["order"]), 120.0, "order held"
    )
    worker = kill_and_replace(stack, worker, "worker-2")
    waiting = {
        order.pair: (
            await wait_for(http, api.url, f"orders/{order.pair}/{order.id}", "awaiting_shipment")
        )["status"]
        for order in placed
    }

    await all_served(sandboxes, ORDER_CREATES)
    for order in placed:
        await ship(sandboxes, order.erp, waiting[order.pair], f"1ZCHAOS{order.id:0>8}")
    for order in placed:
        await wait_for(http, api.url, f"orders/{order.pair}/{order.id}", "shipped", completed=True)

    # ---- the returns ----
    await set_faults(sandboxes, RETURN_CREATES, seed=31)
    rmas = {order.pair: await request_return(sandboxes, order) for order in placed}
    await eventually(
        partial(held_once, sandboxes, "brightpearl", KILL_DURING["return"]), 120.0, "return held"
    )
    worker = kill_and_replace(stack, worker, "worker-3")
    await all_served(sandboxes, RETURN_CREATES)
    refunded = {
        order.pair: (
            await wait_for(
                http,
                api.url,
                f"returns/{order.pair}/{rmas[order.pair]}",
                "refunded",
                completed=True,
            )
        )["status"]
        for order in placed
    }

    # ---- one of everything ----
    for order in placed:
        erp, status = order.erp, waiting[order.pair]
        state = await state_of(sandboxes, erp)
        email = order_email(state, erp, status)
        assert [c for c in customers(state, erp, email) if active(erp, c)], order
        assert len([c for c in customers(state, erp, email) if active(erp, c)]) == 1, order
        sales = [o for o in orders(state, erp, status["store_order_number"]) if live(erp, o)]
        assert len(sales) == 1, (order, sales)
        assert len(live_payments(state, erp, order.payment_reference)) == 1, order

        reference = refunded[order.pair]["reference"]
        credits = orders(state, erp, reference, credit=True)
        live_credits = [c for c in credits if live(erp, c)]
        assert len(live_credits) == 1, (order, credits)
        assert len(goods_received(state, erp, live_credits[0])) == 1, order
        for twin in credits:
            if twin is not live_credits[0]:
                assert goods_received(state, erp, twin) == [], (order, twin)
        assert refunded_amount(state, erp, reference) == Decimal(
            str(refunded[order.pair]["refund_amount"])
        ), order
        if erp == "brightpearl":
            assert orphan_addresses(state) == []


def order_email(state: Json, erp: str, status: Json) -> str:
    """The shopper's e-mail, read from the ERP customer the run recorded."""
    customer_id = str(status["erp_customer_id"])
    if erp == "brightpearl":
        contact = state["contacts"][customer_id]
        return str(contact["communication"]["emails"]["PRI"]["email"])
    record = next(c for c in state["entities"]["Customer"] if c["CustomerID"] == customer_id)
    return str(record["MainContact"]["Email"])
