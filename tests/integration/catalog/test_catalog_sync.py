"""Catalog sync, both pairs, through the ERPs' real webhooks: a product created in the ERP
appears in the store with the mapped fields; a change updates it and never duplicates
it; the same webhook twice (and a second run for the same SKU) leaves one product; a
step after the create that fails for good removes the created product again, records a
dead letter and fails the run."""

from __future__ import annotations

from decimal import Decimal

import pytest
from temporalio.client import WorkflowExecutionStatus

from commerce_sync.contracts.ids import catalog_workflow_id
from commerce_sync.intake.dispatch import dispatch
from commerce_sync.intake.routing import catalog_route
from tests.integration.catalog.catalog_views import (
    alert_kinds,
    catalog_dead_letters,
    erp_change,
    erp_create,
    new_sku,
    product_link,
    product_requests,
    publish_fault,
    store_products,
    wait_run,
)
from tests.integration.orders.order_stack import PAIRS, Stack, eventually

COMPLETED = WorkflowExecutionStatus.COMPLETED
FAILED = WorkflowExecutionStatus.FAILED


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_created_product_reaches_the_store_with_the_mapped_fields(
    stack: Stack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    sku = new_sku()
    made = await erp_create(
        stack,
        erp,
        sku,
        name="Catalog Lamp",
        description="A lamp the ERP created.",
        price="24.50",
    )

    run = await wait_run(stack, pair, sku, "synced", COMPLETED)
    [product] = await store_products(stack, store, sku)
    assert (product.name, product.description, product.price, product.enabled) == (
        "Catalog Lamp",
        "A lamp the ERP created.",
        Decimal("24.50"),
        True,
    )
    status = run.state
    assert status["action"] == "created" and status["created_by_this_run"] is True
    assert status["store_product_id"] == product.id
    assert status["erp_product_id"] == made["erp_product_id"]
    assert [step["name"] for step in status["steps"]] == [
        "read ERP product",
        "create store product",
        "publish",
        "record link",
    ]
    # Created hidden, then published: one create and one update, nothing else.
    assert len(await product_requests(stack, store, "POST")) == 1
    assert len(await product_requests(stack, store, "PUT")) == 1
    assert product_link(stack, pair, sku) == made["erp_product_id"]

    # The Web UI finds the run by its search attributes.
    query = (
        f"WorkflowId = '{catalog_workflow_id(pair, sku)}' AND IntegrationPair = '{pair}'"
        " AND SyncState = 'synced'"
    )

    async def listed() -> list[str]:
        return [wf.id async for wf in stack.client.list_workflows(query)]

    assert await eventually(listed, 30, "the run in visibility") == [catalog_workflow_id(pair, sku)]


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_disabled_erp_product_is_created_hidden_and_not_published(
    stack: Stack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    sku = new_sku()
    await erp_create(
        stack,
        erp,
        sku,
        name="Retired Vase",
        description="Not for sale.",
        price="5.00",
        enabled=False,
    )

    run = await wait_run(stack, pair, sku, "synced", COMPLETED)
    [product] = await store_products(stack, store, sku)
    assert product.enabled is False and product.name == "Retired Vase"
    assert "publish" not in [step["name"] for step in run.state["steps"]]
    assert await product_requests(stack, store, "PUT") == []


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_changed_product_is_updated_not_duplicated(stack: Stack, pair: str) -> None:
    store, erp = PAIRS[pair]
    sku = new_sku()
    await erp_create(stack, erp, sku, name="Desk", description="Oak desk.", price="120.00")
    first = await wait_run(stack, pair, sku, "synced", COMPLETED)

    await erp_change(
        stack, erp, sku, name="Desk, large", description="Oak desk, 2 m.", price="149.99"
    )

    second = await wait_run(stack, pair, sku, "synced", COMPLETED, after_run=first.run_id)
    [product] = await store_products(stack, store, sku)
    assert (product.name, product.description, product.price) == (
        "Desk, large",
        "Oak desk, 2 m.",
        Decimal("149.99"),
    )
    assert product.id == first.state["store_product_id"]
    assert second.state["action"] == "updated"
    assert second.state["created_by_this_run"] is False
    update = next(s for s in second.state["steps"] if s["name"] == "update store product")
    assert update["detail"] == f"{product.id}: name, description, price"
    assert len(await product_requests(stack, store, "POST")) == 1  # the one create

    # Taken off sale in the ERP: disabled in the store, still one product.
    await erp_change(stack, erp, sku, enabled=False)
    await wait_run(stack, pair, sku, "synced", COMPLETED, after_run=second.run_id)
    [product] = await store_products(stack, store, sku)
    assert product.enabled is False and product.name == "Desk, large"


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_the_same_webhook_twice_leaves_one_store_product(stack: Stack, pair: str) -> None:
    store, erp = PAIRS[pair]
    sku = new_sku()
    made = await erp_create(stack, erp, sku, name="Chair", description="", price="35.00")
    first = await wait_run(stack, pair, sku, "synced", COMPLETED)

    # The ERP delivers the same event again, byte for byte: recorded once, nothing started.
    response = await stack.sandbox.post(f"/{erp}/_sandbox/events/{made['event_id']}/redeliver")
    assert response.status_code == 200, response.text

    async def redelivered() -> bool:
        events = (await stack.sandbox.get(f"/{erp}/_sandbox/events")).json()["events"]
        event = next(e for e in events if e["id"] == made["event_id"])
        return bool(event["attempts"] >= 2 and event["last_status"] == 200)

    await eventually(redelivered, 30, "the redelivery answered 200 (a repeat)")

    # Another delivery for the same SKU (a new event id: a resync, a second subscription)
    # starts a run that finds the product and changes nothing.
    await dispatch(
        stack.client,
        catalog_route(pair, sku, erp_product_id=made["erp_product_id"], trigger="test"),
        stack.settings.task_queue,
    )
    again = await wait_run(stack, pair, sku, "synced", COMPLETED, after_run=first.run_id)
    assert again.state["action"] == "unchanged"
    assert len(await store_products(stack, store, sku)) == 1
    assert len(await product_requests(stack, store, "POST")) == 1
    assert len(await product_requests(stack, store, "PUT")) == 1  # the first run's publish


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_permanent_failure_after_the_create_removes_the_product_again(
    stack: Stack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    sku = new_sku()
    response = await stack.sandbox.post(f"/{store}/_sandbox/faults", json=publish_fault(store))
    assert response.status_code == 200, response.text

    await erp_create(stack, erp, sku, name="Broken Stool", description="", price="15.00")

    run = await wait_run(stack, pair, sku, "failed", FAILED)
    status = run.state
    assert status["created_by_this_run"] is True and status["store_product_id"]
    assert [(c["name"], c["outcome"]) for c in status["compensations"]] == [
        ("remove the store product this run created", "ok")
    ]
    assert "cannot be published" in status["error"]
    # The store saw the create, the refused publish, and the removal; the product is gone.
    assert await store_products(stack, store, sku) == []
    assert len(await product_requests(stack, store, "POST")) == 1
    [delete] = await product_requests(stack, store, "DELETE")
    assert delete["status"] == 200
    assert product_link(stack, pair, sku) is None

    [letter] = catalog_dead_letters(stack, pair, sku)
    assert letter["process"] == "catalog" and letter["pair"] == pair
    assert letter["reason"] == "ValidationFailed"
    assert letter["payload"]["sku"] == sku
    assert alert_kinds(stack, catalog_workflow_id(pair, sku)) == ["catalog_failed"]

    # Once the store takes updates again, the next change syncs the SKU and the dead
    # letter is resolved.
    (await stack.sandbox.delete(f"/{store}/_sandbox/faults")).raise_for_status()
    await erp_change(stack, erp, sku, name="Fixed Stool")
    await wait_run(stack, pair, sku, "synced", COMPLETED, after_run=run.run_id)
    [product] = await store_products(stack, store, sku)
    assert product.name == "Fixed Stool" and product.enabled is True
    assert catalog_dead_letters(stack, pair, sku) == []


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_an_erp_product_that_cannot_go_to_the_store_is_dead_lettered(
    stack: Stack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    sku = new_sku()
    await erp_create(stack, erp, sku, name="", description="No name yet.", price="12.00")

    run = await wait_run(stack, pair, sku, "dead_lettered", FAILED)
    assert run.state["error"] == "name: empty"
    assert run.state["compensations"] == []
    assert await store_products(stack, store, sku) == []
    assert await product_requests(stack, store, "POST") == []
    [letter] = catalog_dead_letters(stack, pair, sku)
    assert (letter["reason"], letter["error"]) == ("invalid_product", "name: empty")


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_sku_the_erp_does_not_have_changes_nothing(stack: Stack, pair: str) -> None:
    store, _ = PAIRS[pair]
    sku = new_sku()
    await dispatch(
        stack.client, catalog_route(pair, sku, trigger="test"), stack.settings.task_queue
    )

    run = await wait_run(stack, pair, sku, "skipped", COMPLETED)
    assert [step["outcome"] for step in run.state["steps"]] == ["skipped"]
    assert await store_products(stack, store, sku) == []
    assert await product_requests(stack, store, "POST") == []
    assert product_link(stack, pair, sku) is None
