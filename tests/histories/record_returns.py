"""Record the return sync histories that tests/unit/test_replay.py replays.

Self-contained: it starts its own Temporal dev server, sandboxes, API and worker on
free ports (the return tests' stack), so it needs nothing running:

    .venv/bin/python tests/histories/record_returns.py

Per pair, from a shipped order: a return refunded at once (`refunded`), one over the
approval threshold approved through the API (`approved`), one rejected for asking more
than is left (`rejected`), and one whose refund the ERP refuses for good (`compensated`:
credit and restock undone, a dead letter, the run failed). Each run's history is written
as `tests/histories/ReturnSync-<pair>-<scenario>.json`. Re-record after a deliberate,
patched change to the workflow; keep the old files.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

HERE = Path(__file__).parent
sys.path[:0] = [
    str(HERE.parent / "integration" / "orders"),
    str(HERE.parent / "integration" / "returns"),
]

from order_stack import PAIRS, RunningWorker, Stack, point_webhooks, stack_settings  # noqa: E402
from return_stack import ReturnStack, pairs_file_for_returns  # noqa: E402
from sandbox_views import clear_faults, inject  # noqa: E402

from commerce_sync.api.app import create_app  # noqa: E402
from commerce_sync.api.routing import return_workflow_id  # noqa: E402
from commerce_sync.config.settings import Settings  # noqa: E402
from commerce_sync.systems.sandbox_server import (  # noqa: E402
    SANDBOX_SYSTEMS,
    BackgroundServer,
    create_sandbox_app,
)
from commerce_sync.workflows import search_attributes  # noqa: E402

REFUND_CALL = {
    "brightpearl": "POST */accounting-service/customer-payment",
    "acumatica": "PUT */Payment",
}


async def save(stack: Stack, workflow_id: str, name: str) -> None:
    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    (HERE / f"{name}.json").write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
    print(f"recorded {workflow_id} -> {name}.json ({len(history.events)} events)")


async def record(returns: ReturnStack) -> None:
    stack = returns.stack
    for pair in PAIRS:
        order = await returns.shipped_order(pair, [{"sku": "WIDGET-10", "quantity": 8}])
        line = {"sku": "WIDGET-10", "quantity": 1}
        rma = await returns.request_return(order.store, order.order_id, [line])
        await returns.wait_return(pair, rma, "refunded", run_status="COMPLETED")
        await save(stack, return_workflow_id(pair, rma), f"ReturnSync-{pair}-refunded")

        rma = await returns.request_return(order.store, order.order_id, [{**line, "quantity": 7}])
        await returns.wait_return(pair, rma, "awaiting_approval")
        answer = await stack.http.post(
            f"{stack.api}/returns/{pair}/{rma}/approval",
            json={"approved": True, "by": "ops"},
            headers=stack.headers(),
        )
        answer.raise_for_status()
        await returns.wait_return(pair, rma, "refunded", run_status="COMPLETED")
        await save(stack, return_workflow_id(pair, rma), f"ReturnSync-{pair}-approved")

        rma = await returns.request_return(order.store, order.order_id, [line])
        await returns.wait_return(pair, rma, "rejected", run_status="COMPLETED")
        await save(stack, return_workflow_id(pair, rma), f"ReturnSync-{pair}-rejected")

        other = await returns.shipped_order(pair, [{"sku": "WIDGET-2", "quantity": 1}])
        await inject(stack, other.erp, {"match": REFUND_CALL[other.erp], "status": 400})
        rma = await returns.request_return(
            other.store, other.order_id, [{"sku": "WIDGET-2", "quantity": 1}]
        )
        await returns.wait_return(pair, rma, "failed", run_status="FAILED")
        await clear_faults(stack, other.erp)
        await save(stack, return_workflow_id(pair, rma), f"ReturnSync-{pair}-compensated")


async def main() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=shutil.which("temporal")
        or str(Path(sys.executable).parent / "temporal"),
        search_attributes=list(search_attributes.ALL_KEYS),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_log_level="error",
    )
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            BackgroundServer(create_sandbox_app(Settings(_env_file=None))) as sandbox,
        ):
            target = env.client.service_client.config.target_host
            settings = stack_settings(
                sandbox.url, f"sqlite:///{tmp}/cs.db", Path(tmp), target
            ).model_copy(update={"pairs_file": pairs_file_for_returns(Path(tmp))})
            api = BackgroundServer(create_app(settings)).start()
            worker = RunningWorker(env.client, settings)
            try:
                async with (
                    httpx.AsyncClient(base_url=sandbox.url, timeout=10.0) as control,
                    httpx.AsyncClient(timeout=15.0) as http,
                ):
                    for system in SANDBOX_SYSTEMS:
                        (await control.post(f"/{system}/_sandbox/reset")).raise_for_status()
                    await point_webhooks(control, settings, api.url)
                    stack = Stack(
                        settings, api.url, env.client, control, http, settings.database_url or ""
                    )
                    await record(ReturnStack(stack))
            finally:
                await worker.close()
                api.stop()
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
