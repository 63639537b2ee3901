"""Shared fixtures: real servers on free ports, a fresh database per test.

Sandboxes run as one real HTTP server (all four systems under their prefixes) for the
whole session; `sandboxes` resets them before each test through the control plane.
Every answer of the Acumatica sandbox is validated against Acumatica's OpenAPI
definition on its way out (tests/contracts/acumatica_openapi.py): a test during which
one violated it fails, and the session's summary says what was validated and what the
definition does not cover.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from commerce_sync.config.settings import (
    AcumaticaSettings,
    BrightpearlSettings,
    KenticoSettings,
    Settings,
    XCartSettings,
)
from commerce_sync.contracts import search_attributes
from commerce_sync.store.db import make_engine, migrate, normalise_url
from sandboxes.server import (
    SANDBOX_SYSTEMS,
    BackgroundServer,
    create_sandbox_app,
)
from tests.contracts.acumatica_openapi import REPORT, AcumaticaContract, OpenAPICheck

# The tests talk to the sandboxes with their own credentials, as `commerce-sync up` does;
# every CLI subprocess a test starts inherits this (the refusal itself is tested with it off).
os.environ.setdefault("COMMERCE_SYNC_USE_SANDBOXES", "true")
# Every write to the Acumatica sandbox checks its incremental indexes (stock held by open
# orders, push query rows) against a walk over its whole database: a write path that
# forgets to mark what it changed fails the test that takes it.
os.environ.setdefault("COMMERCE_SYNC_SANDBOX_CHECKS", "1")


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[BackgroundServer]:
    app = OpenAPICheck(create_sandbox_app(Settings()), AcumaticaContract.load(), REPORT)
    with BackgroundServer(app) as server:
        yield server
    late = REPORT.unclaimed()
    assert not late, "Acumatica sandbox answers outside the OpenAPI definition:\n" + "\n".join(
        map(str, late)
    )


@pytest.fixture(autouse=True)
def acumatica_answers_follow_the_definition() -> Iterator[None]:
    """Fails the test during which the Acumatica sandbox answered outside its OpenAPI
    definition (its fixtures' calls included: this fixture is torn down last; a worker's
    late call after the previous test ended is reported here too, never dropped)."""
    yield
    found = REPORT.unclaimed()
    if found:
        pytest.fail(
            "Acumatica sandbox answers outside the OpenAPI definition:\n"
            + "\n".join(map(str, found)),
            pytrace=False,
        )


# Under pytest-xdist each worker has its own sandbox server and report: a worker hands its
# counts to the controller in `workeroutput`, and the controller's summary adds them up.
WORKER_OUTPUT_KEY = "acumatica_openapi_report"


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKER_OUTPUT_KEY] = REPORT.dump()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    dumped = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
    if dumped:
        REPORT.add(dumped)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT.validated or REPORT.not_covered:
        for line in REPORT.summary(verbose=terminalreporter.config.getoption("verbose") > 0):
            terminalreporter.write_line(line)


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


# ---- Temporal --------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (the pip-installed CLI, no download) for the whole run."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=shutil.which("temporal")
        or str(Path(sys.executable).parent / "temporal"),
        search_attributes=list(search_attributes.ALL_KEYS),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


# ---- database --------------------------------------------------------------------------

POSTGRES_URL = os.environ.get("COMMERCE_SYNC_TEST_POSTGRES_URL")
DATABASES = ["sqlite", *(["postgres"] if POSTGRES_URL else [])]


def _fresh_postgres(base_url: str) -> tuple[str, Callable[[], None]]:
    """CREATE DATABASE a throw-away database on the given server; returns its URL and a dropper."""
    url = make_url(normalise_url(base_url))
    name = f"cs_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test: SQLite always, Postgres too when one is given."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'commerce-sync.db'}"
        return
    assert POSTGRES_URL is not None
    url, drop = _fresh_postgres(POSTGRES_URL)
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated engine on a fresh database."""
    engine = make_engine(database_url)
    migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()
