"""The Temporal Schedules behind the incremental and nightly pushes, and the run's
continue-as-new, against the real dev server."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.service import RPCError

from commerce_sync.commands.inventory_control import ensure_schedules, schedule_ids
from commerce_sync.config.pairs import load_pairs
from commerce_sync.contracts.inventory import (
    InventoryPushInput,
    InventoryStatus,
    PushMode,
    PushRequest,
)
from tests.integration.inventory.inventory_stack import PAIRS, InventoryStack, erp_stock_reads
from tests.integration.orders.order_stack import eventually


@pytest.fixture(scope="module", autouse=True)
async def _schedules_deleted_afterwards(temporal_client: Client) -> AsyncIterator[None]:
    """Schedules outlive a test on the session's dev server: delete them after this
    module (not between its tests: a schedule deleted and made again at once can lose
    the first trigger to the closing one)."""
    yield
    for schedule_id in [i for pair in PAIRS for i in schedule_ids(pair)]:
        try:
            await temporal_client.get_schedule_handle(schedule_id).delete()
        except RPCError:
            pass  # never made


@pytest.fixture
async def schedules(inventory: InventoryStack) -> list[str]:
    """The stack's pairs' schedules, ensured as the worker does at start-up (made, or
    brought in line with this stack's task queue)."""
    pairs = load_pairs(inventory.stack.settings.pairs_file)
    return await ensure_schedules(
        inventory.client, pairs.values(), inventory.stack.settings.task_queue
    )


async def trigger(client: Client, schedule_id: str) -> None:
    """Fire the schedule now, even while its previous tick run is still closing (its own
    policy skips overlapping ticks), and wait until it has acted. A run a schedule starts
    is named after the second it starts in, so a second trigger waits for the next
    second, or it would be the same run."""
    handle = client.get_schedule_handle(schedule_id)
    info = (await handle.describe()).info
    if info.recent_actions:
        last = max(max(a.scheduled_at, a.started_at) for a in info.recent_actions).timestamp()

        async def next_second() -> bool:
            return time.time() >= math.floor(last) + 1

        await eventually(next_second, what="the next second")
    await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)

    async def acted() -> bool:
        return (await handle.describe()).info.num_actions > info.num_actions

    await eventually(acted, what=f"{schedule_id} acting on the trigger")


def _schedule_requests(status: InventoryStatus, mode: PushMode) -> list[str]:
    return [
        r.request_id
        for r in status.recent
        if r.requested_by == "schedule" and r.mode == mode and r.phase == "done"
    ]


async def test_schedules_are_ensured_twice_without_harm(
    inventory: InventoryStack, schedules: list[str]
) -> None:
    settings = inventory.stack.settings
    pairs = load_pairs(settings.pairs_file)
    again = await ensure_schedules(inventory.client, pairs.values(), settings.task_queue)
    assert again == schedules == [i for pair in pairs for i in schedule_ids(pair)]
    for pair_id, pair in pairs.items():
        incremental, full = schedule_ids(pair_id)
        described = await inventory.client.get_schedule_handle(incremental).describe()
        spec = described.schedule.spec
        assert [interval.every for interval in spec.intervals] == [timedelta(minutes=5)]
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == (
            "InventoryScheduleTick",
            settings.task_queue,
        )
        nightly = (await inventory.client.get_schedule_handle(full).describe()).schedule.spec
        calendar = nightly.calendars[0]
        hour = pair.inventory.nightly_full_at_hour_utc
        assert [(r.start, r.end) for r in calendar.hour] == [(hour, hour)]
        assert [(r.start, r.end) for r in calendar.minute] == [(0, 0)]


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_schedule_tick_pushes_from_the_cursor(
    inventory: InventoryStack, schedules: list[str], pair: str
) -> None:
    erp = PAIRS[pair][1]
    incremental, _ = schedule_ids(pair)
    await inventory.hold_webhooks(erp)  # what changes now, only the schedule finds
    await inventory.set_erp_stock(pair, "WIDGET-8", 55)

    # The first tick has no cursor yet: it reads every SKU and sets the cursor.
    await trigger(inventory.client, incremental)
    first = await inventory.wait_status(
        pair, "the first tick done", lambda s: len(_schedule_requests(s, PushMode.INCREMENTAL)) == 1
    )
    assert first.recent[0].total == 10 and first.cursor is not None
    assert await inventory.store_stock(pair, "WIDGET-8") == inventory.sellable(pair, 55)

    # Then only what changed after the cursor: one SKU, one listing and one read.
    await inventory.set_erp_stock(pair, "WIDGET-9", 21)
    await inventory.forget_calls(erp)
    await trigger(inventory.client, incremental)
    second = await inventory.wait_status(
        pair,
        "the second tick done",
        lambda s: len(_schedule_requests(s, PushMode.INCREMENTAL)) == 2,
    )
    latest = second.recent[0]
    assert (latest.total, latest.counts.written) == (1, 1)
    assert second.cursor is not None and first.cursor is not None
    assert second.cursor > first.cursor
    assert await inventory.store_stock(pair, "WIDGET-9") == inventory.sellable(pair, 21)
    calls = [c for c in await inventory.calls(erp) if not c["path"].startswith("/identity/")]
    listing = 1  # product-search / one delta inquiry
    assert len(calls) == listing + 1, calls
    assert len(erp_stock_reads(erp, calls)) >= 1


@pytest.mark.parametrize("inventory", [{"cycles_per_run": 2}], indirect=True)
async def test_the_run_continues_as_new_carrying_its_state(inventory: InventoryStack) -> None:
    pair, (store, _) = "kentico-brightpearl", PAIRS["kentico-brightpearl"]
    stack = inventory.stack
    held = await stack.place_order(store, lines=[{"sku": "WIDGET-4", "quantity": 2}])
    await stack.wait_state(pair, held, "awaiting_approval")
    request_ids = []
    for skus in (["WIDGET-4"], ["WIDGET-5"], ["WIDGET-6"]):
        response = await inventory.http.post(
            f"{stack.api}/inventory/{pair}/push", json={"skus": skus}, headers=inventory.headers()
        )
        assert response.status_code == 202, response.text
        request_ids.append(response.json()["request_id"])
        await inventory.wait_request(pair, request_ids[-1])
    handle = inventory.client.get_workflow_handle(f"inventory:{pair}")
    status = await inventory.wait_status(pair, "a second run", lambda s: s.run >= 1)
    # Two cycles per run: the third push ran in the run that continued the first.
    assert status.cycles == 3 and status.run == 1
    assert [r.request_id for r in status.recent] == list(reversed(request_ids))
    assert status.reserved == {"WIDGET-4": 2} and status.reserved_orders == [held]
    assert status.totals.written == 3
    assert await inventory.store_stock(pair, "WIDGET-4") == inventory.sellable(pair, 100, held=2)
    # The run now going was started by the first one continuing as new.
    latest = await handle.fetch_history()
    started = latest.events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id
    earlier = await inventory.client.get_workflow_handle(
        f"inventory:{pair}", run_id=started.continued_execution_run_id
    ).fetch_history()
    assert earlier.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")


async def test_a_run_started_with_a_request_pushes_it_first(inventory: InventoryStack) -> None:
    """How a benchmark may start the push run itself: the input carries the request."""
    pair = "xcart-acumatica"
    await inventory.hold_webhooks("acumatica")
    await inventory.set_erp_stock(pair, "WIDGET-3", 70)
    request = PushRequest(
        request_id="bench-1", mode=PushMode.SKUS, skus=["WIDGET-3"], requested_by="bench"
    )
    await inventory.client.start_workflow(
        "InventoryPush",
        InventoryPushInput(pair=pair, request=request),
        id=f"inventory:{pair}",
        task_queue=inventory.stack.settings.task_queue,
    )
    done = await inventory.follow(pair, "bench-1")
    assert (done.phase, done.total, done.counts.written, done.requested_by) == (
        "done",
        1,
        1,
        "bench",
    )
    assert await inventory.store_stock(pair, "WIDGET-3") == inventory.sellable(pair, 70)
