"""Shared fixtures: real servers on free ports, a fresh database per test.

Sandboxes run as one real HTTP server (all four systems under their prefixes) for the
whole session; `sandboxes` resets them before each test through the control plane.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from commerce_sync.config.settings import (
    AcumaticaSettings,
    BrightpearlSettings,
    KenticoSettings,
    Settings,
    XCartSettings,
)
from commerce_sync.systems.sandbox_server import SANDBOX_SYSTEMS, BackgroundServer, create_sandbox_app


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_sandbox_app(Settings())) as server:
        yield server


@pytest.fixture(scope="session")
def sandbox_url(sandbox_server: BackgroundServer) -> str:
    return sandbox_server.url


@pytest.fixture(scope="session")
def settings(sandbox_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose connectors point at the test sandbox server."""
    return Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        kentico=KenticoSettings(base_url=f"{sandbox_url}/kentico"),
        xcart=XCartSettings(base_url=f"{sandbox_url}/xcart"),
        brightpearl=BrightpearlSettings(base_url=f"{sandbox_url}/brightpearl"),
        acumatica=AcumaticaSettings(base_url=f"{sandbox_url}/acumatica"),
        http_timeout_s=5.0,
    )


@pytest.fixture
async def sandboxes(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the sandbox server with every system reset to its default seed."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10.0) as client:
        for system in SANDBOX_SYSTEMS:
            response = await client.post(f"/{system}/_sandbox/reset")
            response.raise_for_status()
        yield client
