"""Fixtures of the operator-tool tests: the order stack of tests/integration/orders with
alerts pointed at a local HTTP receiver, metrics ports open and a tracing client."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr
from temporalio.client import Client

from commerce_sync.api.app import create_app
from commerce_sync.config.settings import AlertSettings, MetricsSettings
from commerce_sync.ops.metrics import MetricsServer
from commerce_sync.ops.temporal_client import connect, metrics_runtime
from sandboxes.server import BackgroundServer
from tests.integration.ops.ops_stack import UNREACHABLE_AFTER_S, OpsStack, Receiver, free_port
from tests.integration.orders.order_stack import (
    RunningWorker,
    Stack,
    point_webhooks,
    stack_settings,
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            status = 500 if state.fail_next > 0 else 200
            state.fail_next = max(state.fail_next - 1, 0)
            state.statuses.append(status)
            if status == 200:
                state.bodies.append(json.loads(body))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"json://127.0.0.1:{server.server_address[1]}/alerts"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def spans() -> InMemorySpanExporter:
    """Every span this test process makes, kept in memory (the global provider is set once)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture
async def ops(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    tmp_path: Path,
    receiver: Receiver,
    spans: InMemorySpanExporter,
) -> AsyncIterator[OpsStack]:
    """The order stack on a client of our own (`connect`: tracing interceptor, Temporal SDK
    metrics on a Prometheus port), alerts to `receiver`, our worker metrics on a port."""
    target = temporal_client.service_client.config.target_host
    settings = stack_settings(sandbox_url, f"sqlite:///{tmp_path / 'cs.db'}", tmp_path, target)
    settings = settings.model_copy(
        update={
            "alerts": AlertSettings(
                urls=[SecretStr(receiver.url)],
                unreachable_after_s=UNREACHABLE_AFTER_S,
                send_attempts=3,
            ),
            "metrics": MetricsSettings(
                worker_bind_address="127.0.0.1:0",
                temporal_bind_address=f"127.0.0.1:{free_port()}",
            ),
        }
    )
    assert settings.metrics.temporal_bind_address and settings.metrics.worker_bind_address
    client = await connect(settings, runtime=metrics_runtime(settings))
    metrics_server = MetricsServer(settings.metrics.worker_bind_address)
    api = BackgroundServer(create_app(settings)).start()
    worker = RunningWorker(client, settings)
    await point_webhooks(sandboxes, settings, api.url)
    spans.clear()
    try:
        async with httpx.AsyncClient(timeout=15.0) as http:
            yield OpsStack(
                Stack(settings, api.url, client, sandboxes, http, settings.resolved_database_url),
                receiver,
                f"http://127.0.0.1:{metrics_server.port}/metrics",
                f"http://{settings.metrics.temporal_bind_address}/metrics",
            )
    finally:
        await worker.close()
        api.stop()
        metrics_server.close()
