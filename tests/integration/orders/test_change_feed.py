"""The change feed, on both pairs: a store order whose webhook never comes is found by
the pair's scheduled read and synced; a second read starts nothing twice; the feed's
schedule, mark, lag and last success are in `GET /feeds` and `/metrics`, and a pause set
on the schedule shows. Real dev server, real schedules, real sandboxes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, ScheduleHandle

from commerce_sync.commands.feeds import ensure_feed_schedules
from commerce_sync.config.pairs import load_pairs
from commerce_sync.contracts.feeds import feed_schedule_id
from tests.integration.orders.order_stack import (
    PAIRS,
    READ_ONLY_KEY,
    Stack,
    eventually,
    stack_with_rules,
)

# The first read reaches back only seconds: orders other tests left in the shared store
# sandbox are not this test's to sync.
FEED_RULES = {"feed.first_window": "PT20S", "feed.overlap": "PT2S"}
NOWHERE = "http://127.0.0.1:9/lost"  # a webhook target that never answers


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
                await temporal_client.get_schedule_handle(feed_schedule_id(pair)).delete()


async def feeds(stack: Stack) -> dict[str, dict[str, Any]]:
    response = await stack.http.get(f"{stack.api}/feeds", headers=stack.headers(READ_ONLY_KEY))
    assert response.status_code == 200, response.text
    return {feed["pair"]: feed for feed in response.json()}


async def read_once(stack: Stack, schedule: ScheduleHandle, reads_before: int) -> dict[str, Any]:
    """Trigger the schedule now and wait for that read to have finished."""
    await schedule.trigger()

    async def finished() -> dict[str, Any] | None:
        described = await schedule.describe()
        if described.info.num_actions <= reads_before or described.info.running_actions:
            return None
        return (await feeds(stack))[pair_of(schedule)]

    return await eventually(finished, 60, "the feed's read")


def pair_of(schedule: ScheduleHandle) -> str:
    return schedule.id.split(":", 1)[1]


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_an_order_whose_webhook_never_comes_is_synced_by_the_feed(
    feed_stack: Stack, pair: str
) -> None:
    stack = feed_stack
    store, _erp = PAIRS[pair]
    schedule = stack.client.get_schedule_handle(feed_schedule_id(pair))
    described = await schedule.describe()
    listed = await feeds(stack)
    # The stack's settings carry the stores' webhook secrets: the feed is a safety net.
    assert listed[pair]["webhooks"] is True and listed[pair]["every_seconds"] == 900
    assert listed[pair]["paused"] is False and listed[pair]["mark"] is None

    # The store's webhooks go nowhere: only the feed can find this order.
    secret = getattr(stack.settings.webhooks, store)
    target = {"url": NOWHERE, "secret": secret.get_secret_value()}
    (await stack.sandbox.post(f"/{store}/_sandbox/webhooks", json=target)).raise_for_status()
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
    assert (await feeds(stack))[pair]["paused"] is True
