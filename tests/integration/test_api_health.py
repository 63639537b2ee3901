"""The API as a real HTTP server: health, readiness naming what is down, OpenAPI."""

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from commerce_sync.api.app import create_app
from commerce_sync.config.settings import Settings
from sandboxes.server import BackgroundServer, bind_socket


def serve(settings: Settings) -> BackgroundServer:
    return BackgroundServer(create_app(settings)).start()


@pytest.fixture
def closed_port() -> int:
    sock = bind_socket()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def api_with_temporal(
    temporal_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> Iterator[str]:
    config = temporal_env.client.service_client.config
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        temporal_address=config.target_host,
        database_url=database_url,
    )
    server = serve(settings)
    try:
        yield server.url
    finally:
        server.stop()


def test_ready_when_temporal_and_database_answer(api_with_temporal: str) -> None:
    assert httpx.get(f"{api_with_temporal}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{api_with_temporal}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["down"] == []
    docs = httpx.get(f"{api_with_temporal}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(f"{api_with_temporal}/openapi.json").json()
    assert "/readyz" in spec["paths"]


def test_readyz_names_temporal_when_it_is_unreachable(tmp_path: Path, closed_port: int) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path, temporal_address=f"127.0.0.1:{closed_port}"
    )
    server = serve(settings)
    try:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503
        body = ready.json()
        assert body["down"] == ["temporal"]
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["temporal"]["detail"]
    finally:
        server.stop()


def test_readyz_names_the_database_when_it_is_unreachable(
    temporal_env: WorkflowEnvironment, tmp_path: Path, closed_port: int
) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        temporal_address=temporal_env.client.service_client.config.target_host,
        database_url=f"postgresql://nobody@127.0.0.1:{closed_port}/nothing",
    )
    server = serve(settings)
    try:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503
        body = ready.json()
        assert body["down"] == ["database"]
        assert "OperationalError" in body["checks"]["database"]["detail"]
    finally:
        server.stop()


def test_docs_work_offline_every_asset_is_served_by_the_api(api_with_temporal: str) -> None:
    """The page references no other host: every script, style and icon it loads (and the
    spec) comes from the API itself."""
    page = httpx.get(f"{api_with_temporal}/docs")
    assert page.status_code == 200
    referenced = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]|url: ['"]([^'"]+)['"]""", page.text)
    urls = sorted({src or url for src, url in referenced})
    assert not [url for url in urls if "://" in url or url.startswith("//")], urls
    assert {"/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"} <= set(urls)
    assert "/openapi.json" in urls
    for url in urls:
        answer = httpx.get(f"{api_with_temporal}{url}")
        assert answer.status_code == 200 and answer.content, url
    script = httpx.get(f"{api_with_temporal}/docs-assets/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in script
