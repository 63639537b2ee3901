"""Secrets never reach a workflow payload or a log line: an order on each pair, end to end
(signed store webhook, approval through the API, the ERP order, the ERP's shipment
webhook, tracking back to the store), with distinctive webhook secrets, API keys and
alert URL in settings and the sandboxes' ERP/store credentials. Then every run the stack
started is read back from the dev server, event by event (inputs, activity inputs and
results, signals, updates, memo, search attributes, failures; payloads also through the
client's codec when it has one), and every log record of the API, the worker and the
libraries they use, captured at DEBUG, is searched for each secret."""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf.message import Message
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.service import RPCError

from commerce_sync.api.app import create_app
from commerce_sync.config.pairs import default_pairs_path
from commerce_sync.config.settings import AlertSettings, Settings, WebhookSecrets
from sandboxes.server import BackgroundServer
from tests.integration.orders.order_stack import (
    PAIRS,
    RunningWorker,
    Stack,
    eventually,
    point_webhooks,
    stack_settings,
)

OPERATE_KEY = "opsrest-operate-key-Q7x2Wm"
READ_KEY = "opsrest-read-key-Lp4Rz8"
HOOKS = WebhookSecrets(
    kentico=SecretStr("whsec_" + base64.b64encode(b"opsrest-kentico-hook-k9").decode()),
    xcart=SecretStr("whsec_" + base64.b64encode(b"opsrest-xcart-hook-x3").decode()),
    brightpearl_token=SecretStr("opsrestBrightpearlHookT5"),
    acumatica_token=SecretStr("opsrestAcumaticaHookH8"),
)
ALERT_URL = "json://127.0.0.1:9/opsrest-alert-token-A1"
LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "httpx", "httpcore", "temporalio")


def secrets_of(settings: Settings) -> dict[str, str]:
    """Every secret value in these settings, by where it comes from."""
    found = {
        f"webhooks.{name}": value.get_secret_value()
        for name, value in settings.webhooks
        if isinstance(value, SecretStr)
    }
    for key in settings.api_keys:
        found[f"api key {key[:8]}..."] = key
    for system in ("kentico", "xcart", "brightpearl", "acumatica"):
        for name, value in getattr(settings, system):
            if isinstance(value, SecretStr):
                found[f"{system}.{name}"] = value.get_secret_value()
    for index, url in enumerate(settings.alerts.urls):
        found[f"alerts.urls[{index}]"] = url.get_secret_value()
    # A base64 webhook secret is also used decoded (its key bytes).
    for name in ("kentico", "xcart"):
        raw = found[f"webhooks.{name}"].removeprefix("whsec_")
        found[f"webhooks.{name} (key)"] = base64.b64decode(raw).decode()
    return found


class KeyedStack(Stack):
    """The order stack, calling the API with this test's own operate key."""

    def headers(self, key: str = OPERATE_KEY) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}


def pairs_needing_approval(directory: Path) -> Path:
    """The packaged pairs.toml with every order over 1.00 waiting for an approval."""
    text, count = re.subn(
        r'(?m)^total_over = ".*"$',
        'total_over = "1.00"',
        default_pairs_path().read_text(encoding="utf-8"),
    )
    assert count == len(PAIRS)
    path = directory / "pairs.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
async def keyed_stack(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    database_url = f"sqlite:///{tmp_path / 'commerce-sync.db'}"
    target = temporal_client.service_client.config.target_host
    settings = stack_settings(sandbox_url, database_url, tmp_path, target).model_copy(
        update={
            "webhooks": HOOKS,
            "api_keys": {OPERATE_KEY: ["read", "operate"], READ_KEY: ["read"]},
            "pairs_file": pairs_needing_approval(tmp_path),
            "task_queue": f"secrets-{uuid.uuid4().hex[:8]}",
            "alerts": AlertSettings(urls=[SecretStr(ALERT_URL)]),
        }
    )
    api = BackgroundServer(create_app(settings)).start()
    worker = RunningWorker(temporal_client, settings)
    await point_webhooks(sandboxes, settings, api.url)
    try:
        async with httpx.AsyncClient(timeout=15.0) as http:
            yield KeyedStack(settings, api.url, temporal_client, sandboxes, http, database_url)
    finally:
        await worker.close()
        api.stop()


Records = Callable[[], list[logging.LogRecord]]


@pytest.fixture
def debug_logs(
    caplog: pytest.LogCaptureFixture, sandbox_server: BackgroundServer
) -> Iterator[Records]:
    """The records so far, at DEBUG, but the sandboxes' own (they stand for the outside
    systems, and serve from their own thread)."""
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    sandbox_thread = f"server-{sandbox_server.port}"
    try:
        with caplog.at_level(logging.DEBUG):
            yield lambda: [r for r in caplog.records if r.threadName != sandbox_thread]
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _payloads(message: Message) -> Iterator[Payload]:
    """Every Payload inside a history event (fields, lists and maps, at any depth)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        entry = field.message_type
        assert entry is not None, field.full_name  # every message field has its type
        if entry.GetOptions().map_entry:
            if entry.fields_by_name["value"].type == field.TYPE_MESSAGE:
                for item in value.values():
                    yield from _payloads(item)
        elif field.is_repeated:
            for item in value:
                yield from _payloads(item)
        else:
            yield from _payloads(value)


async def _histories(client: Client, queue: str) -> dict[str, list[str]]:
    """Each run on the stack's queue -> the text of each of its events, plus its payloads
    decoded by the client's codec (when it has one)."""
    codec = client.data_converter.payload_codec
    texts: dict[str, list[str]] = {}
    async for execution in client.list_workflows(f'TaskQueue = "{queue}"'):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        events = (await handle.fetch_history()).events
        run = texts.setdefault(f"{execution.workflow_type} {execution.id} {execution.run_id}", [])
        for event in events:
            run.append(str(event))
            payloads = list(_payloads(event))
            if codec is not None and payloads:
                decoded = await codec.decode(payloads)
                run.extend(each.data.decode("utf-8", "replace") for each in decoded)
    return texts


async def _approve(stack: Stack, pair: str, order_id: str) -> None:
    response = await stack.http.post(
        f"{stack.api}/orders/{pair}/{order_id}/approval",
        json={"approved": True, "by": "ops-lead", "reason": "known customer"},
        headers=stack.headers(OPERATE_KEY),
    )
    assert response.status_code == 200, response.text


async def test_secrets_never_reach_workflow_payloads_or_logs(
    keyed_stack: Stack, debug_logs: Records
) -> None:
    stack = keyed_stack
    secrets = secrets_of(stack.settings)
    assert len(secrets) >= 14 and all(len(value) >= 8 for value in secrets.values())
    for pair, (store, erp) in PAIRS.items():
        order_id = await stack.place_order(store)
        waiting = await stack.wait_state(pair, order_id, "awaiting_approval")
        # A read key sees the status, an operate key approves (an update).
        seen = await stack.http.get(
            f"{stack.api}/orders/{pair}/{order_id}", headers=stack.headers(READ_KEY)
        )
        assert seen.status_code == 200 and seen.json()["status"] == waiting["status"]
        await _approve(stack, pair, order_id)
        status = (await stack.wait_state(pair, order_id, "awaiting_shipment"))["status"]
        erp_ref = status["erp_order_id"] if erp == "brightpearl" else status["erp_order_number"]
        await stack.ship(erp, erp_ref, f"1Z{uuid.uuid4().hex[:10].upper()}")
        await stack.wait_state(pair, order_id, "shipped", run_status="COMPLETED")

    async def every_run() -> dict[str, list[str]] | None:
        try:
            found = await _histories(stack.client, stack.settings.task_queue)
        except RPCError:
            return None
        kinds = {run.split()[0] for run in found}
        return found if {"OrderSync", "ErpEventRouter"} <= kinds else None

    histories = await eventually(every_run, what="the runs in the visibility store")
    orders = [run for run in histories if run.startswith("OrderSync ")]
    assert len(orders) == len(PAIRS)
    leaks = [
        f"{where} in {run}"
        for run, texts in histories.items()
        for where, secret in secrets.items()
        if any(secret in text for text in texts)
    ]
    assert leaks == []

    records = debug_logs()
    assert len(records) > 100  # the capture works: DEBUG lines of every part came in
    assert {"httpx", "uvicorn.access"} <= {record.name for record in records}
    formatter = logging.Formatter("%(name)s %(message)s")
    logged = [formatter.format(record) for record in records]
    leaked = sorted(
        {
            f"{where}: {line[:160]}"
            for line in logged
            for where, secret in secrets.items()
            if secret in line
        }
    )
    assert leaked == []
