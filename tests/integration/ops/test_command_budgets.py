"""The commands that call the systems themselves (`check`, `resync orders`, `resync
catalog`) draw on the same shared call budgets as the workers (issue #15, point 2): their
connectors are built as the worker's `Ports` are, on the deployment's app database.

A worker process (a bucket of its own on the same database, SQLite and Postgres) holds
each system's budget, as a throttle answer does; the command's first call to that system
then waits (its process shows among the budget's waiting callers) until the hold is
lifted, instead of going out at once, and every request the systems received from the
command is a call its budget granted (the sandboxes' request logs against the budget's
counts, read as the worker's /metrics reads them).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx
import pytest
from sqlalchemy import Engine, select, update
from temporalio.client import Client

from commerce_sync.commands.catalog_resync import run_catalog_resync
from commerce_sync.commands.check import CheckTargets, check_pair
from commerce_sync.commands.connectors import system_budgets
from commerce_sync.commands.resync import run_order_resync
from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import Settings
from commerce_sync.ops.metrics import BUDGETS
from commerce_sync.store.budgets import TABLE, WAITERS, BucketShape, SharedBucket
from tests.integration.orders.order_stack import eventually
from tests.integration.systems.test_check import _order

PAIRS = {
    "kentico-brightpearl": ("kentico", "brightpearl"),
    "xcart-acumatica": ("xcart", "acumatica"),
}
SMALL = {"rate_per_second": 20.0, "budget_window_s": 60.0, "burst": 2, "margin": 1}
"""A call every 0.05 s after a burst of two: the command's reads take their turns quickly."""
T = TypeVar("T")


def command_settings(settings: Settings, database_url: str) -> Settings:
    """The test settings on `database_url`, every system on the SMALL budget."""
    update: dict[str, object] = {"database_url": database_url}
    for system, budget in system_budgets(settings).items():
        update[system] = type(budget).model_validate(budget.model_dump() | SMALL)
    return settings.model_copy(update=update)


async def held_until_waited_for(
    settings: Settings, engine: Engine, systems: tuple[str, ...], command: Awaitable[T]
) -> T:
    """Run `command` while a worker process holds each system's budget (as a throttle
    answer holds it): each hold is lifted once the command's call to that system waits
    for it (its process's row among the waiting callers), one system after the other."""
    held = time.time() + 3600
    for system in systems:
        budget = system_budgets(settings)[system]
        SharedBucket(engine, system, BucketShape(budget.call_interval_s, budget.burst)).hold(held)
    running = asyncio.ensure_future(command)
    try:
        for system in systems:

            async def waiting(system: str = system) -> bool:
                if running.done():
                    running.result()  # its error, if it failed
                    raise AssertionError(f"the command ended without waiting for {system}")
                with engine.begin() as conn:
                    rows = conn.execute(select(WAITERS.c.holder).where(WAITERS.c.system == system))
                    return rows.first() is not None

            await eventually(waiting, 60, f"the command to wait for {system}'s budget")
            with engine.begin() as conn:
                conn.execute(update(TABLE).where(TABLE.c.system == system).values(ready_at=0.0))
        return await running
    finally:
        running.cancel()


def command_budget_calls(system: str) -> dict[str, float]:
    """The last connectors built in this process (the command's): their budget's counts."""
    found: dict[str, float] = {}
    for metric in BUDGETS.collect():
        for sample in metric.samples:
            if sample.name.startswith("commerce_sync_api_budget_calls") and (
                sample.labels["system"] == system
            ):
                found[sample.labels["result"]] = sample.value
    return found


async def requests_sent(sandboxes: httpx.AsyncClient, system: str) -> int:
    log = (await sandboxes.get(f"/{system}/_sandbox/requests")).json()["requests"]
    return len(log)


async def clear(sandboxes: httpx.AsyncClient, *systems: str) -> None:
    for system in systems:
        (await sandboxes.delete(f"/{system}/_sandbox/requests")).raise_for_status()


async def assert_drawn_from_the_budget(sandboxes: httpx.AsyncClient, system: str) -> None:
    calls = command_budget_calls(system)
    sent = await requests_sent(sandboxes, system)
    assert sent >= 1, system
    assert calls["at_once"] + calls["queued"] == sent, (system, calls)
    assert calls["queued"] >= 1, (system, calls)  # the first waited for the held budget
    assert calls["gave_up"] == 0, (system, calls)


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_check_takes_its_turn_in_the_workers_budgets(
    settings: Settings,
    sandboxes: httpx.AsyncClient,
    database_url: str,
    engine: Engine,
    pair: str,
) -> None:
    store, erp = PAIRS[pair]
    budgeted = command_settings(settings, database_url)
    email = f"budget-{uuid.uuid4().hex[:8]}@example.com"
    (await sandboxes.post(f"/{store}/_sandbox/orders", json=_order(email))).raise_for_status()
    await clear(sandboxes, store, erp)

    report = await held_until_waited_for(
        budgeted, engine, (store, erp), check_pair(budgeted, load_pairs()[pair], CheckTargets())
    )

    assert not report.failed, report.lines
    for system in (store, erp):
        await assert_drawn_from_the_budget(sandboxes, system)


async def test_resyncs_take_their_turns_in_the_workers_budgets(
    temporal_client: Client,
    settings: Settings,
    sandboxes: httpx.AsyncClient,
    database_url: str,
    engine: Engine,
) -> None:
    """The listings of `resync orders` (the store) and `resync catalog` (the ERP); since a
    time to come, they find nothing to start."""
    pair = load_pairs()["kentico-brightpearl"]
    budgeted = command_settings(settings, database_url)
    later = datetime.now(UTC) + timedelta(days=1)

    await clear(sandboxes, pair.store)
    orders = await held_until_waited_for(
        budgeted,
        engine,
        (pair.store,),
        run_order_resync(budgeted, pair, later, client=temporal_client),
    )
    assert orders.started == 0
    await assert_drawn_from_the_budget(sandboxes, pair.store)

    await clear(sandboxes, pair.erp)
    products = await held_until_waited_for(
        budgeted,
        engine,
        (pair.erp,),
        run_catalog_resync(budgeted, pair, later, client=temporal_client),
    )
    assert products.started == 0
    await assert_drawn_from_the_budget(sandboxes, pair.erp)
