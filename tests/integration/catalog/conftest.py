"""Fixtures of the catalog sync tests: the whole stack (real Temporal dev server, a worker,
the API as a real HTTP server, sandboxes delivering webhooks to it), built from the
order tests' helpers (`tests.integration.orders.order_stack`)."""

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
    pairs_file_with,
    point_webhooks,
    stack_settings,
)


@pytest.fixture
async def stack(
    request: pytest.FixtureRequest,
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    """`@pytest.mark.parametrize("stack", [{"duplicate_check_after": 12}], indirect=True)`
    sets keys of every pair."""
    database_url = f"sqlite:///{tmp_path / 'commerce-sync.db'}"
    target = temporal_client.service_client.config.target_host
    settings = stack_settings(sandbox_url, database_url, tmp_path, target).model_copy(
        update={"pairs_file": pairs_file_with(tmp_path, getattr(request, "param", {}))}
    )
    api = BackgroundServer(create_app(settings)).start()
    worker = RunningWorker(temporal_client, settings)
    await point_webhooks(sandboxes, settings, api.url)
    try:
        async with httpx.AsyncClient(timeout=15.0) as http:
            yield Stack(settings, api.url, temporal_client, sandboxes, http, database_url)
    finally:
        await worker.close()
        api.stop()
