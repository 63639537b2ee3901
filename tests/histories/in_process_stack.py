"""The in-process stack the catalog, returns, customers and inventory recorders drive: a throw-away
Temporal dev server (no codec: the histories must replay without keys), the sandboxes,
the API and a worker, all reset and wired up; and `save`, which writes one history.
The Acumatica sandbox's answers are validated against its OpenAPI definition here too
(tests/contracts/acumatica_openapi.py): a recording that saw one outside it fails.

The recorders import the test helpers from the `tests.integration` packages, as the tests
do, so they run as modules from the repository root (`python -m tests.histories.record_...`).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from commerce_sync.api.app import create_app
from commerce_sync.config.settings import Settings
from commerce_sync.contracts import search_attributes
from sandboxes.server import (
    SANDBOX_SYSTEMS,
    BackgroundServer,
    create_sandbox_app,
)
from tests.contracts.acumatica_openapi import REPORT, AcumaticaContract, OpenAPICheck
from tests.integration.orders.order_stack import (
    RunningWorker,
    Stack,
    point_webhooks,
    stack_settings,
)

HERE = Path(__file__).parent


async def save(stack: Stack, workflow_id: str, name: str) -> None:
    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    (HERE / f"{name}.json").write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
    print(f"recorded {workflow_id} -> {name}.json ({len(history.events)} events)")


async def run_recorder(
    record: Callable[[Stack], Awaitable[None]],
    adjust: Callable[[Settings, Path], Settings] = lambda settings, _: settings,
) -> None:
    """Start everything, call `record(stack)`, stop everything; `adjust` may change the
    stack's settings (a pairs file of the recorder's own, say) before anything starts."""
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
            BackgroundServer(
                OpenAPICheck(
                    create_sandbox_app(Settings(_env_file=None)), AcumaticaContract.load(), REPORT
                )
            ) as sandbox,
        ):
            target = env.client.service_client.config.target_host
            settings = adjust(
                stack_settings(sandbox.url, f"sqlite:///{tmp}/cs.db", Path(tmp), target), Path(tmp)
            )
            api = BackgroundServer(create_app(settings)).start()
            worker = RunningWorker(env.client, settings)
            try:
                async with (
                    httpx.AsyncClient(base_url=sandbox.url, timeout=10.0) as control,
                    httpx.AsyncClient(timeout=30.0) as http,
                ):
                    for system in SANDBOX_SYSTEMS:
                        (await control.post(f"/{system}/_sandbox/reset")).raise_for_status()
                    await point_webhooks(control, settings, api.url)
                    stack = Stack(
                        settings, api.url, env.client, control, http, settings.database_url or ""
                    )
                    await record(stack)
                # A history recorded from answers Acumatica would not give is no history.
                outside = REPORT.unclaimed()
                assert not outside, (
                    "Acumatica sandbox answers outside its OpenAPI definition:\n"
                    + ("\n".join(map(str, outside)))
                )
            finally:
                await worker.close()
                api.stop()
    finally:
        await env.shutdown()
