"""`commerce-sync resync inventory --pair P [--since ISO]` as a subprocess against the real
stack: it asks the pair's push run for a push, follows it, and ends with one line."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.inventory.inventory_stack import PAIRS, InventoryStack


def cli_env(inventory: InventoryStack, tmp_path: Path) -> dict[str, str]:
    settings = inventory.stack.settings
    assert settings.temporal_address is not None and settings.pairs_file is not None
    return {
        **os.environ,
        "COMMERCE_SYNC_TEMPORAL_ADDRESS": settings.temporal_address,
        "COMMERCE_SYNC_TASK_QUEUE": settings.task_queue,
        "COMMERCE_SYNC_PAIRS_FILE": str(settings.pairs_file),
        "COMMERCE_SYNC_DATA_DIR": str(tmp_path / "cli-data"),
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
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_resync_inventory_pushes_every_sku_then_the_changed_ones(
    inventory: InventoryStack, pair: str, tmp_path: Path
) -> None:
    erp = PAIRS[pair][1]
    env = cli_env(inventory, tmp_path)
    await inventory.hold_webhooks(erp)  # the ERP's webhooks are lost: only resync helps
    await inventory.set_erp_stock(pair, "WIDGET-1", 60)

    code, out, err = await run_cli(env, tmp_path, "resync", "inventory", "--pair", pair)
    assert code == 0, err
    assert out.strip().splitlines()[-1] == (
        f"inventory {pair}: done, 10 of 10 SKUs: written 10, unchanged 0, "
        "refused by the store 0 (dead letters), not in the ERP 0"
    )
    assert await inventory.store_stock(pair, "WIDGET-1") == inventory.sellable(pair, 60)
    assert await inventory.store_stock(pair, "WIDGET-2") == inventory.sellable(pair, 100)

    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    await inventory.set_erp_stock(pair, "WIDGET-2", 61)
    code, out, err = await run_cli(
        env, tmp_path, "resync", "inventory", "--pair", pair, "--since", since
    )
    assert code == 0, err
    assert (
        out.strip().splitlines()[-1].startswith(f"inventory {pair}: done, 1 of 1 SKUs: written 1")
    )
    assert await inventory.store_stock(pair, "WIDGET-2") == inventory.sellable(pair, 61)
    status = await inventory.status(pair)
    assert status is not None
    assert [(r.requested_by, r.mode, r.total) for r in status.recent] == [
        ("resync", "changed", 1),
        ("resync", "all", 10),
    ]


async def test_resync_inventory_refuses_bad_input_in_one_line(
    inventory: InventoryStack, tmp_path: Path
) -> None:
    env = cli_env(inventory, tmp_path)
    cases = [
        (["--pair", "nope"], "--pair: unknown pair 'nope'"),
        ([], "--pair is required"),
        (["--pair", "xcart-acumatica", "--since", "yesterday"], "--since: 'yesterday'"),
    ]
    for args, expected in cases:
        code, out, err = await run_cli(env, tmp_path, "resync", "inventory", *args)
        assert code == 1 and out == "", (args, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (args, err)
    unreachable = {**env, "COMMERCE_SYNC_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    code, _, err = await run_cli(
        unreachable, tmp_path, "resync", "inventory", "--pair", "xcart-acumatica"
    )
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "Temporal unreachable at 127.0.0.1:1" in err
