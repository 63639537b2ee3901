"""The change feed, on both pairs: a store order (and a return request) whose webhook
never comes is found by the pair's scheduled read and synced; a second read starts
nothing twice; the feed's schedule, mark, lag and last success are in `GET /feeds` and
`/metrics`, and a pause set on the schedule shows. Real dev server, real schedules, real
sandboxes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.client import Client, ScheduleHandle, WorkflowExecutionStatus

from commerce_sync.commands.feeds import ensure_feed_schedules
from commerce_sync.config.pairs import load_pairs
from commerce_sync.contracts.feeds import feed_schedule_id
from commerce_sync.contracts.ids import catalog_workflow_id
from commerce_sync.domain.pair_rules import FEED_ENTITIES
from commerce_sync.store.db import make_engine
from commerce_sync.store.models import WebhookEvent
from tests.integration.catalog.catalog_views import (
    erp_create,
    new_sku,
    store_products,
    wait_run,
)
from tests.integration.customers.customer_views import closed_run, erp_view, synced_customer
from tests.integration.orders.order_stack import (
    PAIRS,
    READ_ONLY_KEY,
    Stack,
    eventually,
    point_webhooks,
    stack_with_rules,
    webhooks_nowhere,
)
from tests.integration.orders.sandbox_views import erp_order_cancelled, erp_sales_orders
from tests.integration.returns.return_stack import ReturnStack

# The first read reaches back only seconds: orders other tests left in the shared store
# sandbox are not this test's to sync.
FEED_RULES = {"feed.first_window": "PT20S", "feed.overlap": "PT2S"}


@pytest.fixture
async def feed_stack(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    sqlite_url: str,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    async with stack_with_rules(
        temporal_client, sandbox_url, sandboxes, sqlite_url, tmp_path, FEED_RULES
    ) as running:
        pairs = load_pairs(running.settings.pairs_file)
        await ensure_feed_schedules(temporal_client, running.settings, pairs.values())
        try:
            yield running
        finally:
            for pair in pairs:
                for entity in FEED_ENTITIES:
                    schedule_id = feed_schedule_id(pair, entity)
                    await temporal_client.get_schedule_handle(schedule_id).delete()


async def feeds(stack: Stack) -> dict[str, dict[str, Any]]:
    """`GET /feeds` by schedule id (`feed-{entity}:{pair}`)."""
    response = await stack.http.get(f"{stack.api}/feeds", headers=stack.headers(READ_ONLY_KEY))
    assert response.status_code == 200, response.text
    return {feed["schedule_id"]: feed for feed in response.json()}


async def read_once(stack: Stack, schedule: ScheduleHandle, reads_before: int) -> dict[str, Any]:
    """Trigger the schedule now and wait for that read to have finished."""
    await schedule.trigger()

    async def finished() -> dict[str, Any] | None:
        described = await schedule.describe()
        if described.info.num_actions <= reads_before or described.info.running_actions:
            return None
        return (await feeds(stack))[schedule.id]

    return await eventually(finished, 60, "the feed's read")


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_an_order_whose_webhook_never_comes_is_synced_by_the_feed(
    feed_stack: Stack, pair: str
) -> None:
    stack = feed_stack
    store, _erp = PAIRS[pair]
    schedule = stack.client.get_schedule_handle(feed_schedule_id(pair))
    described = await schedule.describe()
    listed = (await feeds(stack))[schedule.id]
    # The stack's settings carry the stores' webhook secrets: the feed is a safety net.
    assert listed["webhooks"] is True and listed["every_seconds"] == 900
    assert listed["paused"] is False and listed["mark"] is None

    # The store's webhooks go nowhere: only the feed can find this order.
    await webhooks_nowhere(stack.sandbox, stack.settings, store)
    order_id = await stack.place_order(store)
    assert await stack.order_status(pair, order_id) is None

    first = await read_once(stack, schedule, described.info.num_actions)
    assert first["last_started"] == 1 and first["last_error"] == ""
    assert first["last_success_at"] is not None and first["lag_seconds"] < 120
    await stack.wait_state(pair, order_id, "awaiting_shipment")

    # Read again: the same order is seen (the overlap) and left alone.
    reads = (await schedule.describe()).info.num_actions
    again = await read_once(stack, schedule, reads)
    assert again["last_started"] == 0 and again["last_seen"] >= 1
    assert again["mark"] >= first["mark"]

    metrics = await stack.http.get(f"{stack.api}/metrics", headers=stack.headers(READ_ONLY_KEY))
    assert f'commerce_sync_feed_lag_seconds{{entity="orders",pair="{pair}"}}' in metrics.text
    assert "commerce_sync_feed_last_success_timestamp_seconds" in metrics.text

    # Paused in the Web UI (here: through the client, as the UI does): shown as paused.
    await schedule.pause(note="test")
    assert (await feeds(stack))[schedule.id]["paused"] is True


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_return_request_whose_webhook_never_comes_is_handled_by_the_feed(
    feed_stack: Stack, pair: str
) -> None:
    stack = feed_stack
    returns = ReturnStack(stack)
    order = await returns.shipped_order(pair, [{"sku": "WIDGET-1", "quantity": 2}])
    schedule = stack.client.get_schedule_handle(feed_schedule_id(pair, "returns"))
    reads_before = (await schedule.describe()).info.num_actions
    listed = (await feeds(stack))[schedule.id]
    assert listed["entity"] == "returns" and listed["paused"] is False

    # The store's webhooks go nowhere from here: only the feed can find the request.
    await webhooks_nowhere(stack.sandbox, stack.settings, order.store)
    rma_id = await returns.request_return(
        order.store, order.order_id, [{"sku": "WIDGET-1", "quantity": 1}]
    )
    assert await returns.return_status(pair, rma_id) is None

    first = await read_once(stack, schedule, reads_before)
    assert first["last_started"] == 1 and first["last_error"] == ""
    await returns.wait_return(pair, rma_id, "refunded", run_status="COMPLETED")
    assert len(await returns.credits(order)) == 1

    # Read again: the request is seen (the overlap) and its finished run left alone.
    again = await read_once(stack, schedule, (await schedule.describe()).info.num_actions)
    assert again["last_started"] == 0 and again["last_seen"] >= 1
    assert len(await returns.credits(order)) == 1


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_store_cancellation_whose_webhook_never_comes_cancels_the_run_through_the_feed(
    feed_stack: Stack, pair: str
) -> None:
    stack = feed_stack
    store, erp = PAIRS[pair]
    order_id = await stack.place_order(store)
    waiting = (await stack.wait_state(pair, order_id, "awaiting_shipment"))["status"]
    schedule = stack.client.get_schedule_handle(feed_schedule_id(pair))

    await webhooks_nowhere(stack.sandbox, stack.settings, store)
    cancel = await stack.sandbox.post(f"/{store}/_sandbox/orders/{order_id}/cancel")
    assert cancel.status_code == 200, cancel.text

    await read_once(stack, schedule, (await schedule.describe()).info.num_actions)
    done = await stack.wait_state(pair, order_id, "cancelled", run_status="COMPLETED")
    undone = [c["name"] for c in done["status"]["compensations"]]
    assert undone[:2] == ["reverse the payment", "cancel the ERP sales order"]
    orders = await erp_sales_orders(stack, erp, waiting["store_order_number"])
    assert [erp_order_cancelled(erp, order) for order in orders] == [True]

    # Read again: the cancellation is seen again and the ended run left alone.
    again = await read_once(stack, schedule, (await schedule.describe()).info.num_actions)
    assert again["last_error"] == ""
    assert (await stack.order_status(pair, order_id) or {})["run_status"] == "COMPLETED"


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_an_erp_product_whose_webhook_never_comes_reaches_the_store_through_the_feed(
    feed_stack: Stack, pair: str
) -> None:
    stack = feed_stack
    store, erp = PAIRS[pair]
    schedule = stack.client.get_schedule_handle(feed_schedule_id(pair, "catalog"))
    listed = (await feeds(stack))[schedule.id]
    assert listed["entity"] == "catalog" and listed["webhooks"] is True

    # The ERP's webhooks go nowhere: only the feed can find the new product.
    await webhooks_nowhere(stack.sandbox, stack.settings, erp)
    sku = new_sku()
    await erp_create(
        stack, erp, sku, name="Feed Lamp", description="Found by the feed.", price="31.00"
    )

    first = await read_once(stack, schedule, (await schedule.describe()).info.num_actions)
    assert first["last_started"] >= 1 and first["last_error"] == ""
    await wait_run(stack, pair, sku, "synced", WorkflowExecutionStatus.COMPLETED)
    [product] = await store_products(stack, store, sku)
    assert (product.name, product.price) == ("Feed Lamp", Decimal("31.00"))

    # Read again: the run started after the change has read it; nothing is passed on.
    runs_before = await catalog_runs(stack, pair, sku)
    await read_once(stack, schedule, (await schedule.describe()).info.num_actions)
    assert await catalog_runs(stack, pair, sku) == runs_before
    assert len(await store_products(stack, store, sku)) == 1


async def catalog_runs(stack: Stack, pair: str, sku: str) -> int:
    found = stack.client.list_workflows(f"WorkflowId = '{catalog_workflow_id(pair, sku)}'")
    return len([run async for run in found])


def feed_events(stack: Stack, workflow_id: str) -> list[WebhookEvent]:
    """The events the feed recorded for a workflow (a webhook's have no `via`)."""
    engine = make_engine(stack.database_url)
    try:
        with Session(engine) as session:
            rows = session.exec(
                select(WebhookEvent).where(WebhookEvent.workflow_id == workflow_id)
            ).all()
    finally:
        engine.dispose()
    return [row for row in rows if row.payload.get("via") == "feed"]


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_customer_change_whose_webhook_never_comes_reaches_the_erp_through_the_feed(
    feed_stack: Stack, pair: str
) -> None:
    stack = feed_stack
    _email, store_id, erp_id = await synced_customer(stack, pair)
    view = erp_view(stack, pair)
    store = view.store
    workflow_id = f"customer:{pair}:{store_id}"
    schedule = stack.client.get_schedule_handle(feed_schedule_id(pair, "customers"))
    try:
        # The store's webhooks go nowhere: only the feed can see the new phone.
        await webhooks_nowhere(stack.sandbox, stack.settings, store)
        edit = {"phone": "+1 512 555 0177"}
        put = await stack.sandbox.put(f"/{store}/_sandbox/customers/{store_id}", json=edit)
        put.raise_for_status()

        first = await read_once(stack, schedule, (await schedule.describe()).info.num_actions)
        assert first["last_started"] >= 1 and first["last_error"] == ""

        async def phone_in_erp() -> bool:
            return "5550177" in "".join(ch for ch in (await view.get(erp_id)).phone if ch.isdigit())

        await eventually(phone_in_erp, 60, "the store's new phone in the ERP")
        assert len(feed_events(stack, workflow_id)) == 1

        # Read again: the same change is seen (the overlap) and not passed on twice.
        await read_once(stack, schedule, (await schedule.describe()).info.num_actions)
        assert len(feed_events(stack, workflow_id)) == 1

        # With the webhooks back, a change the webhook announced is not passed on again
        # by the feed: one run's worth of change, one event.
        await point_webhooks(stack.sandbox, stack.settings, stack.api)
        since = datetime.now(UTC)
        edit = {"phone": "+1 512 555 0188"}
        put = await stack.sandbox.put(f"/{store}/_sandbox/customers/{store_id}", json=edit)
        put.raise_for_status()
        await closed_run(stack, workflow_id, since)
        await read_once(stack, schedule, (await schedule.describe()).info.num_actions)
        assert len(feed_events(stack, workflow_id)) == 1
    finally:
        await view.aclose()
