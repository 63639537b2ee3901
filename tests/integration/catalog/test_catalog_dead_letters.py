"""A catalog dead letter replayed through the API: a fresh run for the same SKU (the
letter's own workflow id) syncs the product once the cause is gone, and resolves the
letter; a payload naming another SKU is refused and starts nothing."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from commerce_sync.contracts.ids import catalog_workflow_id
from tests.integration.catalog.catalog_views import (
    erp_create,
    new_sku,
    publish_fault,
    store_products,
    wait_run,
)
from tests.integration.orders.order_stack import PAIRS, Stack, eventually

FAILED = WorkflowExecutionStatus.FAILED
COMPLETED = WorkflowExecutionStatus.COMPLETED


async def the_letter(stack: Stack, pair: str, sku: str) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        response = await stack.http.get(
            f"{stack.api}/dead-letters",
            params={"pair": pair, "process": "catalog"},
            headers=stack.headers(),
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        wid = catalog_workflow_id(pair, sku)
        return next((item for item in items if item["business_key"] == wid), None)

    return await eventually(find, what=f"the catalog dead letter of {sku}")


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_catalog_letter_replayed_syncs_the_product(stack: Stack, pair: str) -> None:
    store, erp = PAIRS[pair]
    sku = new_sku()
    fault = await stack.sandbox.post(f"/{store}/_sandbox/faults", json=publish_fault(store))
    assert fault.status_code == 200, fault.text
    await erp_create(stack, erp, sku, name="Replayed Stool", description="", price="15.00")
    failed = await wait_run(stack, pair, sku, "failed", FAILED)
    letter = await the_letter(stack, pair, sku)
    assert letter["status"] == "open" and letter["payload"]["sku"] == sku
    (await stack.sandbox.delete(f"/{store}/_sandbox/faults")).raise_for_status()

    url = f"{stack.api}/dead-letters/{letter['id']}/replay"
    other = await stack.http.post(
        url,
        json={"payload": {**letter["payload"], "sku": "WIDGET-2"}},
        headers=stack.headers(),
    )
    assert other.status_code == 422 and other.json()["detail"][0]["loc"] == [
        "body",
        "payload",
        "sku",
    ]
    handle = stack.client.get_workflow_handle(catalog_workflow_id(pair, sku))
    assert (await handle.describe()).run_id == failed.run_id  # nothing started

    replayed = await stack.http.post(url, json={"by": "ops-cat"}, headers=stack.headers())
    assert replayed.status_code == 202, replayed.text
    entry = replayed.json()["history"][1]
    assert entry["event"] == "replayed" and entry["by"] == "ops-cat" and entry["edited"] == []
    synced = await wait_run(stack, pair, sku, "synced", COMPLETED, after_run=failed.run_id)
    assert synced.run_id == entry["run_id"]
    [product] = await store_products(stack, store, sku)
    assert product.name == "Replayed Stool" and product.enabled is True

    async def resolved() -> dict[str, Any] | None:
        response = await stack.http.get(
            f"{stack.api}/dead-letters/{letter['id']}", headers=stack.headers()
        )
        current: dict[str, Any] = response.json()
        return current if current["status"] == "resolved" else None

    done = await eventually(resolved, what="the catalog letter resolved")
    assert [each["event"] for each in done["history"]] == ["created", "replayed", "resolved"]
