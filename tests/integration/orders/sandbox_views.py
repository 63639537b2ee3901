"""What the order tests read back: the sandboxes' state (through `/_sandbox/state` and
`/_sandbox/requests`) and the stack's database, in the terms the tests assert on.

Store and ERP records are looked up by business keys (store order number, e-mail,
payment reference) so a test can say "exactly one sales order for this store order"
whatever ids the systems handed out.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from sqlmodel import Session, col, select

from commerce_sync.config.pairs import load_pairs
from commerce_sync.store.db import make_engine
from commerce_sync.store.events import find_event
from commerce_sync.store.models import Alert, DeadLetter, EventStatus, WebhookEvent
from tests.integration.orders.order_stack import Stack

# Brightpearl's `orderStatusId` of a cancelled order (the pair's lookups map
# "cancelled" to it) and `contactStatusId` of an inactive contact (see port.py).
BRIGHTPEARL_CANCELLED_STATUS = 5
BRIGHTPEARL_INACTIVE_CONTACT = 2

Json = dict[str, Any]


# ---- the ERP -----------------------------------------------------------------------


async def erp_sales_orders(stack: Stack, erp: str, store_order_number: str) -> list[Json]:
    """Every ERP sales order carrying this store order number, cancelled ones included."""
    state = await stack.state_of(erp)
    if erp == "brightpearl":
        return [
            order
            for order in state["orders"].values()
            if order.get("reference") == store_order_number and order.get("orderTypeCode") == "SO"
        ]
    return [
        order
        for order in state["entities"].get("SalesOrder", [])
        if order.get("CustomerOrder") == store_order_number and order.get("OrderType") == "SO"
    ]


def erp_order_lines(erp: str, order: Json) -> list[tuple[str, Decimal]]:
    """(SKU, quantity) of the order's product lines, in the ERP's order."""
    if erp == "brightpearl":
        return [
            (str(row["productSku"]), Decimal(row["quantity"]["magnitude"]))
            for _, row in sorted(order["orderRows"].items(), key=lambda kv: int(kv[0]))
            if row.get("productId")
        ]
    return [(str(line["InventoryID"]), Decimal(line["OrderQty"])) for line in order["Details"]]


def erp_order_cancelled(erp: str, order: Json) -> bool:
    if erp == "brightpearl":
        return bool(order["orderStatus"]["orderStatusId"] == BRIGHTPEARL_CANCELLED_STATUS)
    return bool(order.get("Status") == "Canceled")


async def erp_customers(stack: Stack, erp: str, email: str) -> list[Json]:
    """Every ERP customer (contact) whose primary e-mail is `email`, active or not."""
    state = await stack.state_of(erp)
    wanted = email.casefold()
    if erp == "brightpearl":
        return [
            contact
            for contact in state["contacts"].values()
            if str(
                ((contact.get("communication") or {}).get("emails") or {})
                .get("PRI", {})
                .get("email", "")
            ).casefold()
            == wanted
        ]
    return [
        customer
        for customer in state["entities"].get("Customer", [])
        if str((customer.get("MainContact") or {}).get("Email", "")).casefold() == wanted
    ]


def erp_customer_active(erp: str, customer: Json) -> bool:
    if erp == "brightpearl":
        status = customer["contactStatus"]["current"]["contactStatusId"]
        return bool(status != BRIGHTPEARL_INACTIVE_CONTACT)
    return bool(customer.get("Status") == "Active")


async def erp_payments(stack: Stack, erp: str, order: Json) -> list[Json]:
    """The payment documents recorded against one ERP sales order (reversals included)."""
    state = await stack.state_of(erp)
    if erp == "brightpearl":
        return [
            payment for payment in state["payments"].values() if payment["orderId"] == order["id"]
        ]
    return [
        payment
        for payment in state["entities"].get("Payment", [])
        if any(
            applied.get("OrderType") == order["OrderType"]
            and applied.get("OrderNbr") == order["OrderNbr"]
            for applied in payment.get("OrdersToApply") or []
        )
    ]


def receipts(erp: str, payments: list[Json]) -> list[Json]:
    """The payments that took money (not their reversals)."""
    if erp == "brightpearl":
        return [p for p in payments if p["paymentType"] == "RECEIPT"]
    return [p for p in payments if p["Type"] == "Payment"]


def payment_reversed(erp: str, payment: Json, payments: list[Json]) -> bool:
    """Brightpearl reverses with a VOID payment of the same amount, Acumatica voids the
    payment document itself."""
    if erp == "brightpearl":
        return any(
            other["paymentType"] == "VOID"
            and other["transactionRef"] == f"{payment['transactionRef']}-void"
            and other["amountPaid"] == payment["amountPaid"]
            for other in payments
        )
    return bool(payment.get("Status") == "Voided")


async def erp_writes(stack: Stack, erp: str) -> list[Json]:
    """The ERP API calls that could have changed something (not reads, not logins)."""
    response = await stack.sandbox.get(f"/{erp}/_sandbox/requests")
    response.raise_for_status()
    return [
        request
        for request in response.json()["requests"]
        if request["method"] != "GET" and not request["path"].startswith("/identity/")
    ]


# ---- the store ---------------------------------------------------------------------


async def store_order(stack: Stack, store: str, order_id: str) -> Json:
    state = await stack.state_of(store)
    if store == "kentico":
        return next(o for o in state["ecommerce.order"] if str(o["OrderID"]) == order_id)
    return next(o for o in state["orders"] if str(o["order_id"]) == order_id)


def store_status(store: str, record: Json) -> int:
    """The store's own status id of an order (Kentico `OrderStatusID`, X-Cart shipping status)."""
    if store == "kentico":
        return int(record["OrderStatusID"])
    return int(record["shippingStatus"]["id"])


def store_status_id(stack: Stack, pair: str, status: str) -> int:
    """The store's status id for a canonical status, from the pair's lookups."""
    config = load_pairs(stack.settings.pairs_file)[pair]
    if config.store == "kentico":
        return config.kentico.order_status_ids[status]
    return config.xcart.shipping_status_ids[status]


async def add_store_only_product(stack: Stack, store: str, sku: str, price: str) -> None:
    """A product the store sells but the ERP has never heard of, created through the
    store's own REST API with the credentials the connectors use."""
    settings = stack.settings
    if store == "kentico":
        auth = httpx.BasicAuth(
            settings.kentico.username, settings.kentico.password.get_secret_value()
        )
        response = await stack.sandbox.post(
            "/kentico/rest/ecommerce.sku/currentsite",
            params={"format": "json"},
            json={
                "SKUNumber": sku,
                "SKUName": f"Store-only {sku}",
                "SKUPrice": price,
                "SKUEnabled": True,
                "SKUAvailableItems": 100,
                "SKUTrackInventory": "ByProduct",
            },
            auth=auth,
        )
    else:
        response = await stack.sandbox.post(
            "/xcart/admin.php",
            params={
                "target": "RESTAPI",
                "_key": settings.xcart.api_key.get_secret_value(),
                "_path": "product",
            },
            json={
                "sku": sku,
                "price": price,
                "amount": 100,
                "enabled": True,
                "translations": [{"code": "en", "name": f"Store-only {sku}"}],
            },
        )
    created = 201 if store == "kentico" else 200  # Kentico: SetStatusAsCreated
    assert response.status_code == created, f"{store}: {response.status_code} {response.text}"


# ---- faults ------------------------------------------------------------------------


async def inject(stack: Stack, system: str, *rules: Json, seed: int | None = None) -> None:
    """Add fault rules to a sandbox (`POST /{system}/_sandbox/faults`)."""
    body: Json = {"rules": list(rules)}
    if seed is not None:
        body["seed"] = seed
    response = await stack.sandbox.post(f"/{system}/_sandbox/faults", json=body)
    assert response.status_code == 200, response.text


async def clear_faults(stack: Stack, system: str) -> None:
    (await stack.sandbox.delete(f"/{system}/_sandbox/faults")).raise_for_status()


async def fault_hits(stack: Stack, system: str) -> int:
    response = await stack.sandbox.get(f"/{system}/_sandbox/faults")
    response.raise_for_status()
    return sum(int(rule["hits"]) for rule in response.json()["faults"])


# ---- the stack's database ----------------------------------------------------------


def dead_letters(stack: Stack, workflow_id: str) -> list[DeadLetter]:
    engine = make_engine(stack.database_url)
    try:
        with Session(engine) as session:
            statement = select(DeadLetter).where(DeadLetter.business_key == workflow_id)
            return list(session.exec(statement.order_by(col(DeadLetter.id))).all())
    finally:
        engine.dispose()


async def relayed_event(stack: Stack, source: str, event_id: str) -> WebhookEvent | None:
    """The webhook event as recorded, once a relay has started (or signalled) its run."""
    engine = make_engine(stack.database_url)
    try:
        event = find_event(engine, source, event_id)
    finally:
        engine.dispose()
    return event if event is not None and event.status == EventStatus.STARTED else None


def alerts(stack: Stack, workflow_id: str) -> list[Alert]:
    engine = make_engine(stack.database_url)
    try:
        with Session(engine) as session:
            statement = select(Alert).where(Alert.key == workflow_id)
            return list(session.exec(statement.order_by(col(Alert.id))).all())
    finally:
        engine.dispose()
