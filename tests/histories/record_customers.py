"""Record the customer merge and sync histories that tests/unit/test_replay.py replays.

Self-contained: it starts its own Temporal dev server, sandboxes, API and worker on
free ports (the customer tests' stack), so it needs nothing running:

    .venv/bin/python -m tests.histories.record_customers

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
import uuid
from datetime import UTC, datetime
from pathlib import Path

from tests.histories.in_process_stack import run_recorder, save
from tests.integration.customers.customer_views import (
    PAIRS,
    closed_run,
    erp_duplicates,
    last_run,
    merge_run,
    start_merge,
    synced_customer,
)
from tests.integration.orders.order_stack import Stack, eventually

HERE = Path(__file__).parent


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
    async def record_all(stack: Stack) -> None:
        for pair in PAIRS:
            await record_pair(stack, pair)

    await run_recorder(record_all)


if __name__ == "__main__":
    asyncio.run(main())
