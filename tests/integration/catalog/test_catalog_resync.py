"""`resync catalog` syncs the ERP products whose webhooks were lost: a run for every
product changed since `--since` (and none for older ones), the products reach the
store, and a second resync starts runs that find everything up to date and write
nothing. Both pairs, real dev server and sandboxes; the ERP's webhooks are pointed at a
closed port. Plus the command itself as a subprocess, and its one-line refusals."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from commerce_sync.commands.catalog_resync import run_catalog_resync
from commerce_sync.commands.resync import Outcome
from commerce_sync.config.pairs import load_pairs
from sandboxes.server import bind_socket
from tests.integration.catalog.catalog_views import (
    catalog_run,
    erp_create,
    new_sku,
    product_requests,
    store_products,
    wait_run,
)
from tests.integration.orders.order_stack import PAIRS, Stack, eventually

COMPLETED = WorkflowExecutionStatus.COMPLETED
Json = dict[str, Any]


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    sock = bind_socket("127.0.0.1", 0)
    port: int = sock.getsockname()[1]
    sock.close()
    return port


async def silence_erp_webhooks(stack: Stack, erp: str) -> None:
    """Point the ERP's webhooks at nothing: events are fired, never delivered."""
    hooks = stack.settings.webhooks
    url = f"http://127.0.0.1:{closed_port()}/webhooks/{erp}"
    if erp == "brightpearl":
        assert hooks.brightpearl_token is not None
        target: Json = {"url": url, "token": hooks.brightpearl_token.get_secret_value()}
    else:
        assert hooks.acumatica_token is not None
        target = {
            "url": url,
            "header_name": "X-Commerce-Sync-Token",
            "header_value": hooks.acumatica_token.get_secret_value(),
        }
    response = await stack.sandbox.post(
        f"/{erp}/_sandbox/webhooks", json=target | {"max_attempts": 1}
    )
    response.raise_for_status()


async def undelivered(stack: Stack, erp: str, event_id: str) -> bool:
    events = (await stack.sandbox.get(f"/{erp}/_sandbox/events")).json()["events"]
    event = next(e for e in events if e["id"] == event_id)
    return bool(event["attempts"] >= 1 and event["last_error"] and not event["delivered"])


async def lost_creates(stack: Stack, erp: str, count: int) -> list[str]:
    """`count` new ERP products whose webhooks fail; returns their SKUs."""
    skus = []
    for index in range(count):
        sku = new_sku()
        made = await erp_create(
            stack, erp, sku, name=f"Lost Lamp {index}", description="", price=f"{10 + index}.00"
        )
        await eventually(partial(undelivered, stack, erp, made["event_id"]), 30, "failed delivery")
        skus.append(sku)
    return skus


@dataclass
class Recorder:
    """A `ResyncProgress` that keeps what it was told."""

    listed_total: int = 0
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def listed(self, count: int) -> None:
        self.listed_total += count

    def handled(self, sku: str, outcome: Outcome) -> None:
        assert sku not in self.outcomes, f"{sku} handled twice"
        self.outcomes[sku] = outcome


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_resync_catalog_starts_runs_for_the_changed_products(stack: Stack, pair: str) -> None:
    store, erp = PAIRS[pair]
    pair_config = load_pairs(stack.settings.pairs_file)[pair]
    await silence_erp_webhooks(stack, erp)
    [older] = await lost_creates(stack, erp, 1)
    await asyncio.sleep(0.01)  # the ERPs stamp changes in milliseconds: `since` is after `older`
    since = datetime.now(UTC)
    lost = await lost_creates(stack, erp, 2)
    for sku in [older, *lost]:
        assert await catalog_run(stack, pair, sku) is None

    progress = Recorder()
    summary = await run_catalog_resync(
        stack.settings, pair_config, since, progress=progress, client=stack.client
    )
    assert (summary.seen, summary.started) == (2, 2)
    assert progress.listed_total == 2
    assert progress.outcomes == {sku: Outcome.STARTED for sku in lost}

    first_runs = {}
    for index, sku in enumerate(lost):
        run = await wait_run(stack, pair, sku, "synced", COMPLETED)
        assert run.state["action"] == "created"
        first_runs[sku] = run.run_id
        [product] = await store_products(stack, store, sku)
        assert (product.name, product.price) == (f"Lost Lamp {index}", Decimal(f"{10 + index}.00"))
    assert await catalog_run(stack, pair, older) is None
    assert await store_products(stack, store, older) == []

    # Again: every changed product is looked at once more, and nothing is written.
    summary = await run_catalog_resync(stack.settings, pair_config, since, client=stack.client)
    assert (summary.seen, summary.started) == (2, 2)
    for sku in lost:
        run = await wait_run(stack, pair, sku, "synced", COMPLETED, after_run=first_runs[sku])
        assert run.state["action"] == "unchanged"
        assert len(await store_products(stack, store, sku)) == 1
    assert len(await product_requests(stack, store, "POST")) == 2
    assert len(await product_requests(stack, store, "PUT")) == 2  # the two publishes


def cli_env(stack: Stack, tmp_path: Path) -> dict[str, str]:
    settings = stack.settings
    assert settings.temporal_address is not None
    return {
        **os.environ,
        "COMMERCE_SYNC_TEMPORAL_ADDRESS": settings.temporal_address,
        "COMMERCE_SYNC_TASK_QUEUE": settings.task_queue,
        "COMMERCE_SYNC_DATA_DIR": str(tmp_path / "cli-data"),
        "COMMERCE_SYNC_BRIGHTPEARL__BASE_URL": settings.brightpearl.base_url,
        "COMMERCE_SYNC_ACUMATICA__BASE_URL": settings.acumatica.base_url,
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


async def test_resync_catalog_command(stack: Stack, tmp_path: Path) -> None:
    pair, (store, erp) = "kentico-brightpearl", PAIRS["kentico-brightpearl"]
    env = cli_env(stack, tmp_path)
    await silence_erp_webhooks(stack, erp)
    since = datetime.now(UTC).isoformat()
    [sku] = await lost_creates(stack, erp, 1)

    code, out, err = await run_cli(
        env, tmp_path, "resync", "catalog", "--pair", pair, "--since", since
    )
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "seen 1 changed products, started or re-synced 1"
    await wait_run(stack, pair, sku, "synced", COMPLETED)
    assert len(await store_products(stack, store, sku)) == 1

    code, out, err = await run_cli(
        env, tmp_path, "resync", "catalog", "--pair", pair, "--since", "yesterday-ish"
    )
    assert code != 0
    assert out == ""
    assert err.strip().splitlines() == [
        "error: --since: 'yesterday-ish' is not an ISO-8601 time (e.g. 2026-11-22T10:00:00Z)"
    ]

    code, out, err = await run_cli(env, tmp_path, "resync", "catalog")
    assert code != 0
    assert err.strip().splitlines() == [
        "error: --pair is required (one of: kentico-brightpearl, xcart-acumatica)"
    ]

    unreachable = env | {
        "COMMERCE_SYNC_BRIGHTPEARL__BASE_URL": f"http://127.0.0.1:{closed_port()}/brightpearl"
    }
    code, out, err = await run_cli(
        unreachable, tmp_path, "resync", "catalog", "--pair", pair, "--since", since
    )
    assert code != 0
    [line] = err.strip().splitlines()
    assert line.startswith("error: ERP brightpearl") and "ConnectError" in line
