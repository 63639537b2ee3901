"""Record the customer merge and sync histories that tests/unit/test_replay.py replays.

Self-contained: it starts its own Temporal dev server, sandboxes, API and worker on
free ports (the customer tests' stack), so it needs nothing running:

    .venv/bin/python tests/histories/record_customers.py

Per pair: an ERP merge through the API (`CustomerMerge-<pair>-merged`), one whose
deactivation the ERP refuses for good (`-compensated`: every record written back, a dead
letter, the run failed), a store change written to the ERP (`CustomerSync-<pair>-store-
change`), the ERP event that write raised, dropped as an echo (`CustomerSync-<pair>-echo`),
a store change the ERP refuses for good (`CustomerSync-<pair>-failed`: a dead letter, the
run failed), and a store registration whose e-mail is an existing shopper's plus-address,
which merges them (`CustomerSync-<pair>-merged-duplicate`, a child `CustomerMerge`). Re-record
after a deliberate, patched change to the workflows; keep the old files.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

HERE = Path(__file__).parent
sys.path[:0] = [
    str(HERE.parent / "integration" / "orders"),
    str(HERE.parent / "integration" / "customers"),
]

from customer_views import (  # noqa: E402
    PAIRS,
    closed_run,
    erp_duplicates,
    last_run,
    merge_run,
    start_merge,
    synced_customer,
)
from order_stack import RunningWorker, Stack, eventually, point_webhooks, stack_settings  # noqa: E402

from commerce_sync.api.app import create_app  # noqa: E402
from commerce_sync.config.settings import Settings  # noqa: E402
from commerce_sync.systems.sandbox_server import (  # noqa: E402
    SANDBOX_SYSTEMS,
    BackgroundServer,
    create_sandbox_app,
)
from commerce_sync.workflows import search_attributes  # noqa: E402


async def save(stack: Stack, workflow_id: str, name: str) -> None:
    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    (HERE / f"{name}.json").write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
    print(f"recorded {workflow_id} -> {name}.json ({len(history.events)} events)")


async def record_pair(stack: Stack, pair: str) -> None:
    view, _email, survivor, duplicate, _order = await erp_duplicates(stack, pair)
    try:
        since = await start_merge(stack, view.system, survivor, [duplicate])
        run = await merge_run(stack, view.system, survivor, since)
        assert run["run_status"] == "COMPLETED", run
        await save(
            stack, f"customer-merge:{view.system}:{survivor}", f"CustomerMerge-{pair}-merged"
        )
    finally:
        await view.aclose()

    view, _email, survivor, duplicate, order = await erp_duplicates(stack, pair)
    try:
        rule = view.fault("deactivate", order, duplicate)
        (await stack.sandbox.post(f"/{view.system}/_sandbox/faults", json=rule)).raise_for_status()
        since = await start_merge(stack, view.system, survivor, [duplicate])
        run = await merge_run(stack, view.system, survivor, since)
        assert run["run_status"] == "FAILED", run
        await save(
            stack, f"customer-merge:{view.system}:{survivor}", f"CustomerMerge-{pair}-compensated"
        )
    finally:
        await view.aclose()

    _email, store_id, erp_id = await synced_customer(stack, pair)
    since = datetime.now(UTC)
    edit = {"phone": "555 0199"}
    answer = await stack.sandbox.put(f"/{view.store}/_sandbox/customers/{store_id}", json=edit)
    answer.raise_for_status()
    store_run = f"customer:{pair}:{store_id}"
    await last_run(stack, store_run, since, lambda r: r["writes"] == 1)
    await save(stack, store_run, f"CustomerSync-{pair}-store-change")
    echo_run = f"customer:{pair}:erp:{erp_id}"
    await last_run(stack, echo_run, since, lambda r: r["echoes_dropped"] == 1)
    await save(stack, echo_run, f"CustomerSync-{pair}-echo")

    since = datetime.now(UTC)
    refuse = {"match": view.write_path(erp_id), "status": 400, "count": 1}
    (await stack.sandbox.post(f"/{view.system}/_sandbox/faults", json=refuse)).raise_for_status()
    answer = await stack.sandbox.put(
        f"/{view.store}/_sandbox/customers/{store_id}", json={"phone": "555 0111"}
    )
    answer.raise_for_status()
    failed = await closed_run(stack, store_run, since)
    assert failed.status is not None and failed.status.name == "FAILED", failed.status
    await save(stack, store_run, f"CustomerSync-{pair}-failed")

    base = f"dup-{uuid.uuid4().hex[:8]}"
    ids = []
    for email in (f"{base}+news@example.com", f"{base}@example.com"):
        answer = await stack.sandbox.post(
            f"/{view.store}/_sandbox/customers",
            json={"email": email, "first_name": "Kim", "last_name": "Ode"},
        )
        answer.raise_for_status()
        ids.append(answer.json()["id"])
    run = await merge_run(stack, view.store, ids[0], since)
    assert run["run_status"] == "COMPLETED", run

    async def parent() -> str | None:
        for store_id in reversed(ids):
            handle = stack.client.get_workflow_handle(f"customer:{pair}:{store_id}")
            described = await handle.describe()
            if described.status is None or described.status.name != "COMPLETED":
                continue
            if (await handle.result())["merges"]:
                return handle.id
        return None

    merged_by = await eventually(parent, 30, "the sync run that started the merge")
    await save(stack, merged_by, f"CustomerSync-{pair}-merged-duplicate")


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
            settings = stack_settings(sandbox.url, f"sqlite:///{tmp}/cs.db", Path(tmp), target)
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
                    for pair in PAIRS:
                        await record_pair(stack, pair)
            finally:
                await worker.close()
                api.stop()
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
