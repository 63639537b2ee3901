"""Orders that a risk rule holds back wait for a person: approval and rejection from every
door (the API, the Temporal CLI, `commerce-sync approve`), and the escalation alert and
final rejection when nobody decides. Real dev server, real sandboxes, real subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.client import Client

from commerce_sync.api.app import create_app
from commerce_sync.config.pairs import default_pairs_path, load_pairs
from commerce_sync.store.db import make_engine
from commerce_sync.store.models import Alert
from commerce_sync.systems.kentico.formats import parse_custom_data
from sandboxes.server import BackgroundServer
from tests.integration.orders.order_stack import (
    PAIRS,
    READ_ONLY_KEY,
    RunningWorker,
    Stack,
    eventually,
    point_webhooks,
    stack_settings,
)

TEMPORAL_CLI = Path(sys.executable).parent / "temporal"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Calls that log in rather than change anything (Acumatica's OAuth token and cookie login).
AUTH_PATHS = re.compile(r"/identity/connect/token|/entity/auth/log(in|out)")
ESCALATE_AFTER_S = 2
REJECT_AFTER_S = 4


# ---- helpers ---------------------------------------------------------------------------


def workflow_id(pair: str, order_id: str) -> str:
    return f"order:{pair}:{order_id}"


COUNTRIES_DIFFER = "billing country GB differs from shipping country US"


async def place_risky_order(stack: Stack, store: str, rule: str = "countries_differ") -> str:
    """An order that trips one of the pair's risk rules: billed in another country than it
    ships to (`countries_differ`), or a total over the pair's threshold (`total_over`)."""
    if rule == "total_over":
        return await stack.place_order(
            store, lines=[{"sku": "WIDGET-1", "quantity": 1, "unit_price": "2500.00"}]
        )
    assert rule == "countries_differ"
    return await stack.place_order(
        store,
        billing_address={
            "line1": "10 Downing St",
            "line2": "",
            "city": "London",
            "region": "",
            "postal_code": "SW1A 2AA",
            "country": "GB",
        },
    )


async def wait_for_approval(
    stack: Stack, pair: str, order_id: str, reason: str = COUNTRIES_DIFFER
) -> dict[str, Any]:
    """The run waits for a person, for the expected reason, and nothing has been decided."""
    waiting = await stack.wait_state(pair, order_id, "awaiting_approval")
    approval = waiting["status"]["approval"]
    assert approval is not None
    assert any(reason in each for each in approval["reasons"]), approval["reasons"]
    assert waiting["status"]["decision"] is None
    return waiting


async def erp_orders_for(stack: Stack, erp: str, store_order_number: str) -> list[dict[str, Any]]:
    """The ERP sandbox's sales orders carrying this store order number."""
    state = await stack.state_of(erp)
    if erp == "brightpearl":
        return [
            order
            for order in state["orders"].values()
            if order.get("reference") == store_order_number
        ]
    return [
        order
        for order in state["entities"].get("SalesOrder", [])
        if order.get("CustomerOrder") == store_order_number
    ]


async def erp_writes(stack: Stack, erp: str) -> list[str]:
    """Every call that could have changed the ERP (logins aside)."""
    response = await stack.sandbox.get(f"/{erp}/_sandbox/requests")
    response.raise_for_status()
    return [
        f"{call['method']} {call['path']}"
        for call in response.json()["requests"]
        if call["method"] in WRITE_METHODS and not AUTH_PATHS.search(call["path"])
    ]


async def store_status(stack: Stack, pair: str, order_id: str) -> tuple[str, str]:
    """The store's own record of the order: (native status, as the pair's lookups name it;
    the note commerce-sync left on the order)."""
    store = PAIRS[pair][0]
    config = load_pairs(stack.settings.pairs_file)[pair]
    state = await stack.state_of(store)
    if store == "kentico":
        row = next(o for o in state["ecommerce.order"] if str(o["OrderID"]) == order_id)
        names = {v: k for k, v in config.kentico.order_status_ids.items()}
        note = parse_custom_data(row.get("OrderCustomData")).get("StatusNote", "")
        return names[row["OrderStatusID"]], note
    order = next(o for o in state["orders"] if str(o["order_id"]) == order_id)
    # X-Cart has no "rejected" status: the lookups map it to a shipping status ("Will not
    # deliver"); which canonical status that is comes from the same lookups.
    rejected_id = config.xcart.shipping_status_ids["rejected"]
    status_id = order["shippingStatus"]["id"]
    name = "rejected" if status_id == rejected_id else f"shipping status {status_id}"
    lines = str(order.get("adminNotes") or "").splitlines()
    return name, lines[-1] if lines else ""


async def assert_reaches_the_erp(stack: Stack, pair: str, order_id: str, by: str) -> None:
    """After an approval: one ERP order, the store confirmed, the decision on record."""
    erp = PAIRS[pair][1]
    done = await stack.wait_state(pair, order_id, "awaiting_shipment")
    status = done["status"]
    assert status["approval"] is None
    assert status["decision"]["approved"] is True and status["decision"]["by"] == by
    approval_steps = [step for step in status["steps"] if step["name"] == "approval"]
    assert [step["detail"] for step in approval_steps] == [f"approved by {by}"]
    orders = await erp_orders_for(stack, erp, status["store_order_number"])
    assert len(orders) == 1, orders
    assert status["erp_order_id"]
    assert await erp_writes(stack, erp)  # the check that a rejection wrote nothing can fail


async def assert_rejected(
    stack: Stack, pair: str, order_id: str, *, by: str, reason: str
) -> dict[str, Any]:
    """After a rejection: run closed as rejected, the store told, nothing in the ERP."""
    erp = PAIRS[pair][1]
    done = await stack.wait_state(pair, order_id, "rejected", run_status="COMPLETED")
    status = done["status"]
    assert status["decision"] == {"approved": False, "by": by, "reason": reason}
    assert status["erp_order_id"] == "" and status["erp_customer_id"] == ""
    assert [step["outcome"] for step in status["steps"] if step["name"] == "approval"] == [
        "rejected"
    ]
    assert await store_status(stack, pair, order_id) == (
        "rejected",
        f"Rejected by {by}: {reason}",
    )
    assert await erp_orders_for(stack, erp, status["store_order_number"]) == []
    assert await erp_writes(stack, erp) == []
    return done


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


async def run_command(*args: str | Path, env: dict[str, str], cwd: Path) -> Completed:
    """A subprocess that does not block the event loop (the worker runs in this loop)."""
    process = await asyncio.create_subprocess_exec(
        *(str(arg) for arg in args),
        env={**os.environ, **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Completed(process.returncode, stdout.decode(), stderr.decode())


def cli_env(stack: Stack) -> dict[str, str]:
    env = {
        "COMMERCE_SYNC_TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
        "COMMERCE_SYNC_TEMPORAL_NAMESPACE": stack.client.namespace,
    }
    if stack.settings.pairs_file is not None:
        env["COMMERCE_SYNC_PAIRS_FILE"] = str(stack.settings.pairs_file)
    return env


async def commerce_sync(stack: Stack, tmp_path: Path, *args: str) -> Completed:
    return await run_command(
        sys.executable, "-m", "commerce_sync.cli", *args, env=cli_env(stack), cwd=tmp_path
    )


async def temporal_update(stack: Stack, tmp_path: Path, wid: str, payload: str) -> Completed:
    return await run_command(
        TEMPORAL_CLI,
        "workflow",
        "update",
        "execute",
        "--address",
        stack.client.service_client.config.target_host,
        "--namespace",
        stack.client.namespace,
        "--workflow-id",
        wid,
        "--name",
        "approve",
        "--input",
        payload,
        "--output",
        "json",
        env={},
        cwd=tmp_path,
    )


def one_error_line(result: Completed) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result
    assert len(lines) == 1, result.stderr
    return lines[0]


# ---- approval from each door -----------------------------------------------------------


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_risky_order_waits_then_api_approval_sends_it_to_the_erp(
    stack: Stack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    order_id = await place_risky_order(stack, store, "total_over")
    threshold = load_pairs()[pair].risk.total_over
    waiting = await wait_for_approval(stack, pair, order_id, f"USD is over {threshold}")
    number = waiting["status"]["store_order_number"]
    assert await erp_orders_for(stack, erp, number) == []
    assert await erp_writes(stack, erp) == []

    response = await stack.http.post(
        f"{stack.api}/orders/{pair}/{order_id}/approval",
        json={"approved": True, "by": "ops", "reason": "customer called"},
        headers=stack.headers(),
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "syncing"
    assert response.json()["decision"] == {
        "approved": True,
        "by": "ops",
        "reason": "customer called",
    }
    await assert_reaches_the_erp(stack, pair, order_id, "ops")

    again = await stack.http.post(
        f"{stack.api}/orders/{pair}/{order_id}/approval",
        json={"approved": True, "by": "ops"},
        headers=stack.headers(),
    )
    assert again.status_code == 409, again.text
    assert "nothing waits for approval (state: awaiting_shipment)" in again.json()["detail"]
    assert len(await erp_orders_for(stack, erp, number)) == 1


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_temporal_cli_approves_and_its_validator_refuses_an_empty_approver(
    stack: Stack, pair: str, tmp_path: Path
) -> None:
    store, _ = PAIRS[pair]
    order_id = await place_risky_order(stack, store)
    await wait_for_approval(stack, pair, order_id)
    wid = workflow_id(pair, order_id)

    refused = await temporal_update(stack, tmp_path, wid, '{"approved": true, "by": ""}')
    assert refused.returncode == 1, refused
    assert "'by' is required" in refused.stderr + refused.stdout
    still = await stack.order_status(pair, order_id)
    assert still is not None
    assert still["status"]["state"] == "awaiting_approval" and still["status"]["decision"] is None

    approved = await temporal_update(stack, tmp_path, wid, '{"approved": true, "by": "ops"}')
    assert approved.returncode == 0, approved
    answer = json.loads(approved.stdout)
    assert answer["name"] == "approve"
    assert answer["result"]["state"] == "syncing"
    assert answer["result"]["decision"] == {"approved": True, "by": "ops", "reason": ""}
    await assert_reaches_the_erp(stack, pair, order_id, "ops")


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_commerce_sync_approve_command(stack: Stack, pair: str, tmp_path: Path) -> None:
    store, erp = PAIRS[pair]
    order_id = await place_risky_order(stack, store)
    waiting = await wait_for_approval(stack, pair, order_id)
    wid = workflow_id(pair, order_id)

    result = await commerce_sync(stack, tmp_path, "approve", pair, order_id, "--by", "ops")
    assert result.returncode == 0, result
    assert result.stdout.strip().splitlines() == [f"{wid}: syncing (approved by ops)"]
    await assert_reaches_the_erp(stack, pair, order_id, "ops")

    # Asked again (by workflow id this time): nothing waits any more, one line, exit 1.
    again = await commerce_sync(stack, tmp_path, "approve", wid, "--by", "ops")
    line = one_error_line(again)
    assert f"{wid}: nothing waits for approval (state: awaiting_shipment)" in line
    assert len(await erp_orders_for(stack, erp, waiting["status"]["store_order_number"])) == 1


# ---- rejection -------------------------------------------------------------------------


@pytest.mark.parametrize("door", ["api", "cli"])
@pytest.mark.parametrize("pair", list(PAIRS))
async def test_rejection_tells_the_store_and_leaves_the_erp_alone(
    stack: Stack, pair: str, door: str, tmp_path: Path
) -> None:
    store, _ = PAIRS[pair]
    order_id = await place_risky_order(stack, store)
    await wait_for_approval(stack, pair, order_id)
    assert (await store_status(stack, pair, order_id))[0] != "rejected"
    wid = workflow_id(pair, order_id)
    reason = "address mismatch confirmed as fraud"

    if door == "api":
        response = await stack.http.post(
            f"{stack.api}/orders/{pair}/{order_id}/approval",
            json={"approved": False, "by": "risk-desk", "reason": reason},
            headers=stack.headers(),
        )
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "rejected"
    else:
        result = await commerce_sync(
            stack, tmp_path, "approve", wid, "--by", "risk-desk", "--reject", "--reason", reason
        )
        assert result.returncode == 0, result
        assert result.stdout.strip().splitlines() == [f"{wid}: rejected (rejected by risk-desk)"]
    await assert_rejected(stack, pair, order_id, by="risk-desk", reason=reason)

    # The run has ended: every door says so, and nothing changes.
    response = await stack.http.post(
        f"{stack.api}/orders/{pair}/{order_id}/approval",
        json={"approved": True, "by": "ops"},
        headers=stack.headers(),
    )
    assert response.status_code == 409, response.text
    assert "has ended" in response.json()["detail"]
    late = await commerce_sync(stack, tmp_path, "approve", pair, order_id, "--by", "ops")
    assert f"{wid}: the run has ended (completed)" in one_error_line(late)
    assert (await store_status(stack, pair, order_id))[0] == "rejected"


# ---- nobody decides --------------------------------------------------------------------


def short_approval_pairs(path: Path) -> Path:
    """The packaged pairs.toml with every pair escalating and rejecting within seconds."""
    text = default_pairs_path().read_text(encoding="utf-8")
    text, escalations = re.subn(
        r'(?m)^escalate_after = ".*"$', f'escalate_after = "PT{ESCALATE_AFTER_S}S"', text
    )
    text, rejections = re.subn(
        r'(?m)^reject_after = ".*"$', f'reject_after = "PT{REJECT_AFTER_S}S"', text
    )
    path.write_text(text, encoding="utf-8")
    pairs = load_pairs(path)
    assert escalations == rejections == len(pairs) == len(PAIRS)
    for pair in pairs.values():
        assert pair.approval.escalate_after.total_seconds() == ESCALATE_AFTER_S
        assert pair.approval.reject_after.total_seconds() == REJECT_AFTER_S
    return path


@dataclass
class OwnStack:
    """The `stack` fixture's parts, with the worker in reach (to stop and start it)."""

    stack: Stack
    worker: RunningWorker | None

    async def stop_worker(self) -> None:
        if self.worker is not None:
            await self.worker.close()
            self.worker = None

    def start_worker(self) -> None:
        assert self.worker is None
        self.worker = RunningWorker(self.stack.client, self.stack.settings)


@contextlib.asynccontextmanager
async def own_stack(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    sqlite_url: str,
    tmp_path: Path,
    pairs_file: Path | None = None,
) -> AsyncIterator[OwnStack]:
    """What the `stack` fixture builds, optionally with another pairs file."""
    target = temporal_client.service_client.config.target_host
    settings = stack_settings(sandbox_url, sqlite_url, tmp_path, target).model_copy(
        update={"pairs_file": pairs_file}
    )
    api = BackgroundServer(create_app(settings)).start()
    parts: OwnStack | None = None
    try:
        await point_webhooks(sandboxes, settings, api.url)
        async with httpx.AsyncClient(timeout=15.0) as http:
            stack = Stack(settings, api.url, temporal_client, sandboxes, http, sqlite_url)
            parts = OwnStack(stack, RunningWorker(temporal_client, settings))
            yield parts
    finally:
        if parts is not None:
            await parts.stop_worker()
        api.stop()


@pytest.fixture
async def short_approval_stack(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    sqlite_url: str,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    """The `stack` fixture, with a pairs file whose approvals time out in seconds."""
    pairs_file = short_approval_pairs(tmp_path / "pairs.toml")
    async with own_stack(
        temporal_client, sandbox_url, sandboxes, sqlite_url, tmp_path, pairs_file
    ) as parts:
        yield parts.stack


@pytest.fixture
async def stoppable_stack(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    sqlite_url: str,
    tmp_path: Path,
) -> AsyncIterator[OwnStack]:
    """The `stack` fixture, with its worker in reach."""
    async with own_stack(temporal_client, sandbox_url, sandboxes, sqlite_url, tmp_path) as parts:
        yield parts


def alerts_for(database_url: str, key: str) -> list[Alert]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Alert).where(Alert.key == key)).all())
    finally:
        engine.dispose()


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_undecided_order_escalates_then_is_rejected(
    short_approval_stack: Stack, pair: str
) -> None:
    stack = short_approval_stack
    store, _ = PAIRS[pair]
    order_id = await place_risky_order(stack, store)
    wid = workflow_id(pair, order_id)
    waiting = await wait_for_approval(stack, pair, order_id)
    number = waiting["status"]["store_order_number"]

    async def escalation_alert() -> list[Alert]:
        return [a for a in alerts_for(stack.database_url, wid) if a.kind == "approval_waiting"]

    alerts = await eventually(escalation_alert, 60.0, f"approval_waiting alert for {wid}")
    assert len(alerts) == 1
    assert f"order {number} has waited" in alerts[0].message
    assert COUNTRIES_DIFFER in alerts[0].message

    done = await assert_rejected(
        stack, pair, order_id, by="commerce-sync", reason="approval timed out"
    )
    assert done["status"]["approval"] is None
    kinds = sorted(alert.kind for alert in alerts_for(stack.database_url, wid))
    assert kinds == ["approval_waiting"]  # escalated once, and the rejection is no failure


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_approve_command_gives_up_when_no_worker_answers(
    stoppable_stack: OwnStack, pair: str, tmp_path: Path
) -> None:
    """No worker: the command says so in one line instead of hanging; the server keeps the
    admitted update, so the decision takes effect once a worker is back."""
    stack = stoppable_stack.stack
    order_id = await place_risky_order(stack, PAIRS[pair][0])
    await wait_for_approval(stack, pair, order_id)
    wid = workflow_id(pair, order_id)
    await stoppable_stack.stop_worker()

    result = await commerce_sync(
        stack, tmp_path, "approve", wid, "--by", "night-shift", "--timeout", "2"
    )
    line = one_error_line(result)
    assert f"{wid}: no worker answered within 2s (is a worker running?)" in line

    stoppable_stack.start_worker()
    await assert_reaches_the_erp(stack, pair, order_id, "night-shift")


# ---- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_api_answers_409_when_nothing_waits_and_404_for_an_unknown_order(
    stack: Stack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    order_id = await stack.place_order(store)  # no rule asks for approval
    synced = await stack.wait_state(pair, order_id, "awaiting_shipment")
    assert synced["status"]["approval"] is None
    assert [s["detail"] for s in synced["status"]["steps"] if s["name"] == "risk checks"] == [
        "no rule asks for approval"
    ]

    response = await stack.http.post(
        f"{stack.api}/orders/{pair}/{order_id}/approval",
        json={"approved": False, "by": "ops", "reason": "too late"},
        headers=stack.headers(),
    )
    assert response.status_code == 409, response.text
    assert response.json()["detail"] == "nothing waits for approval (state: awaiting_shipment)"
    after = await stack.order_status(pair, order_id)
    assert after is not None and after["status"]["decision"] is None
    assert len(await erp_orders_for(stack, erp, synced["status"]["store_order_number"])) == 1

    unknown = await stack.http.post(
        f"{stack.api}/orders/{pair}/no-such-order/approval",
        json={"approved": True, "by": "ops"},
        headers=stack.headers(),
    )
    assert unknown.status_code == 404, unknown.text
    assert "no-such-order" in unknown.json()["detail"]


async def test_approval_needs_the_operate_key_and_an_approver(stack: Stack) -> None:
    pair = "kentico-brightpearl"
    order_id = await place_risky_order(stack, PAIRS[pair][0])
    await wait_for_approval(stack, pair, order_id)
    url = f"{stack.api}/orders/{pair}/{order_id}/approval"
    body = {"approved": True, "by": "ops"}

    no_key = await stack.http.post(url, json=body)
    assert no_key.status_code == 401, no_key.text
    wrong_key = await stack.http.post(url, json=body, headers=stack.headers("not-a-key"))
    assert wrong_key.status_code == 401, wrong_key.text
    read_only = await stack.http.post(url, json=body, headers=stack.headers(READ_ONLY_KEY))
    assert read_only.status_code == 403, read_only.text
    assert "operate" in read_only.json()["detail"]
    no_approver = await stack.http.post(
        url, json={"approved": True, "by": ""}, headers=stack.headers()
    )
    assert no_approver.status_code == 422, no_approver.text
    assert no_approver.json()["detail"][0]["loc"] == ["body", "by"]

    still = await stack.order_status(pair, order_id)
    assert still is not None
    assert still["status"]["state"] == "awaiting_approval"
    assert still["status"]["decision"] is None
    assert await erp_writes(stack, PAIRS[pair][1]) == []


async def test_approve_command_names_what_is_wrong_in_one_line(
    temporal_client: Client, tmp_path: Path
) -> None:
    target = temporal_client.service_client.config.target_host
    env = {"COMMERCE_SYNC_TEMPORAL_ADDRESS": target}

    async def approve(*args: str, env: dict[str, str] = env) -> Completed:
        return await run_command(
            sys.executable, "-m", "commerce_sync.cli", "approve", *args, env=env, cwd=tmp_path
        )

    unknown = await approve("kentico-brightpearl", "no-such-order", "--by", "ops")
    assert "no run order:kentico-brightpearl:no-such-order in namespace default" in (
        one_error_line(unknown)
    )
    bad_pair = await approve("no-such-pair", "1042", "--by", "ops")
    assert "unknown pair 'no-such-pair'" in one_error_line(bad_pair)
    no_approver = await approve("order:kentico-brightpearl:1042", "--by", " ")
    assert "--by: who approves or rejects is required" in one_error_line(no_approver)

    closed = bind_free_port()
    unreachable = await approve(
        "order:kentico-brightpearl:1042",
        "--by",
        "ops",
        env={"COMMERCE_SYNC_TEMPORAL_ADDRESS": f"127.0.0.1:{closed}"},
    )
    assert f"cannot reach Temporal at 127.0.0.1:{closed}" in one_error_line(unreachable)


def bind_free_port() -> int:
    """A port nothing listens on (bound and released)."""
    from sandboxes.server import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    port: int = sock.getsockname()[1]
    sock.close()
    return port
