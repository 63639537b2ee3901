"""The shared call budget on the real stack (issue #15, point 2): every call an order's
run sends to the ERP and the store is drawn from its system's budget in the stack's
database (`api_budgets`) and counted on the worker's /metrics; a budget smaller than an
order needs queues the calls beyond it instead of sending them into the system's throttle.

As in test_erp_calls_per_order.py, the ERP's webhooks are pointed nowhere, so the ERP's
only callers are the order runs (the side runs an ERP announcement starts are another
test's to count), and the look for twins of lost creates waits an hour.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.client import Client

from commerce_sync.commands.feeds import ensure_feed_schedules
from commerce_sync.config.pairs import load_pairs
from commerce_sync.contracts.feeds import feed_schedule_id
from commerce_sync.store.db import make_engine
from commerce_sync.store.models import ApiBudget
from tests.integration.ops.ops_stack import (
    OpsStack,
    Receiver,
    ops_settings,
    running_ops,
    scrape,
    value,
)
from tests.integration.orders.order_stack import (
    PAIRS,
    eventually,
    pairs_file_with,
    stack_settings,
    webhooks_nowhere,
)
from tests.integration.orders.test_change_feed import FEED_RULES, read_once
from tests.integration.orders.test_erp_calls_per_order import (
    NEW_CUSTOMER,
    NOT_THE_ORDER_RUN,
    RETURNING_CUSTOMER,
    family,
)

CALLS = "commerce_sync_api_budget_calls_total"
HOLDS = "commerce_sync_api_budget_holds_total"


def budget_calls(metrics: str, system: str) -> dict[str, float]:
    return {
        result: value(metrics, CALLS, system=system, result=result)
        for result in ("at_once", "queued", "gave_up")
    }


def moved(before: str, after: str, system: str) -> dict[str, float]:
    """How far each of the system's budget counters moved between two scrapes."""
    old, new = budget_calls(before, system), budget_calls(after, system)
    return {result: new[result] - old[result] for result in new}


def granted(metrics: str, system: str) -> float:
    calls = budget_calls(metrics, system)
    return calls["at_once"] + calls["queued"]


async def request_log(ops: OpsStack, system: str) -> list[dict[str, Any]]:
    response = await ops.stack.sandbox.get(f"/{system}/_sandbox/requests")
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["requests"]
    return found


async def clear_log(ops: OpsStack, system: str) -> None:
    (await ops.stack.sandbox.delete(f"/{system}/_sandbox/requests")).raise_for_status()


async def counted_as_sent(
    ops: OpsStack, before: str, systems: tuple[str, ...]
) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """The worker's metrics and each system's request log once every call the budget
    granted since `before` is in its system's log, and no more calls come."""

    async def check() -> tuple[str, dict[str, list[dict[str, Any]]]] | None:
        metrics = await scrape(ops, ops.worker_metrics)
        logs = {system: await request_log(ops, system) for system in systems}
        again = await scrape(ops, ops.worker_metrics)
        for system in systems:
            sent = granted(metrics, system) - granted(before, system)
            if granted(again, system) != granted(metrics, system) or sent != len(logs[system]):
                return None
        return metrics, logs

    return await eventually(check, 30, "the budgets' counts to match the calls sent")


@contextlib.asynccontextmanager
async def budget_stack(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    tmp_path: Path,
    receiver: Receiver,
    erp: str,
    rules: Mapping[str, str] | None = None,
    **erp_budget: float,
) -> AsyncIterator[OpsStack]:
    """The ops stack whose ERP only the order runs call; `erp_budget` replaces the ERP's
    budget settings of the test stacks (`TEST_BUDGET`), `rules` the pairs' rules."""
    target = temporal_client.service_client.config.target_host
    settings = stack_settings(sandbox_url, f"sqlite:///{tmp_path / 'cs.db'}", tmp_path, target)
    budget = getattr(settings, erp)
    pairs_file = pairs_file_with(tmp_path, {"duplicate_check_after": 3600, **(rules or {})})
    settings = settings.model_copy(
        update={
            "pairs_file": pairs_file,
            erp: type(budget).model_validate(budget.model_dump() | erp_budget),  # validated
        }
    )
    async with running_ops(ops_settings(settings, receiver), sandboxes, receiver) as ops:
        await webhooks_nowhere(ops.stack.sandbox, ops.stack.settings, erp)
        yield ops


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_every_call_of_an_order_is_drawn_from_the_shared_budget(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    tmp_path: Path,
    receiver: Receiver,
    pair: str,
) -> None:
    """A new customer's order and the same customer's next: the calls the ERP and the store
    received, the order run's and its side runs', are exactly the calls their budgets
    granted (none bypassed the budget), all at once under the test stack's ample budgets;
    the order run's ERP calls are those test_erp_calls_per_order.py counts (the returning
    customer's: Brightpearl 3, Acumatica 5); the budget rows in the app database moved."""
    store, erp = PAIRS[pair]
    async with budget_stack(
        temporal_client, sandbox_url, sandboxes, tmp_path, receiver, erp
    ) as ops:
        started, rows = await new_then_returning_order(ops, pair)
    assert set(rows) == {"kentico", "xcart", "brightpearl", "acumatica"}
    # Each grant moves its row past the time it was granted at.
    assert rows[store] > started and rows[erp] > started


async def new_then_returning_order(ops: OpsStack, pair: str) -> tuple[float, dict[str, float]]:
    """Checks the budgets' counts of each order; the time before the first order and each
    system's budget row (`ready_at`) after the second."""
    store, erp = PAIRS[pair]
    stack = ops.stack
    customer = {
        "email": f"budget-{uuid.uuid4().hex[:8]}@example.com",
        "first_name": "Jane",
        "last_name": "Doe",
        "phone": "+1 512 555 0100",
    }
    started = time.time()
    for expected in (NEW_CUSTOMER, RETURNING_CUSTOMER):
        for system in (store, erp):
            await clear_log(ops, system)
        before = await scrape(ops, ops.worker_metrics)
        order_id = await stack.place_order(store, customer=customer)
        await stack.wait_state(pair, order_id, "awaiting_shipment")
        after, logs = await counted_as_sent(ops, before, (store, erp))
        order_run = [
            call
            for call in (family(r["method"], r["path"], r.get("query", "")) for r in logs[erp])
            if not call.startswith(NOT_THE_ORDER_RUN)
        ]
        assert Counter(order_run) == Counter(expected[erp])
        assert logs[store], "the order run reads the store's order"
        for system in (store, erp):
            assert moved(before, after, system) == {
                "at_once": len(logs[system]),
                "queued": 0,
                "gave_up": 0,
            }, system
            assert value(after, HOLDS, system=system) == value(before, HOLDS, system=system)

    engine = make_engine(stack.database_url)
    try:
        with Session(engine) as session:
            rows = {row.system: row.ready_at for row in session.exec(select(ApiBudget))}
    finally:
        engine.dispose()
    return started, rows


# The ERP's budget and its sandbox's throttle: PER_WINDOW calls a WINDOW_S window (the
# sandboxes' test-only window standing in for the systems' minute, so the test takes
# seconds). One call at once (burst 1), one left unused (margin 1): a call every
# WINDOW_S / (PER_WINDOW - 2) seconds, far fewer than an order's calls want.
PER_WINDOW = 5
WINDOW_S = 4.0


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_calls_beyond_a_small_budget_are_queued_not_throttled(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    tmp_path: Path,
    receiver: Receiver,
    pair: str,
) -> None:
    """The ERP grants PER_WINDOW calls a window (its sandbox throttles beyond them: 503 for
    Brightpearl, 429 for Acumatica) and the budget is set to it: the order needs more calls
    than one window allows; the budget queues the ones beyond it, and the ERP answers none
    with its throttle."""
    store, erp = PAIRS[pair]
    throttle = {"requests_per_minute": PER_WINDOW, "window_s": WINDOW_S}
    (await sandboxes.post(f"/{erp}/_sandbox/throttle", json=throttle)).raise_for_status()
    async with budget_stack(
        temporal_client,
        sandbox_url,
        sandboxes,
        tmp_path,
        receiver,
        erp,
        rate_per_second=PER_WINDOW / WINDOW_S,
        budget_window_s=WINDOW_S,
        burst=1,
        margin=1,
    ) as ops:
        await clear_log(ops, erp)
        before = await scrape(ops, ops.worker_metrics)
        order_id = await ops.stack.place_order(store)
        await ops.stack.wait_state(pair, order_id, "awaiting_shipment", timeout_s=120)
        after, logs = await counted_as_sent(ops, before, (erp,))

    sent = logs[erp]
    assert len(sent) > PER_WINDOW, "the order needs more calls than one window allows"
    assert [r for r in sent if r["status"] in (429, 503)] == []
    calls = moved(before, after, erp)
    assert calls["queued"] >= 1 and calls["gave_up"] == 0, calls
    assert calls["at_once"] + calls["queued"] == len(sent)
    throttled = "commerce_sync_api_calls_total"
    assert value(after, throttled, system=erp, outcome="throttled") == value(
        before, throttled, system=erp, outcome="throttled"
    )
    assert value(after, HOLDS, system=erp) == value(before, HOLDS, system=erp)
    assert value(after, "commerce_sync_api_budget_per_second", system=erp) == PER_WINDOW / WINDOW_S


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_the_change_feeds_reads_are_drawn_from_the_shared_budget(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    tmp_path: Path,
    receiver: Receiver,
    pair: str,
) -> None:
    """An order whose webhook never comes is found by the pair's change feed, read on the
    workflow queue's worker: the feed's reads of the store, like the order run's calls,
    are calls its budget granted (the store's request log holds exactly as many)."""
    store, erp = PAIRS[pair]
    async with budget_stack(
        temporal_client, sandbox_url, sandboxes, tmp_path, receiver, erp, FEED_RULES
    ) as ops:
        stack = ops.stack
        pairs = load_pairs(stack.settings.pairs_file)
        ensured = await ensure_feed_schedules(stack.client, stack.settings, [pairs[pair]])
        try:
            await webhooks_nowhere(stack.sandbox, stack.settings, store)
            order_id = await stack.place_order(store)
            await clear_log(ops, store)
            before = await scrape(ops, ops.worker_metrics)
            schedule = stack.client.get_schedule_handle(feed_schedule_id(pair))
            read = await read_once(stack, schedule, (await schedule.describe()).info.num_actions)
            assert read["last_started"] == 1, read
            await stack.wait_state(pair, order_id, "awaiting_shipment")
            # Only the feed could find the order: its reads are in the log, and counted.
            _, logs = await counted_as_sent(ops, before, (store,))
        finally:
            for schedule_id in ensured:
                await stack.client.get_schedule_handle(schedule_id).delete()
    assert logs[store]
