"""Fixtures of the inventory push tests: the whole stack (real Temporal dev server, a
worker, the API as a real HTTP server, sandboxes delivering webhooks to it), built from
the order tests' helpers (`tests.integration.orders.order_stack`), with a pairs file
whose pushes gather and retry within seconds and whose every store order waits for
approval (so it stays out of the ERP until a test says otherwise)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from commerce_sync.api.app import create_app
from sandboxes.server import BackgroundServer
from tests.integration.inventory.inventory_stack import (
    InventoryStack,
    pairs_file_for_tests,
)
from tests.integration.orders.order_stack import (
    RunningWorker,
    Stack,
    forget_inventory_runs,
    point_webhooks,
    stack_settings,
)


@pytest.fixture
async def inventory(
    request: pytest.FixtureRequest,
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    tmp_path: Path,
) -> AsyncIterator[InventoryStack]:
    """The stack; `@pytest.mark.parametrize("inventory", [{...}], indirect=True)` sets
    more `inventory` rules of every pair (e.g. `{"cycles_per_run": 2}`)."""
    await forget_inventory_runs(temporal_client)
    database_url = f"sqlite:///{tmp_path / 'commerce-sync.db'}"
    target = temporal_client.service_client.config.target_host
    rules: dict[str, int | str] = getattr(request, "param", {})
    settings = stack_settings(sandbox_url, database_url, tmp_path, target).model_copy(
        update={"pairs_file": pairs_file_for_tests(tmp_path, rules)}
    )
    api = BackgroundServer(create_app(settings)).start()
    worker = RunningWorker(temporal_client, settings)
    await point_webhooks(sandboxes, settings, api.url)
    try:
        async with httpx.AsyncClient(timeout=30.0) as http:
            stack = Stack(settings, api.url, temporal_client, sandboxes, http, database_url)
            yield InventoryStack(stack)
    finally:
        await forget_inventory_runs(temporal_client)
        await worker.close()
        api.stop()
