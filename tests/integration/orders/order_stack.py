"""Helpers of the order tests: the whole order stack in one test process: a real Temporal dev server, a worker with
every system's activities, the API as a real HTTP server, and the sandboxes delivering
their webhooks to it."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.service import RPCError

from commerce_sync.config.pairs import default_pairs_path, load_pairs
from commerce_sync.config.settings import Settings, WebhookSecrets
from commerce_sync.intake.routing import BRIGHTPEARL_SUBSCRIPTIONS
from commerce_sync.store.db import make_engine, migrate
from commerce_sync.worker import Ports, build_workers, run_workers

T = TypeVar("T")
API_KEY = "test-operator-key"
READ_ONLY_KEY = "test-reader-key"

PAIRS = {
    "kentico-brightpearl": ("kentico", "brightpearl"),
    "xcart-acumatica": ("xcart", "acumatica"),
}


async def eventually(
    check: Callable[[], Awaitable[T | None]], timeout_s: float = 60.0, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after the timeout."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: T | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or check}: last saw {last!r}")


@dataclass
class Stack:
    settings: Settings
    api: str
    client: Client
    sandbox: httpx.AsyncClient
    http: httpx.AsyncClient
    database_url: str

    def headers(self, key: str = API_KEY) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    async def place_order(self, store: str, **overrides: Any) -> str:
        body: dict[str, Any] = {
            "customer": {
                "email": f"shopper-{uuid.uuid4().hex[:8]}@example.com",
                "first_name": "Jane",
                "last_name": "Doe",
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
            "lines": [{"sku": "WIDGET-1", "quantity": 2}],
            "currency": "USD",
            "shipping_method": "ground",
            "payment": {"method": "card", "reference": f"ch_{uuid.uuid4().hex[:12]}"},
        }
        body.update(overrides)
        response = await self.sandbox.post(f"/{store}/_sandbox/orders", json=body)
        assert response.status_code in (200, 201), response.text
        return str(response.json()["id"])

    async def order_status(self, pair: str, order_id: str) -> dict[str, Any] | None:
        response = await self.http.get(
            f"{self.api}/orders/{pair}/{order_id}", headers=self.headers()
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def wait_state(
        self,
        pair: str,
        order_id: str,
        *states: str,
        run_status: str | None = None,
        timeout_s: float = 60.0,
    ) -> dict[str, Any]:
        """Wait for the sync state (and, when given, the Temporal run status: a query can
        see the final state a moment before the server records the run as closed)."""

        async def check() -> dict[str, Any] | None:
            status = await self.order_status(pair, order_id)
            if not status or status["status"]["state"] not in states:
                return None
            if run_status is not None and status["run_status"] != run_status:
                return None
            return status

        return await eventually(check, timeout_s, f"order {pair}/{order_id} in {states}")

    async def state_of(self, system: str) -> dict[str, Any]:
        response = await self.sandbox.get(f"/{system}/_sandbox/state")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def ship(self, erp: str, erp_order: str, tracking: str) -> None:
        response = await self.sandbox.post(
            f"/{erp}/_sandbox/shipments",
            json={"order": erp_order, "tracking": tracking, "carrier": "ups"},
        )
        assert response.status_code in (200, 201), response.text


# Every system's call budget in the test stacks. The worker's connectors draw every call
# from the shared budget in the stack's database (`api_budgets`), as a deployment's do;
# the rate is high enough that no test waits for a turn (the packaged ones would: 200 a
# minute for Brightpearl, 120 for Acumatica), so a test that is about the budget sets its
# own (tests/integration/ops/test_call_budget.py).
TEST_BUDGET: dict[str, float | int] = {"rate_per_second": 1000.0, "burst": 50}


def stack_settings(
    sandbox_url: str, database_url: str, data_dir: Path, temporal_target: str
) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=database_url,
        temporal_address=temporal_target,
        task_queue=f"commerce-sync-{uuid.uuid4().hex[:8]}",
        kentico={"base_url": f"{sandbox_url}/kentico", **TEST_BUDGET},
        xcart={"base_url": f"{sandbox_url}/xcart", **TEST_BUDGET},
        brightpearl={"base_url": f"{sandbox_url}/brightpearl", **TEST_BUDGET},
        acumatica={"base_url": f"{sandbox_url}/acumatica", **TEST_BUDGET},
        webhooks=WebhookSecrets(
            kentico=SecretStr("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()),
            xcart=SecretStr("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()),
            brightpearl_token=SecretStr(secrets.token_urlsafe(16)),
            acumatica_token=SecretStr(secrets.token_urlsafe(16)),
        ),
        api_keys={API_KEY: ["read", "operate"], READ_ONLY_KEY: ["read"]},
        http_timeout_s=5.0,
        # Its own name: a test writing `pairs.toml` in the same directory keeps its file.
        pairs_file=pairs_file_with(data_dir, name="test-rules-pairs.toml"),
    )


async def point_webhooks(sandbox: httpx.AsyncClient, settings: Settings, api: str) -> None:
    hooks = settings.webhooks
    assert hooks.kentico and hooks.xcart and hooks.brightpearl_token and hooks.acumatica_token
    targets = {
        "kentico": {"url": f"{api}/webhooks/kentico", "secret": hooks.kentico.get_secret_value()},
        "xcart": {"url": f"{api}/webhooks/xcart", "secret": hooks.xcart.get_secret_value()},
        "brightpearl": {
            "url": f"{api}/webhooks/brightpearl",
            "token": hooks.brightpearl_token.get_secret_value(),
            "subscribe_to": list(BRIGHTPEARL_SUBSCRIPTIONS),
        },
        "acumatica": {
            "url": f"{api}/webhooks/acumatica",
            "header_name": "X-Commerce-Sync-Token",
            "header_value": hooks.acumatica_token.get_secret_value(),
        },
    }
    for system, target in targets.items():
        (await sandbox.post(f"/{system}/_sandbox/webhooks", json=target)).raise_for_status()


NOWHERE = "http://127.0.0.1:9/lost"
"""A webhook target nothing listens on: a delivery to it is refused at once."""


async def webhooks_nowhere(sandbox: httpx.AsyncClient, settings: Settings, system: str) -> None:
    """Point `system`'s webhooks at nothing (one attempt each): its events are fired and
    never delivered, until `point_webhooks` points them at the API again."""
    hooks = settings.webhooks
    target: dict[str, object] = {"url": NOWHERE, "max_attempts": 1}
    if system == "acumatica":
        target |= {"header_name": "X-Commerce-Sync-Token", "header_value": "nowhere"}
    elif system == "brightpearl":
        target |= {"token": "nowhere"}
    else:
        secret = hooks.kentico if system == "kentico" else hooks.xcart
        assert secret is not None
        target |= {"secret": secret.get_secret_value()}
    (await sandbox.post(f"/{system}/_sandbox/webhooks", json=target)).raise_for_status()


class RunningWorker:
    """The worker of `commerce-sync worker`, run as a task of the test's event loop: its
    connectors draw their calls from the call budgets in the stack's database."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client, self.settings = client, settings
        self.engine = make_engine(settings.resolved_database_url)
        migrate(self.engine)
        self.pairs = load_pairs(settings.pairs_file)
        self.ports = Ports(settings, engine=self.engine)
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=16)
        self.stop = asyncio.Event()
        workers = build_workers(
            client,
            settings,
            self.engine,
            executor=self.executor,
            pairs=self.pairs,
            ports=self.ports,
        )
        self.task = asyncio.create_task(run_workers(workers, self.stop))

    async def close(self) -> None:
        self.stop.set()
        await self.task
        await self.ports.aclose()
        self.executor.shutdown(wait=True)
        self.engine.dispose()


async def forget_inventory_runs(client: Client) -> None:
    """End the push runs an earlier test (or another stack) left on this dev server: the
    workflow id is one per pair, and a run whose worker is gone would take the signals."""
    for pair in PAIRS:
        try:
            await client.get_workflow_handle(f"inventory:{pair}").terminate("test cleanup")
        except RPCError:
            pass  # none running


async def end_leftover_runs(client: Client, task_queue: str | None = None) -> None:
    """The sandboxes are reset for every test, so order, return and customer ids (and
    with them the workflow ids) come again in the next test; a run still open when its
    test's worker stopped (on a task queue of its own that nobody polls any more) would
    take the next test's signals and webhooks: a return request would reach an earlier
    test's return run and wait there. Each test process has its own dev server and runs
    its tests one after another, so at a stack's start every open run is a leftover;
    at its end, those on its `task_queue` are."""
    query = "ExecutionStatus = 'Running'"
    if task_queue is not None:
        query = f"TaskQueue = '{task_queue}' AND {query}"
    async for execution in client.list_workflows(query):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        with contextlib.suppress(RPCError):
            await handle.terminate(reason="the test that started it is over")


@contextlib.asynccontextmanager
async def running_stack(
    settings: Settings, client: Client, sandboxes: httpx.AsyncClient
) -> AsyncIterator[Stack]:
    """The API (a real HTTP server) and a worker on `settings`, the sandboxes' webhooks
    pointed at the API; both stopped on the way out."""
    from commerce_sync.api.app import create_app
    from sandboxes.server import BackgroundServer

    # The pair's inventory push run is one per dev server, and the runs of orders and
    # returns are named by ids the reset sandboxes hand out again: a run an earlier stack
    # left would take this stack's signals and webhooks.
    await forget_inventory_runs(client)
    await end_leftover_runs(client)
    api = BackgroundServer(create_app(settings)).start()
    worker = RunningWorker(client, settings)
    await point_webhooks(sandboxes, settings, api.url)
    try:
        async with httpx.AsyncClient(timeout=15.0) as http:
            yield Stack(settings, api.url, client, sandboxes, http, settings.resolved_database_url)
    finally:
        await worker.close()
        api.stop()
        await forget_inventory_runs(client)
        await end_leftover_runs(client, settings.task_queue)


@contextlib.asynccontextmanager
async def stack_with_rules(
    client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    database_url: str,
    directory: Path,
    rules: Mapping[str, int | str | bool | float],
) -> AsyncIterator[Stack]:
    """`running_stack` with a pairs file whose `rules` differ (see `pairs_file_with`)."""
    target = client.service_client.config.target_host
    settings = stack_settings(sandbox_url, database_url, directory, target).model_copy(
        update={"pairs_file": pairs_file_with(directory, rules)}
    )
    async with running_stack(settings, client, sandboxes) as running:
        yield running


# What every test stack's pairs file changes: runs look for duplicates a second after
# their creates, not two minutes (the sandboxes answer at once; a test that holds
# creates longer sets `duplicate_check_after` itself).
TEST_RULES: dict[str, int | str | bool | float] = {"duplicate_check_after": 1}


def pairs_file_with(
    directory: Path,
    rules: Mapping[str, int | str | bool | float] | None = None,
    *,
    name: str = "pairs.toml",
) -> Path:
    """The packaged pairs.toml with `rules` replacing keys of every pair: `key` is a key
    of the pair or of any of its sections (e.g. `[pairs.*.returns]`), `section.key` the
    key of that section only (`anomalies.enabled`)."""
    text = default_pairs_path().read_text(encoding="utf-8")
    for key, value in {**TEST_RULES, **(rules or {})}.items():
        section, _, name = key.rpartition(".")
        line = rf"(?m)^{name} = .*$"
        if section:
            # From the section's header to the key, without crossing another header.
            line = rf"(?m)(^\[pairs\.[^.\]]+\.{section}\]\n(?:(?!\[).*\n)*?){name} = .*$"
        replacement = f"{name} = {json.dumps(value)}"
        text, count = re.subn(line, (r"\g<1>" if section else "") + replacement, text)
        assert count == len(PAIRS), key
    path = directory / name
    path.write_text(text, encoding="utf-8")
    load_pairs(path)
    return path
