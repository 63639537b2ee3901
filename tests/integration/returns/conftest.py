"""Fixtures of the return tests: the order tests' whole stack (real Temporal dev server,
a worker, the API as a real HTTP server, sandboxes delivering webhooks to it), built
from the order tests' helpers (`tests.integration.orders.order_stack`), with a pairs file
whose return rules a test may set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from commerce_sync.api.app import create_app
from sandboxes.server import BackgroundServer
from tests.integration.orders.order_stack import (
    RunningWorker,
    Stack,
    end_leftover_runs,
    pairs_file_with,
    point_webhooks,
    stack_settings,
)
from tests.integration.returns.return_stack import ReturnStack


@pytest.fixture
async def returns(
    request: pytest.FixtureRequest,
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    tmp_path: Path,
) -> AsyncIterator[ReturnStack]:
    """The stack; `@pytest.mark.parametrize("returns", [{"window_days": 0}], indirect=True)`
    sets `[pairs.*.returns]` rules of every pair."""
    database_url = f"sqlite:///{tmp_path / 'commerce-sync.db'}"
    target = temporal_client.service_client.config.target_host
    rules: dict[str, int | str] = getattr(request, "param", {})
    settings = stack_settings(sandbox_url, database_url, tmp_path, target).model_copy(
        update={"pairs_file": pairs_file_with(tmp_path, rules)}
    )
    await end_leftover_runs(temporal_client)
    api = BackgroundServer(create_app(settings)).start()
    worker = RunningWorker(temporal_client, settings)
    await point_webhooks(sandboxes, settings, api.url)
    try:
        async with httpx.AsyncClient(timeout=30.0) as http:
            yield ReturnStack(
                Stack(settings, api.url, temporal_client, sandboxes, http, database_url)
            )
    finally:
        await worker.close()
        api.stop()
        await end_leftover_runs(temporal_client, settings.task_queue)
