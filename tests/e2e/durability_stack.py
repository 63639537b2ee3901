"""Helpers of the durability tests: `commerce-sync api` and `commerce-sync worker` run as
real child processes, configured only through environment variables, as an operator
would deploy them, plus the sandbox checks the tests assert on.

Every child is started in its own session (process group), so that `Services.close`
can stop it, and anything it might have spawned, by id, whatever the test did.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.e2e.ports import free_ports

T = TypeVar("T")

COMMAND = str(Path(sys.executable).parent / "commerce-sync")
OPERATOR_KEY = "e2e-durability-operator-key"
# Access-log lines of the tests' own polling: left out of the logs shown on failure.
POLLING = re.compile(r'"GET /(orders/|readyz|healthz)')
PAIRS = {
    "kentico-brightpearl": ("kentico", "brightpearl"),
    "xcart-acumatica": ("xcart", "acumatica"),
}


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


async def eventually(
    check: Callable[[], Awaitable[T | None]], timeout_s: float = 60.0, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: T | None = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what or check}: last saw {last!r}")


# ---- configuration ---------------------------------------------------------------------


@dataclass(frozen=True)
class StackConfig:
    """What the API and worker processes of one test share, as environment variables."""

    sandbox_url: str
    database_url: str
    temporal_address: str
    data_dir: Path
    task_queue: str = field(default_factory=lambda: f"durability-{uuid.uuid4().hex[:10]}")
    kentico_secret: str = field(default_factory=whsec)
    xcart_secret: str = field(default_factory=whsec)
    brightpearl_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    acumatica_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    http_timeout_s: float = 5.0
    pairs_file: Path | None = None

    def store_secret(self, store: str) -> str:
        return {"kentico": self.kentico_secret, "xcart": self.xcart_secret}[store]

    def env(self) -> dict[str, str]:
        """The child's whole environment: ours, without any COMMERCE_SYNC_* of the caller."""
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("COMMERCE_SYNC_") and key != "DATABASE_URL"
        }
        return {
            **inherited,
            "PYTHONUNBUFFERED": "1",
            "COMMERCE_SYNC_DATA_DIR": str(self.data_dir),
            "DATABASE_URL": self.database_url,
            "COMMERCE_SYNC_TEMPORAL_ADDRESS": self.temporal_address,
            "COMMERCE_SYNC_TASK_QUEUE": self.task_queue,
            # The connectors talk to the test's sandboxes with the sandboxes' credentials.
            "COMMERCE_SYNC_USE_SANDBOXES": "true",
            "COMMERCE_SYNC_KENTICO__BASE_URL": f"{self.sandbox_url}/kentico",
            "COMMERCE_SYNC_XCART__BASE_URL": f"{self.sandbox_url}/xcart",
            "COMMERCE_SYNC_BRIGHTPEARL__BASE_URL": f"{self.sandbox_url}/brightpearl",
            "COMMERCE_SYNC_ACUMATICA__BASE_URL": f"{self.sandbox_url}/acumatica",
            # The sandboxes' throttles still apply; the task-queue rates need not slow tests.
            "COMMERCE_SYNC_BRIGHTPEARL__RATE_PER_SECOND": "50",
            "COMMERCE_SYNC_ACUMATICA__RATE_PER_SECOND": "50",
            "COMMERCE_SYNC_WEBHOOKS__KENTICO": self.kentico_secret,
            "COMMERCE_SYNC_WEBHOOKS__XCART": self.xcart_secret,
            "COMMERCE_SYNC_WEBHOOKS__BRIGHTPEARL_TOKEN": self.brightpearl_token,
            "COMMERCE_SYNC_WEBHOOKS__ACUMATICA_TOKEN": self.acumatica_token,
            "COMMERCE_SYNC_API_KEYS": json.dumps({OPERATOR_KEY: ["read", "operate"]}),
            "COMMERCE_SYNC_HTTP_TIMEOUT_S": str(self.http_timeout_s),
            **({"COMMERCE_SYNC_PAIRS_FILE": str(self.pairs_file)} if self.pairs_file else {}),
        }


# ---- processes -------------------------------------------------------------------------


def _process_groups() -> dict[int, int]:
    """pid -> process group id of every live (non-zombie) process, read from /proc."""
    groups: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            groups[int(entry.name)] = int(fields[2])
    return groups


class Service:
    """One `commerce-sync` command running as a child process; output goes to a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [COMMAND, *args],
                env=env,
                cwd=workdir,  # no stray .env of the repository is read
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        """Whether the leader still runs (without reaping it: see `stop`)."""
        if self.process.returncode is not None:
            return False
        try:
            return not os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False

    def log(self, lines: int = 60) -> str:
        """The last lines of output, without the access-log lines of the tests' polling."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if not POLLING.search(line)]
        return "\n".join(kept[-lines:])

    def kill(self) -> int:
        """SIGKILL, as a crash or the OOM killer would: no shutdown code runs."""
        if self.process.returncode is None:
            self._signal_group(signal.SIGKILL)
        return self.process.wait(timeout=30)

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM and a grace period, then SIGKILL for whatever is left of the group.

        The leader is reaped only after the group was killed: until then its pid (the
        group id) cannot be reused, so no signal can reach a process we did not start.
        """
        if self.process.returncode is not None:
            return  # reaped: it ended, or was stopped here before
        self._signal_group(signal.SIGTERM)
        self._wait_exited(grace_s)
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=30)

    def _wait_exited(self, timeout_s: float) -> None:
        """Wait for the leader to exit without reaping it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    return
            except ChildProcessError:
                return
            time.sleep(0.05)

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pid, sig)  # our child leads its own group: its id is the group's
        except ProcessLookupError:
            pass

    def left_behind(self) -> list[int]:
        """Processes of this service's group still alive."""
        return [pid for pid, group in _process_groups().items() if group == self.pid]


class Api(Service):
    def __init__(self, name: str, port: int, env: dict[str, str], workdir: Path) -> None:
        super().__init__(name, ["api", "--host", "127.0.0.1", "--port", str(port)], env, workdir)
        self.url = f"http://127.0.0.1:{port}"

    async def wait_serving(self, http: httpx.AsyncClient, timeout_s: float = 60.0) -> None:
        """Until `/healthz` answers (Temporal may still be unreachable)."""

        async def check() -> bool:
            if not self.running():
                raise AssertionError(f"{self.name} exited early:\n{self.log()}")
            try:
                return (await http.get(f"{self.url}/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(check, timeout_s, f"{self.name} to serve")

    async def readiness(self, http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
        response = await http.get(f"{self.url}/readyz")
        body: dict[str, Any] = response.json()
        return response.status_code, body

    async def wait_ready(self, http: httpx.AsyncClient, timeout_s: float = 60.0) -> None:
        """Until `/readyz` says Temporal and the database answer."""

        async def check() -> bool:
            if not self.running():
                raise AssertionError(f"{self.name} exited early:\n{self.log()}")
            try:
                return (await self.readiness(http))[0] == 200
            except httpx.TransportError:
                return False

        await eventually(check, timeout_s, f"{self.name} to be ready")

    async def order_status(self, http: httpx.AsyncClient, pair: str, order_id: str) -> Any:
        """`GET /orders/{pair}/{id}`; None while the run does not exist."""
        response = await http.get(
            f"{self.url}/orders/{pair}/{order_id}",
            headers={"authorization": f"Bearer {OPERATOR_KEY}"},
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()

    async def wait_state(
        self,
        http: httpx.AsyncClient,
        pair: str,
        order_id: str,
        state: str,
        *,
        run_status: str | None = None,
        timeout_s: float = 60.0,
    ) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            status = await self.order_status(http, pair, order_id)
            if not status or status["status"]["state"] != state:
                return None
            if run_status is not None and status["run_status"] != run_status:
                return None
            result: dict[str, Any] = status
            return result

        return await eventually(check, timeout_s, f"order {pair}/{order_id} in {state}")


class Services:
    """Starts the processes of one test and stops every one of them in `close`."""

    def __init__(self, config: StackConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.started: list[Service] = []

    def api(self, name: str = "api", port: int | None = None) -> Api:
        port = port if port is not None else free_ports(1)[0]
        api = Api(name, port, self.config.env(), self.workdir)
        self.started.append(api)
        return api

    def worker(self, name: str = "worker") -> Service:
        worker = Service(name, ["worker"], self.config.env(), self.workdir)
        self.started.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(
            f"----- {service.name} (pid {service.pid}) -----\n{service.log()}"
            for service in self.started
        )

    def close(self) -> list[int]:
        """Stop everything started here; returns the pids still alive afterwards (none)."""
        for service in self.started:
            service.stop()
        deadline = time.monotonic() + 10.0
        left = [pid for service in self.started for pid in service.left_behind()]
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [pid for service in self.started for pid in service.left_behind()]
        return left


# ---- the outside systems ---------------------------------------------------------------


async def point_webhooks(
    sandbox: httpx.AsyncClient,
    config: StackConfig,
    api_url: str,
    *,
    stores_to: str | None = None,
) -> None:
    """Every sandbox delivers its webhooks to `api_url` with this stack's proofs; the store
    sandboxes to `stores_to` instead when given (once, with no retries)."""
    targets: dict[str, dict[str, Any]] = {
        "kentico": {"url": f"{api_url}/webhooks/kentico", "secret": config.kentico_secret},
        "xcart": {"url": f"{api_url}/webhooks/xcart", "secret": config.xcart_secret},
        "brightpearl": {
            "url": f"{api_url}/webhooks/brightpearl",
            "token": config.brightpearl_token,
        },
        "acumatica": {
            "url": f"{api_url}/webhooks/acumatica",
            "header_name": "X-Commerce-Sync-Token",
            "header_value": config.acumatica_token,
        },
    }
    if stores_to is not None:
        for store in ("kentico", "xcart"):
            targets[store] = {
                "url": f"{stores_to}/webhooks/{store}",
                "secret": config.store_secret(store),
                "max_attempts": 1,
            }
    for system, target in targets.items():
        (await sandbox.post(f"/{system}/_sandbox/webhooks", json=target)).raise_for_status()


def shopper_order(payment_reference: str) -> dict[str, Any]:
    """A shopper's order (docs/project-contracts.md §2.2) that trips no risk rule."""
    return {
        "customer": {
            "email": f"durable-{uuid.uuid4().hex[:8]}@example.com",
            "first_name": "Dana",
            "last_name": "Durable",
            "phone": "+1 512 555 0100",
        },
        "shipping_address": {
            "line1": f"{uuid.uuid4().int % 9000 + 100} Main St",
            "line2": "",
            "city": "Austin",
            "region": "TX",
            "postal_code": "78701",
            "country": "US",
        },
        "lines": [{"sku": "WIDGET-1", "quantity": 2}, {"sku": "WIDGET-2", "quantity": 1}],
        "currency": "USD",
        "shipping_method": "ground",
        "payment": {"method": "card", "reference": payment_reference},
    }


@dataclass(frozen=True)
class PlacedOrder:
    pair: str
    store: str
    erp: str
    id: str
    event_id: str
    payment_reference: str


async def place_order(sandbox: httpx.AsyncClient, pair: str) -> PlacedOrder:
    store, erp = PAIRS[pair]
    reference = f"ch_{uuid.uuid4().hex[:12]}"
    response = await sandbox.post(f"/{store}/_sandbox/orders", json=shopper_order(reference))
    assert response.status_code in (200, 201), response.text
    placed = response.json()
    return PlacedOrder(pair, store, erp, str(placed["id"]), str(placed["event_id"]), reference)


async def state_of(sandbox: httpx.AsyncClient, system: str) -> dict[str, Any]:
    response = await sandbox.get(f"/{system}/_sandbox/state")
    response.raise_for_status()
    state: dict[str, Any] = response.json()
    return state


async def erp_sales_orders(
    sandbox: httpx.AsyncClient, erp: str, store_order_number: str
) -> list[dict[str, Any]]:
    """The ERP sandbox's sales orders carrying this store order number."""
    state = await state_of(sandbox, erp)
    if erp == "brightpearl":
        return [
            order
            for order in state["orders"].values()
            if order.get("reference") == store_order_number and order.get("orderTypeCode") == "SO"
        ]
    return [
        order
        for order in state["entities"].get("SalesOrder", [])
        if order.get("CustomerOrder") == store_order_number and order.get("OrderType") == "SO"
    ]


async def erp_payments(
    sandbox: httpx.AsyncClient, erp: str, payment_reference: str
) -> list[dict[str, Any]]:
    """The ERP sandbox's customer payments (receipts) carrying the shopper's reference."""
    state = await state_of(sandbox, erp)
    if erp == "brightpearl":
        return [
            payment
            for payment in state["payments"].values()
            if payment.get("transactionRef") == payment_reference
            and payment.get("paymentType") == "RECEIPT"
        ]
    return [
        payment
        for payment in state["entities"].get("Payment", [])
        if payment.get("PaymentRef") == payment_reference and payment.get("Type") == "Payment"
    ]


async def erp_requests(sandbox: httpx.AsyncClient, erp: str, method: str, glob: str) -> int:
    """How many API requests the ERP sandbox logged for `method` and a path glob."""
    response = await sandbox.get(f"/{erp}/_sandbox/requests")
    response.raise_for_status()
    return sum(
        1
        for record in response.json()["requests"]
        if record["method"] == method and fnmatch.fnmatchcase(record["path"], glob)
    )


async def ship(sandbox: httpx.AsyncClient, erp: str, status: dict[str, Any], tracking: str) -> None:
    """The warehouse ships the order; the ERP fires its webhook to the API."""
    erp_order = status["erp_order_id"] if erp == "brightpearl" else status["erp_order_number"]
    response = await sandbox.post(
        f"/{erp}/_sandbox/shipments",
        json={"order": erp_order, "tracking": tracking, "carrier": "ups"},
    )
    assert response.status_code in (200, 201), response.text
