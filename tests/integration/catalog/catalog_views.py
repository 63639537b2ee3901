"""Helpers of the catalog tests: change the ERP's catalog as a merchant would (the ERP
sandboxes' control plane, which fires the ERP's own webhooks), and read what the store
and the catalog runs show (the store sandboxes' state and request log, Temporal)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from sqlmodel import col, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from commerce_sync.contracts.ids import catalog_workflow_id
from commerce_sync.store.db import make_engine, session_scope
from commerce_sync.store.dead_letters import open_dead_letters
from commerce_sync.store.links import find_erp_id
from commerce_sync.store.models import Alert
from tests.integration.orders.order_stack import Stack, eventually

Json = dict[str, Any]


def new_sku() -> str:
    """A SKU no earlier test used: catalog workflow ids (`catalog:{pair}:{sku}`) outlive
    sandbox resets."""
    return f"CAT-{uuid.uuid4().hex[:10].upper()}"


# ---- the ERP: a merchant edits the catalog ------------------------------------------


async def erp_create(
    stack: Stack,
    erp: str,
    sku: str,
    *,
    name: str,
    description: str,
    price: str,
    enabled: bool = True,
) -> Json:
    """A new product in the ERP; the ERP fires its webhook (Brightpearl `product.created`,
    Acumatica a `CS-StockItems` push). Answers the ERP's product id and the event id."""
    if erp == "brightpearl":
        body: Json = {
            "sku": sku,
            "name": name,
            "description": description,
            "price": price,
            "enabled": enabled,
        }
        response = await stack.sandbox.post("/brightpearl/_sandbox/products", json=body)
        assert response.status_code == 200, response.text
        answer: Json = response.json()
        return {"erp_product_id": str(answer["product_id"]), "event_id": answer["event_id"]}
    body = {
        "sku": sku,
        "name": name,
        "description": description,
        "price": price,
        "status": "Active" if enabled else "Inactive",
    }
    response = await stack.sandbox.post("/acumatica/_sandbox/products", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["event_id"], "the stock item push notification was not fired"
    return {"erp_product_id": sku, "event_id": answer["event_id"]}


async def erp_change(stack: Stack, erp: str, sku: str, **fields: Any) -> Json:
    """Change name / description / price / enabled of an ERP product; fires the webhook
    (Brightpearl `product.modified`, Acumatica a `CS-StockItems` push)."""
    if erp == "brightpearl":
        response = await stack.sandbox.put(f"/brightpearl/_sandbox/products/{sku}", json=fields)
    else:
        body = {key: value for key, value in fields.items() if key != "enabled"}
        if "enabled" in fields:
            body["status"] = "Active" if fields["enabled"] else "Inactive"
        response = await stack.sandbox.post(
            "/acumatica/_sandbox/products", json={"sku": sku, **body}
        )
    assert response.status_code == 200, response.text
    answer: Json = response.json()
    return answer


# ---- the store ----------------------------------------------------------------------


@dataclass(frozen=True)
class StoreProduct:
    id: str
    sku: str
    name: str
    description: str
    price: Decimal
    enabled: bool


async def store_products(stack: Stack, store: str, sku: str) -> list[StoreProduct]:
    """Every product the store sandbox holds with this SKU."""
    state = await stack.state_of(store)
    if store == "kentico":
        return [
            StoreProduct(
                id=str(row["SKUID"]),
                sku=row["SKUNumber"],
                name=row["SKUName"],
                description=row.get("SKUDescription") or "",
                price=Decimal(str(row["SKUPrice"])),
                enabled=bool(row["SKUEnabled"]),
            )
            for row in state["ecommerce.sku"]
            if row["SKUNumber"] == sku
        ]
    products = []
    for row in state["products"]:
        if row["sku"] != sku:
            continue
        english: dict[str, Any] = next(
            (t for t in row.get("translations", []) if t.get("code") == "en"), {}
        )
        products.append(
            StoreProduct(
                id=str(row["product_id"]),
                sku=row["sku"],
                name=english.get("name", ""),
                description=english.get("description", ""),
                price=Decimal(str(row["price"])),
                enabled=bool(row["enabled"]),
            )
        )
    return products


async def product_requests(stack: Stack, store: str, method: str) -> list[Json]:
    """The store API requests of this method that addressed one product (X-Cart:
    `product` or `product/{id}`, not the update-many `PUT product` of stock pushes)."""
    response = await stack.sandbox.get(f"/{store}/_sandbox/requests")
    response.raise_for_status()
    found = []
    for record in response.json()["requests"]:
        if record["method"] != method:
            continue
        if store == "kentico":
            if record["path"].startswith("/rest/ecommerce.sku"):
                found.append(record)
            continue
        path = parse_qs(record["query"]).get("_path", [""])[0]
        if path.startswith("product/") or (path == "product" and method == "POST"):
            found.append(record)
    return found


def publish_fault(store: str) -> Json:
    """A fault rule refusing every product update of the store for good (HTTP 400): the
    create goes through, the later step that publishes the product fails."""
    if store == "kentico":
        return {
            "match": "PUT /rest/ecommerce.sku/*",
            "status": 400,
            "message": "Column 'SKUEnabled': the product cannot be published",
        }
    return {
        "match": "PUT /admin.php*_path=product*",
        "status": 400,
        "message": "Input data is incorrect: enabled: the product cannot be published",
    }


# ---- the catalog runs ---------------------------------------------------------------


@dataclass(frozen=True)
class CatalogRun:
    run_id: str
    status: WorkflowExecutionStatus
    state: Json


async def catalog_run(stack: Stack, pair: str, sku: str) -> CatalogRun | None:
    """The latest catalog run of this SKU with its `status` query answer, or None."""
    handle = stack.client.get_workflow_handle(catalog_workflow_id(pair, sku))
    try:
        description = await handle.describe()
        state = await handle.query("status", result_type=dict)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    assert description.status is not None
    return CatalogRun(description.run_id, description.status, state)


async def wait_run(
    stack: Stack,
    pair: str,
    sku: str,
    state: str,
    run_status: WorkflowExecutionStatus,
    *,
    after_run: str | None = None,
    timeout_s: float = 60.0,
) -> CatalogRun:
    """Wait until the SKU's latest run (another than `after_run`, when given) has ended
    with this Temporal status and sync state."""

    async def check() -> CatalogRun | None:
        run = await catalog_run(stack, pair, sku)
        if run is None or run.run_id == after_run:
            return None
        if run.status != run_status or run.state["state"] != state:
            return None
        return run

    return await eventually(check, timeout_s, f"catalog {pair}/{sku} {state} {run_status.name}")


def product_link(stack: Stack, pair: str, sku: str) -> str | None:
    engine = make_engine(stack.database_url)
    try:
        return find_erp_id(engine, pair, "product", sku)
    finally:
        engine.dispose()


def catalog_dead_letters(stack: Stack, pair: str, sku: str) -> list[Json]:
    engine = make_engine(stack.database_url)
    try:
        letters = open_dead_letters(engine, catalog_workflow_id(pair, sku))
        return [letter.model_dump() for letter in letters]
    finally:
        engine.dispose()


def alert_kinds(stack: Stack, key: str) -> list[str]:
    """The kinds of the alerts raised for this workflow id, oldest first."""
    engine = make_engine(stack.database_url)
    try:
        with session_scope(engine) as session:
            statement = select(Alert.kind).where(Alert.key == key).order_by(col(Alert.id))
            return list(session.exec(statement).all())
    finally:
        engine.dispose()
