"""Fixtures of the order tests (helpers live in order_stack.py)."""

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
    point_webhooks,
    stack_settings,
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'commerce-sync.db'}"


@pytest.fixture
async def stack(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    sqlite_url: str,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    target = temporal_client.service_client.config.target_host
    settings = stack_settings(sandbox_url, sqlite_url, tmp_path, target)
    api = BackgroundServer(create_app(settings)).start()
    worker = RunningWorker(temporal_client, settings)
    await point_webhooks(sandboxes, settings, api.url)
    try:
        async with httpx.AsyncClient(timeout=15.0) as http:
            yield Stack(settings, api.url, temporal_client, sandboxes, http, sqlite_url)
    finally:
        await worker.close()
        api.stop()
