"""Fixtures of the customer merge and sync tests: the whole stack (real Temporal dev server, a worker,
the API as a real HTTP server, sandboxes delivering webhooks to it), built from the
order tests' helpers (`tests.integration.orders.order_stack`)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from commerce_sync.api.app import create_app
from commerce_sync.config.pairs import default_pairs_path, load_pairs
from sandboxes.server import BackgroundServer
from tests.integration.orders.order_stack import (
    PAIRS,
    RunningWorker,
    Stack,
    end_leftover_runs,
    point_webhooks,
    stack_settings,
)


@pytest.fixture
def plus_addressing() -> bool:
    """Every pair's `[pairs.*.customers] plus_addressing_is_same_person`; a test changes it
    with `@pytest.mark.parametrize("plus_addressing", [False])`."""
    return True


def pairs_file_with(directory: Path, plus_addressing: bool) -> Path:
    text = default_pairs_path().read_text(encoding="utf-8")
    text, count = re.subn(
        r"(?m)^plus_addressing_is_same_person = \w+",
        f"plus_addressing_is_same_person = {json.dumps(plus_addressing)}",
        text,
    )
    assert count == len(PAIRS)
    path = directory / "pairs.toml"
    path.write_text(text, encoding="utf-8")
    load_pairs(path)
    return path


@pytest.fixture
async def stack(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    tmp_path: Path,
    plus_addressing: bool,
) -> AsyncIterator[Stack]:
    database_url = f"sqlite:///{tmp_path / 'commerce-sync.db'}"
    target = temporal_client.service_client.config.target_host
    settings = stack_settings(sandbox_url, database_url, tmp_path, target)
    if not plus_addressing:
        pairs_file = pairs_file_with(tmp_path, plus_addressing)
        settings = settings.model_copy(update={"pairs_file": pairs_file})
    api = BackgroundServer(create_app(settings)).start()
    worker = RunningWorker(temporal_client, settings)
    await point_webhooks(sandboxes, settings, api.url)
    try:
        async with httpx.AsyncClient(timeout=15.0) as http:
            yield Stack(settings, api.url, temporal_client, sandboxes, http, database_url)
    finally:
        await worker.close()
        api.stop()
        await end_leftover_runs(temporal_client, settings.task_queue)
