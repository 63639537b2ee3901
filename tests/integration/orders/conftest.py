"""Fixtures of the order tests (helpers live in order_stack.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from tests.integration.orders.order_stack import (
    Stack,
    running_stack,
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
    async with running_stack(settings, temporal_client, sandboxes) as running:
        yield running
