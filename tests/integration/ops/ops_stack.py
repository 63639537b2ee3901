"""Helpers of the operator-tool tests (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import re
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from commerce_sync.api.app import create_app
from commerce_sync.config.settings import AlertSettings, MetricsSettings, Settings
from commerce_sync.ops.metrics import MetricsServer
from commerce_sync.ops.temporal_client import connect, metrics_runtime
from sandboxes.server import BackgroundServer
from tests.integration.orders.order_stack import (
    PAIRS,
    RunningWorker,
    Stack,
    end_leftover_runs,
    point_webhooks,
)
from tests.integration.orders.sandbox_views import add_store_only_product

UNREACHABLE_AFTER_S = 0.5


@dataclass
class Receiver:
    """A local HTTP endpoint apprise's `json://` plugin posts to; it records every body and
    answers 500 to the first `fail_next` requests."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    fail_next: int = 0

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [b for b in self.bodies if f"commerce-sync {kind}:" in str(b.get("title", ""))]


@dataclass
class OpsStack:
    stack: Stack
    receiver: Receiver
    worker_metrics: str
    temporal_metrics: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def dead_lettered_order(ops: OpsStack, pair: str) -> str:
    """An order with a SKU the ERP does not know: it fails for good (order_failed)."""
    store, _ = PAIRS[pair]
    sku = f"STORE-ONLY-{uuid.uuid4().hex[:6].upper()}"
    await add_store_only_product(ops.stack, store, sku, "12.50")
    order_id = await ops.stack.place_order(store, lines=[{"sku": sku, "quantity": 1}])
    await ops.stack.wait_state(pair, order_id, "dead_lettered", run_status="FAILED")
    return order_id


def ops_settings(settings: Settings, receiver: Receiver) -> Settings:
    """The order stack's `settings` with alerts to `receiver` and metrics ports open."""
    return settings.model_copy(
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


@contextlib.asynccontextmanager
async def running_ops(
    settings: Settings, sandboxes: httpx.AsyncClient, receiver: Receiver
) -> AsyncIterator[OpsStack]:
    """The order stack on a client of our own (`connect`: tracing interceptor, Temporal SDK
    metrics on a Prometheus port), our worker metrics on a port (`ops_settings`)."""
    assert settings.metrics.temporal_bind_address and settings.metrics.worker_bind_address
    client = await connect(settings, runtime=metrics_runtime(settings))
    metrics_server = MetricsServer(settings.metrics.worker_bind_address)
    await end_leftover_runs(client)
    api = BackgroundServer(create_app(settings)).start()
    worker = RunningWorker(client, settings)
    await point_webhooks(sandboxes, settings, api.url)
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
        await end_leftover_runs(client, settings.task_queue)


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when none).

    Summed as PromQL's `sum()` would: a metric with more labels than asked for
    (e.g. failed steps by step) has one series per value of the others.
    """
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.match(r"^([a-zA-Z_:]+)(\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(4))
    return total


async def scrape(ops: OpsStack, url: str) -> str:
    response = await ops.stack.http.get(url)
    assert response.status_code == 200, response.text
    return response.text
