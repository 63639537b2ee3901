"""Record the catalog sync histories that tests/unit/test_replay.py replays.

Self-contained: it starts its own Temporal dev server, sandboxes, API and worker on
free ports (the catalog tests' stack), so it needs nothing running:

    .venv/bin/python -m tests.histories.record_catalog

Per pair it drives a product created in the ERP (`created`), then changed
(`updated`), and one whose publish the store refuses for good (`compensated`: the
created product removed, a dead letter, the run failed), and writes each run's history
as `tests/histories/CatalogSync-<pair>-<scenario>-v2.json`, plus the Brightpearl router's
as `CatalogEventRouter-brightpearl-v2.json` (v2: a run that created the product looks
for a twin of it afterwards; the files without the suffix are older runs). Re-record
after a deliberate, patched change to the workflows under a new suffix; keep the old
files, so that runs started before the change are still shown to replay.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus

from commerce_sync.config.settings import Settings
from commerce_sync.contracts.ids import catalog_workflow_id
from tests.histories.in_process_stack import run_recorder, save
from tests.integration.catalog.catalog_views import (
    erp_change,
    erp_create,
    new_sku,
    publish_fault,
    wait_run,
)
from tests.integration.orders.order_stack import (
    PAIRS,
    Stack,
    pairs_file_with,
)

HERE = Path(__file__).parent

COMPLETED = WorkflowExecutionStatus.COMPLETED
FAILED = WorkflowExecutionStatus.FAILED


async def router_of(stack: Stack, catalog_id: str) -> str:
    """The id of the Brightpearl router run that started this catalog run."""
    for _ in range(50):  # visibility is eventually consistent
        async for execution in stack.client.list_workflows("WorkflowType = 'CatalogEventRouter'"):
            handle = stack.client.get_workflow_handle(execution.id)
            if execution.status == COMPLETED and catalog_id in await handle.result():
                return execution.id
        await asyncio.sleep(0.2)
    raise SystemExit(f"no completed router run started {catalog_id}")


async def record(stack: Stack) -> None:
    for pair, (store, erp) in PAIRS.items():
        sku = new_sku()
        await erp_create(
            stack, erp, sku, name="Replay Lamp", description="Recorded.", price="19.00"
        )
        first = await wait_run(stack, pair, sku, "synced", COMPLETED)
        await save(stack, catalog_workflow_id(pair, sku), f"CatalogSync-{pair}-created-v2")
        if erp == "brightpearl":
            router = await router_of(stack, catalog_workflow_id(pair, sku))
            await save(stack, router, "CatalogEventRouter-brightpearl-v2")

        await erp_change(stack, erp, sku, name="Replay Lamp, brass", price="21.00")
        await wait_run(stack, pair, sku, "synced", COMPLETED, after_run=first.run_id)
        await save(stack, catalog_workflow_id(pair, sku), f"CatalogSync-{pair}-updated-v2")

        broken = new_sku()
        (
            await stack.sandbox.post(f"/{store}/_sandbox/faults", json=publish_fault(store))
        ).raise_for_status()
        await erp_create(stack, erp, broken, name="Replay Stool", description="", price="9.00")
        await wait_run(stack, pair, broken, "failed", FAILED)
        (await stack.sandbox.delete(f"/{store}/_sandbox/faults")).raise_for_status()
        await save(stack, catalog_workflow_id(pair, broken), f"CatalogSync-{pair}-compensated-v2")


async def main() -> None:
    def quick_duplicate_check(settings: Settings, tmp: Path) -> Settings:
        return settings.model_copy(update={"pairs_file": pairs_file_with(tmp)})

    await run_recorder(record, quick_duplicate_check)


if __name__ == "__main__":
    asyncio.run(main())
