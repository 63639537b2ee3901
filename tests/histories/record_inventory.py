"""Record the inventory push histories that tests/unit/test_replay.py replays.

Self-contained: it starts its own Temporal dev server, sandboxes, API and worker on
free ports (the inventory tests' stack, with their pairs file: pushes that gather and
retry within seconds, every store order held for approval), so it needs nothing running:

    .venv/bin/python -m tests.histories.record_inventory

Per pair, each scenario in a fresh `inventory:{pair}` run (the one before it ended):
`pushed` (an ERP stock webhook gathered and pushed), `rejected` (a SKU the store refuses:
a dead letter), `read-failed` (the ERP read fails, nothing is pushed, the retry pushes),
`held-back` (store orders not in the ERP held back, one placed mid-push corrected, then
released once approved), `unchanged` (`pushed`, then the same SKU again: the store has
it already, so nothing is written and the store's orders are listed once), `rejected-resolved` (a SKU refused, then sold again by the store
and written by the next push, which resolves its dead letter; two pushes: the run
continues as new); for kentico-brightpearl also `continued` (the run that continued as
new, two cycles per run) and the schedule tick. Each is written as
`tests/histories/InventoryPush-<pair>-<scenario>.json` (the runs go on: a history
replays as far as it goes). Re-record after a deliberate, patched change to the
workflow; keep the old files, so runs started before the change are still shown to
replay: name the scenarios to record (`python -m tests.histories.record_inventory
rejected-resolved --suffix v2` writes `InventoryPush-<pair>-rejected-resolved-v2(-<n>).json`);
it will not replace an existing file without `--overwrite`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.client import Client

from commerce_sync.commands.inventory_control import ensure_schedules, schedule_ids
from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import Settings
from commerce_sync.systems.kentico.client import KenticoClient
from commerce_sync.systems.xcart.client import XCartClient
from sandboxes.server import (
    SANDBOX_SYSTEMS,
)
from tests.histories.in_process_stack import run_recorder
from tests.integration.inventory.bulk import create_in_store
from tests.integration.inventory.inventory_stack import (
    PAIRS,
    InventoryStack,
    approve,
    pairs_file_for_tests,
)
from tests.integration.orders.order_stack import (
    Stack,
    eventually,
    forget_inventory_runs,
)

HERE = Path(__file__).parent

READ_FAILS = {
    "brightpearl": {"match": "GET */warehouse-service/product-availability/*", "status": 500},
    "acumatica": {"match": "PUT */InventoryQuantityAvailable*", "status": 500},
}
SLOW_STOCK_WRITE = {
    "kentico": {"match": "PUT /rest/ecommerce.sku/*", "delay_s": 4, "count": 1},
    "xcart": {"match": "PUT /admin.php?*_path=product", "delay_s": 4, "count": 1},
}


async def save(client: Client, workflow_id: str, name: str, run_id: str | None = None) -> None:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    text = json.dumps(history.to_json_dict(), indent=1) + "\n"
    if "binary/encrypted" in text:  # the replay test has no codec keys
        raise SystemExit(f"{workflow_id}: encrypted payloads")
    (HERE / f"{name}.json").write_text(text)
    print(f"recorded {workflow_id} -> {name}.json ({len(history.events)} events)")


async def idle(inventory: InventoryStack, pair: str) -> None:
    await inventory.wait_status(
        pair, "the push idle", lambda s: s.state == "idle" and s.pending == 0
    )


async def push(inventory: InventoryStack, pair: str, skus: list[str]) -> None:
    response = await inventory.http.post(
        f"{inventory.stack.api}/inventory/{pair}/push",
        json={"skus": skus},
        headers=inventory.headers(),
    )
    response.raise_for_status()
    await inventory.wait_request(pair, response.json()["request_id"])


async def remove_from_store(inventory: InventoryStack, store: str, sku: str) -> None:
    settings = inventory.stack.settings
    state = await inventory.stack.state_of(store)
    if store == "kentico":
        row = next(r for r in state["ecommerce.sku"] if r["SKUNumber"] == sku)
        async with KenticoClient(settings.kentico) as kentico:
            await kentico.delete_product(row["SKUID"])
    else:
        product = next(p for p in state["products"] if p["sku"] == sku)
        async with XCartClient(settings.xcart) as xcart:
            await xcart.delete_product(product["product_id"])


async def settled(client: Client, workflow_id: str) -> None:
    """Until the latest run has nothing in flight (no workflow task, no activity), so a
    run that has just continued as new is saved as far as it gets on its own."""
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(300):
        raw = (await handle.describe()).raw_description
        if not raw.pending_activities and not raw.HasField("pending_workflow_task"):
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"{workflow_id} never settled")


async def save_chain(client: Client, workflow_id: str, name: str) -> None:
    """The latest run and every run it continued from: `name.json` when there is one,
    `name-1.json` (the first) .. `name-N.json` when the scenario continued as new."""
    await settled(client, workflow_id)
    runs: list[str | None] = [None]
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=runs[-1]).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            break
        runs.append(started.continued_execution_run_id)
    if len(runs) == 1:
        await save(client, workflow_id, name)
        return
    for number, run_id in enumerate(reversed(runs), start=1):
        await save(client, workflow_id, f"{name}-{number}", run_id=run_id)


Steps = Callable[[InventoryStack, str], Awaitable[None]]


async def scenario(
    inventory: InventoryStack, pair: str, name: str, steps: Steps, suffix: str = ""
) -> None:
    """One scenario in a fresh run, saved as it stands when the steps are done."""
    await forget_inventory_runs(inventory.client)
    await steps(inventory, pair)
    saved = f"InventoryPush-{pair}-{name}" + (f"-{suffix}" if suffix else "")
    await save_chain(inventory.client, f"inventory:{pair}", saved)


async def landed(inventory: InventoryStack, pair: str, sku: str, available: int) -> None:
    expected = inventory.sellable(pair, available)

    async def check() -> bool:
        return await inventory.store_stock(pair, sku) == expected

    await eventually(check, what=f"{sku} at {expected}")


async def pushed(inventory: InventoryStack, pair: str) -> None:
    await inventory.set_erp_stock(pair, "WIDGET-3", 37)
    await landed(inventory, pair, "WIDGET-3", 37)
    await idle(inventory, pair)


async def unchanged(inventory: InventoryStack, pair: str) -> None:
    """A push whose SKU the store already has at the ERP's quantity writes nothing and
    does not list the store's orders a second time (`verify-only-written-skus`)."""
    await pushed(inventory, pair)
    await push(inventory, pair, ["WIDGET-3"])
    await idle(inventory, pair)


async def rejected(inventory: InventoryStack, pair: str) -> None:
    await remove_from_store(inventory, PAIRS[pair][0], "WIDGET-5")
    await push(inventory, pair, ["WIDGET-4", "WIDGET-5"])


async def rejected_resolved(inventory: InventoryStack, pair: str) -> None:
    await rejected(inventory, pair)
    await create_in_store(inventory.stack.settings, PAIRS[pair][0], ["WIDGET-5"], amount=0)
    await push(inventory, pair, ["WIDGET-5"])
    await landed(inventory, pair, "WIDGET-5", 100)
    letters = inventory.dead_letters(pair)
    assert [(each.business_key, each.status) for each in letters] == [
        (f"inventory:{pair}:WIDGET-5", "resolved")
    ], letters


async def read_failed(inventory: InventoryStack, pair: str) -> None:
    erp = PAIRS[pair][1]
    await inventory.fault(erp, READ_FAILS[erp])
    await inventory.set_erp_stock(pair, "WIDGET-7", 40)
    await inventory.wait_status(pair, "a failed read", lambda s: s.retrying >= 1)
    await inventory.clear_faults(erp)
    await landed(inventory, pair, "WIDGET-7", 40)
    await idle(inventory, pair)


async def held_back(inventory: InventoryStack, pair: str) -> None:
    stack, store = inventory.stack, PAIRS[pair][0]
    early = await stack.place_order(store, lines=[{"sku": "WIDGET-2", "quantity": 3}])
    await stack.wait_state(pair, early, "awaiting_approval")
    await inventory.fault(store, SLOW_STOCK_WRITE[store])
    await inventory.set_erp_stock(pair, "WIDGET-2", 40)
    await eventually(lambda: inventory.fault_hits(store), what="the slow write")
    late = await stack.place_order(store, lines=[{"sku": "WIDGET-2", "quantity": 5}])
    await stack.wait_state(pair, late, "awaiting_approval")
    await inventory.wait_status(
        pair, "the correction", lambda s: s.totals.corrected >= 1 and s.state == "idle"
    )
    for order_id in (early, late):
        await approve(inventory, pair, order_id)
    await inventory.wait_status(
        pair, "holds released", lambda s: not s.reserved and s.state == "idle"
    )


async def echoed(inventory: InventoryStack, pair: str) -> None:
    """A SKU pushed in full, an order of it reaching the ERP (its echo: no store call,
    `skip-the-store-for-echoes-of-linked-orders`), then a count no order explains (a full
    cycle again)."""
    stack, store = inventory.stack, PAIRS[pair][0]
    await inventory.set_erp_stock(pair, "WIDGET-5", 30)
    await landed(inventory, pair, "WIDGET-5", 30)
    await idle(inventory, pair)
    order = await stack.place_order(store, lines=[{"sku": "WIDGET-5", "quantity": 2}])
    await stack.wait_state(pair, order, "awaiting_approval")
    await approve(inventory, pair, order)
    await inventory.wait_status(pair, "the echo", lambda s: s.totals.echoes == 1 and s.pending == 0)
    await inventory.set_erp_stock(pair, "WIDGET-5", 24)
    await landed(inventory, pair, "WIDGET-5", 22)
    await idle(inventory, pair)


SCENARIOS: dict[str, Steps] = {
    "pushed": pushed,
    "rejected": rejected,
    "read-failed": read_failed,
    "held-back": held_back,
    "rejected-resolved": rejected_resolved,
    "unchanged": unchanged,
    "echoed": echoed,
}


async def record(inventory: InventoryStack, names: list[str], suffix: str = "") -> None:
    for pair in PAIRS:
        for name, steps in SCENARIOS.items():
            if name not in names:
                continue
            for system in SANDBOX_SYSTEMS:
                reset = await inventory.sandbox.post(f"/{system}/_sandbox/reset")
                reset.raise_for_status()
            await scenario(inventory, pair, name, steps, suffix)


async def record_continued(inventory: InventoryStack) -> None:
    """Two cycles per run (the stack's pairs file): the third push is in the next run."""
    pair = "kentico-brightpearl"
    await forget_inventory_runs(inventory.client)
    for skus in (["WIDGET-4"], ["WIDGET-5"], ["WIDGET-6"]):
        await push(inventory, pair, skus)
    status = await inventory.wait_status(pair, "a second run", lambda s: s.run >= 1)
    assert status.run == 1
    await save_chain(inventory.client, f"inventory:{pair}", f"InventoryPush-{pair}-continued")

    pairs = load_pairs(inventory.stack.settings.pairs_file)
    await ensure_schedules(inventory.client, pairs.values(), inventory.stack.settings.task_queue)
    incremental, _ = schedule_ids(pair)
    try:
        await inventory.client.get_schedule_handle(incremental).trigger()
        status = await inventory.wait_status(
            pair,
            "the tick's push",
            lambda s: any(r.requested_by == "schedule" and r.phase == "done" for r in s.recent),
        )
        tick = next(r.request_id for r in status.recent if r.requested_by == "schedule")
        await save(inventory.client, tick, "InventoryScheduleTick")
    finally:
        for schedule_id in [i for p in PAIRS for i in schedule_ids(p)]:
            await inventory.client.get_schedule_handle(schedule_id).delete()


async def main(names: list[str], suffix: str = "") -> None:
    def two_cycles_per_run(settings: Settings, tmp: Path) -> Settings:
        pairs_file = pairs_file_for_tests(tmp, {"cycles_per_run": 2})
        return settings.model_copy(update={"pairs_file": pairs_file})

    async def record_all(stack: Stack) -> None:
        inventory = InventoryStack(stack)
        try:
            if "continued" in names:
                await record_continued(inventory)
            await record(inventory, names, suffix)
        finally:
            await forget_inventory_runs(stack.client)

    await run_recorder(record_all, two_cycles_per_run)


def recorded(name: str) -> list[str]:
    """The files of a scenario that exist: `InventoryPush-<pair>-<name>(-<n>).json`."""
    return [
        path.name
        for pair in PAIRS
        for path in sorted(HERE.glob(f"InventoryPush-{pair}-{name}*.json"))
        if re.fullmatch(rf"InventoryPush-{re.escape(pair)}-{re.escape(name)}(-\d+)?", path.stem)
    ]


if __name__ == "__main__":
    everything = ["continued", *SCENARIOS]
    parser = argparse.ArgumentParser(description="Record inventory push histories.")
    parser.add_argument(
        "scenarios",
        nargs="*",
        choices=everything,
        metavar="SCENARIO",
        help=f"what to record (default: all of {' '.join(everything)})",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument(
        "--suffix",
        default="",
        help="name the files <scenario>-<suffix> (a change's new histories beside the old)",
    )
    args = parser.parse_args()
    names = args.scenarios or everything
    if args.suffix and "continued" in names:
        sys.exit("--suffix names the per-pair scenarios' files, not 'continued'")
    tagged = [f"{name}-{args.suffix}" if args.suffix else name for name in names]
    existing = [file for name in tagged for file in recorded(name)]
    if existing and not args.overwrite:
        sys.exit(
            f"{existing[0]} and {len(existing) - 1} more exist: old histories prove older runs"
            " replay; record new scenarios, or give --overwrite"
        )
    asyncio.run(main(names, args.suffix))
