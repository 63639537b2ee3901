"""Fixtures of the operator-tool tests: the order stack of tests/integration/orders with
alerts pointed at a local HTTP receiver, metrics ports open and a tracing client."""

from __future__ import annotations

import concurrent.futures
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
from temporalio.client import Client

from tests.integration.ops.ops_stack import OpsStack, Receiver, ops_settings, running_ops
from tests.integration.orders.order_stack import stack_settings


@pytest.fixture
def executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    """Threads for the activities of a test's own worker."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        yield pool


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
    async with running_ops(ops_settings(settings, receiver), sandboxes, receiver) as running:
        spans.clear()
        yield running
