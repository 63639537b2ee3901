"""`resync orders` starts the order sync runs that lost webhooks should have started:
one run per missing order, nothing for an order whose run exists (going, finished or
failed), nothing new the second time, and the started runs reach the ERP. Both pairs,
real dev server, real sandboxes; the store's webhooks are pointed at a closed port.
Plus the command itself as a subprocess, and its one-line refusals."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from commerce_sync.commands.resync import Outcome, ResyncError, run_order_resync
from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import Settings
from commerce_sync.contracts.ids import order_workflow_id
from sandboxes.server import bind_socket
from tests.integration.orders.order_stack import PAIRS, Stack, eventually, webhooks_nowhere

Json = dict[str, Any]


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    sock = bind_socket("127.0.0.1", 0)
    port: int = sock.getsockname()[1]
    sock.close()
    return port


async def undelivered_event(stack: Stack, store: str, order_id: str) -> Json | None:
    """The store's `order.created` event for this order, once its one attempt failed."""
    events = (await stack.sandbox.get(f"/{store}/_sandbox/events")).json()["events"]
    for event in events:
        if event["type"] == "order.created" and event["subject"] == order_id:
            if event["attempts"] >= 1 and event["last_error"] and not event["delivered"]:
                return dict(event)
    return None


async def erp_sales_orders(stack: Stack, erp: str, store_order_number: str) -> list[Json]:
    state = await stack.state_of(erp)
    if erp == "brightpearl":
        return [
            o
            for o in state["orders"].values()
            if o.get("reference") == store_order_number and o.get("orderTypeCode") == "SO"
        ]
    return [
        o
        for o in state["entities"].get("SalesOrder", [])
        if o.get("CustomerOrder") == store_order_number and o.get("OrderType") == "SO"
    ]


async def run_of(stack: Stack, pair: str, order_id: str) -> tuple[str, WorkflowExecutionStatus]:
    """The (run id, status) of the order's latest run; AssertionError when it has none."""
    handle = stack.client.get_workflow_handle(order_workflow_id(pair, order_id))
    description = await handle.describe()
    assert description.status is not None
    return description.run_id, description.status


async def has_no_run(stack: Stack, pair: str, order_id: str) -> bool:
    try:
        await stack.client.get_workflow_handle(order_workflow_id(pair, order_id)).describe()
    except RPCError as exc:
        return exc.status == RPCStatusCode.NOT_FOUND
    return False


@dataclass
class Recorder:
    """A `ResyncProgress` that keeps what it was told."""

    pages: list[int] = field(default_factory=list)
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def listed(self, count: int) -> None:
        self.pages.append(count)

    def handled(self, order_id: str, outcome: Outcome) -> None:
        assert order_id not in self.outcomes, f"{order_id} handled twice"
        self.outcomes[order_id] = outcome


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_resync_starts_each_missing_run_once_and_they_reach_the_erp(
    stack: Stack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    pair_config = load_pairs(stack.settings.pairs_file)[pair]
    since = datetime.now(UTC) - timedelta(minutes=1)

    # Webhooks delivered: one order syncs and ships (COMPLETED); an operator terminates
    # the run of another (an unsuccessful end, which resync must not undo either).
    shipped = await stack.place_order(store)
    stopped = await stack.place_order(store)
    status = (await stack.wait_state(pair, shipped, "awaiting_shipment"))["status"]
    await stack.ship(
        erp,
        status["erp_order_id"] if erp == "brightpearl" else status["erp_order_number"],
        "1Z999AA10123456784",
    )
    await stack.wait_state(pair, shipped, "shipped", run_status="COMPLETED")
    await stack.wait_state(pair, stopped, "awaiting_shipment")
    await stack.client.get_workflow_handle(order_workflow_id(pair, stopped)).terminate("ops")
    assert (await run_of(stack, pair, stopped))[1] == WorkflowExecutionStatus.TERMINATED

    # Webhooks lost: two orders the store knows and commerce-sync never heard of.
    await webhooks_nowhere(stack.sandbox, stack.settings, store)
    missed = [await stack.place_order(store), await stack.place_order(store)]
    for order_id in missed:
        await eventually(
            partial(undelivered_event, stack, store, order_id),
            what=f"the failed delivery of order {order_id}",
        )
        assert await has_no_run(stack, pair, order_id)
    before = {o: await run_of(stack, pair, o) for o in (shipped, stopped)}

    recorder = Recorder()  # pages of 3: the store's paging is crossed once
    summary = await run_order_resync(
        stack.settings, pair_config, since, progress=recorder, page_size=3
    )

    assert (summary.seen, summary.started, summary.existing) == (4, 2, 2)
    assert summary.unsuccessful == 1
    assert summary.line() == (
        "seen 4, started 2, already running/complete 2 "
        "(1 of them failed, were terminated or timed out: not restarted)"
    )
    assert recorder.pages == [3, 1]
    assert recorder.outcomes == {
        shipped: Outcome.EXISTING,
        stopped: Outcome.UNSUCCESSFUL,
        missed[0]: Outcome.STARTED,
        missed[1]: Outcome.STARTED,
    }
    for order_id, run in before.items():  # existing runs were left alone
        assert await run_of(stack, pair, order_id) == run

    # The started runs are the webhook path's runs: same id, search attributes, outcome.
    for order_id in missed:
        synced = (await stack.wait_state(pair, order_id, "awaiting_shipment"))["status"]
        assert len(await erp_sales_orders(stack, erp, synced["store_order_number"])) == 1
        description = await stack.client.get_workflow_handle(
            order_workflow_id(pair, order_id)
        ).describe()
        attributes = {pair_.key.name: pair_.value for pair_ in description.typed_search_attributes}
        assert attributes["IntegrationPair"] == pair
        assert attributes["StoreOrderId"] == order_id
    started_runs = {o: await run_of(stack, pair, o) for o in missed}

    again = await run_order_resync(stack.settings, pair_config, since)
    assert (again.seen, again.started, again.existing, again.unsuccessful) == (4, 0, 4, 1)
    for order_id, run in {**before, **started_runs}.items():
        assert await run_of(stack, pair, order_id) == run
    for order_id in missed:
        number = (await stack.order_status(pair, order_id) or {})["status"]["store_order_number"]
        assert len(await erp_sales_orders(stack, erp, number)) == 1


async def test_resync_refuses_unreachable_systems_in_one_line(
    settings: Settings, temporal_client: Client
) -> None:
    pair_config = load_pairs(settings.pairs_file)["kentico-brightpearl"]
    since = datetime.now(UTC) - timedelta(hours=1)
    port = closed_port()

    no_temporal = settings.model_copy(update={"temporal_address": f"127.0.0.1:{port}"})
    with pytest.raises(ResyncError) as refused:
        await run_order_resync(no_temporal, pair_config, since)
    assert str(refused.value) == f"Temporal unreachable at 127.0.0.1:{port}: Connection refused"

    kentico = settings.kentico.model_copy(update={"base_url": f"http://127.0.0.1:{port}"})
    no_store = settings.model_copy(
        update={
            "kentico": kentico,
            "temporal_address": temporal_client.service_client.config.target_host,
        }
    )
    with pytest.raises(ResyncError) as refused:
        await run_order_resync(no_store, pair_config, since)
    message = str(refused.value)
    assert message.startswith("store kentico: GET ") and "ConnectError" in message
    assert "\n" not in message


def cli_env(stack: Stack, tmp_path: Path) -> dict[str, str]:
    settings = stack.settings
    assert settings.temporal_address is not None
    return {
        **os.environ,
        "COMMERCE_SYNC_TEMPORAL_ADDRESS": settings.temporal_address,
        "COMMERCE_SYNC_TASK_QUEUE": settings.task_queue,
        "COMMERCE_SYNC_DATA_DIR": str(tmp_path / "cli-data"),
        "COMMERCE_SYNC_KENTICO__BASE_URL": settings.kentico.base_url,
        "COMMERCE_SYNC_XCART__BASE_URL": settings.xcart.base_url,
        "COLUMNS": "200",
    }


async def run_cli(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    """`commerce-sync ARGS` as a subprocess, without blocking the worker's event loop."""
    command = Path(sys.executable).parent / "commerce-sync"
    process = await asyncio.create_subprocess_exec(
        str(command),
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_resync_orders_command(stack: Stack, tmp_path: Path) -> None:
    pair, (store, _) = "xcart-acumatica", PAIRS["xcart-acumatica"]
    env = cli_env(stack, tmp_path)
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    await webhooks_nowhere(stack.sandbox, stack.settings, store)
    order_id = await stack.place_order(store)
    await eventually(lambda: undelivered_event(stack, store, order_id), what="the failed delivery")

    code, out, err = await run_cli(
        env, tmp_path, "resync", "orders", "--pair", pair, "--since", since
    )
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "seen 1, started 1, already running/complete 0"
    await stack.wait_state(pair, order_id, "awaiting_shipment")

    code, out, err = await run_cli(
        env, tmp_path, "resync", "orders", "--pair", pair, "--since", since
    )
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "seen 1, started 0, already running/complete 1"

    code, out, err = await run_cli(
        env, tmp_path, "resync", "orders", "--pair", pair, "--since", "last tuesday"
    )
    assert code != 0
    assert out == ""
    assert err.strip().splitlines() == [
        "error: --since: 'last tuesday' is not an ISO-8601 time (e.g. 2026-11-22T10:00:00Z)"
    ]

    code, out, err = await run_cli(env, tmp_path, "resync", "orders", "--pair", "shopify-sap")
    assert code != 0
    assert err.strip().splitlines() == [
        "error: --pair: unknown pair 'shopify-sap' (known: kentico-brightpearl, xcart-acumatica)"
    ]


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_an_order_cancelled_before_any_run_is_not_synced(stack: Stack, pair: str) -> None:
    """Its webhooks were lost; resync finds it cancelled in the store: nothing reaches the ERP."""
    store, erp = PAIRS[pair]
    since = datetime.now(UTC) - timedelta(minutes=1)
    await webhooks_nowhere(stack.sandbox, stack.settings, store)
    order_id = await stack.place_order(store)
    cancel = await stack.sandbox.post(f"/{store}/_sandbox/orders/{order_id}/cancel")
    assert cancel.status_code in (200, 201), cancel.text
    erp_before = await stack.state_of(erp)

    summary = await run_order_resync(
        stack.settings, load_pairs(stack.settings.pairs_file)[pair], since
    )
    assert summary.started == 1
    done = await stack.wait_state(pair, order_id, "cancelled", run_status="COMPLETED")
    assert [step["name"] for step in done["status"]["steps"]] == ["read order", "cancelled"]
    number = done["status"]["store_order_number"]
    assert await erp_sales_orders(stack, erp, number) == []
    assert await stack.state_of(erp) == erp_before  # no customer, order or payment either
