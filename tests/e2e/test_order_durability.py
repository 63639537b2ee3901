"""Durability across processes: the API and the worker run as the real `commerce-sync api`
and `commerce-sync worker` commands, configured through the environment, against the real
Temporal dev server and the sandbox server.

1. One store webhook delivered three times at once into two API processes sharing one
   Postgres database starts one run and makes one ERP order.
2. A worker killed with SIGKILL while an ERP call is in flight: a new worker finishes the
   orders, each with one ERP order and one payment, through to the shipment (the dead
   worker's Brightpearl create landing only after the retry's is refused by the ERP).
3. Temporal unreachable when the webhook arrives: 202, the event recorded with its start
   failed; once Temporal is up the relay starts the run and the order reaches the ERP.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from sqlmodel import Session, select
from standardwebhooks.webhooks import Webhook
from temporalio.api.enums.v1 import EventType, PendingActivityState, TimeoutType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from commerce_sync.contracts import search_attributes
from commerce_sync.store.db import make_engine
from commerce_sync.store.models import EventStatus, WebhookEvent
from tests.e2e.durability_stack import (
    PAIRS,
    PlacedOrder,
    Services,
    StackConfig,
    erp_payments,
    erp_requests,
    erp_sales_orders,
    eventually,
    place_order,
    point_webhooks,
    ship,
)
from tests.e2e.ports import free_ports

TRACKING = "1Z999AA10123456784"


# ---- fixtures --------------------------------------------------------------------------


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh Postgres database for this test (tests/conftest.py `_fresh_postgres`)."""
    base = os.environ.get("COMMERCE_SYNC_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("COMMERCE_SYNC_TEST_POSTGRES_URL is unset: two APIs need a shared Postgres")
    conftest = request.config.pluginmanager.get_plugin(
        str(Path(__file__).resolve().parents[1] / "conftest.py")
    )
    assert isinstance(conftest, ModuleType), "tests/conftest.py is not loaded"
    url, drop = conftest._fresh_postgres(base)
    try:
        yield url
    finally:
        drop()


def temporal_target(client: Client) -> str:
    return client.service_client.config.target_host


def webhook_rows(database_url: str, source: str) -> list[WebhookEvent]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(WebhookEvent).where(WebhookEvent.source == source)))
    finally:
        engine.dispose()


async def runs_of(client: Client, workflow_id: str) -> list[str]:
    """Run ids of every execution with this workflow id (visibility)."""
    return [
        execution.run_id
        async for execution in client.list_workflows(f'WorkflowId = "{workflow_id}"')
    ]


# ---- 1. duplicate deliveries into two API processes ------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("pair", list(PAIRS))
async def test_one_webhook_delivered_three_times_at_once_into_two_apis_runs_once(
    pair: str,
    postgres_url: str,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    temporal_client: Client,
    http: httpx.AsyncClient,
    tmp_path: Path,
    services: Callable[[StackConfig], Services],
) -> None:
    config = StackConfig(
        sandbox_url, postgres_url, temporal_target(temporal_client), tmp_path / "data"
    )
    stack = services(config)
    first, second = stack.api("api-1"), stack.api("api-2")
    stack.worker()
    await asyncio.gather(first.wait_ready(http), second.wait_ready(http))
    # The store sandbox's own delivery goes nowhere: the test delivers the event itself.
    nowhere = f"http://127.0.0.1:{free_ports(1)[0]}"
    await point_webhooks(sandboxes, config, first.url, stores_to=nowhere)

    placed = await place_order(sandboxes, pair)
    events = (await sandboxes.get(f"/{placed.store}/_sandbox/events")).json()["events"]
    event = next(e for e in events if e["id"] == placed.event_id)
    body = json.dumps(event["body"]).encode()
    sent_at = datetime.now(UTC)
    headers = {  # Standard Webhooks, signed here: the test is the store's event hook
        "content-type": "application/json",
        "webhook-id": placed.event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(config.store_secret(placed.store)).sign(
            placed.event_id, sent_at, body.decode()
        ),
    }

    async def deliver(api_url: str) -> httpx.Response:
        return await http.post(f"{api_url}/webhooks/{placed.store}", content=body, headers=headers)

    answers = await asyncio.gather(deliver(first.url), deliver(second.url), deliver(first.url))

    workflow_id = f"order:{pair}:{placed.id}"
    assert sorted(a.status_code for a in answers) == [200, 200, 202], [a.text for a in answers]
    for answer in answers:
        assert answer.json() == {"event_id": placed.event_id, "workflow_id": workflow_id}

    waiting = await first.wait_state(http, pair, placed.id, "awaiting_shipment", timeout_s=90.0)
    rows = webhook_rows(postgres_url, placed.store)
    assert [(row.event_id, row.status, row.start_attempts) for row in rows] == [
        (placed.event_id, EventStatus.STARTED, 1)
    ]
    assert len(await eventually(partial(runs_of, temporal_client, workflow_id))) == 1
    number = waiting["status"]["store_order_number"]
    assert len(await erp_sales_orders(sandboxes, placed.erp, number)) == 1
    assert len(await erp_payments(sandboxes, placed.erp, placed.payment_reference)) == 1
    create = (
        ("POST", "*/order-service/sales-order")
        if placed.erp == "brightpearl"
        else ("PUT", "*/SalesOrder")
    )
    assert await erp_requests(sandboxes, placed.erp, *create) == 1


# ---- 2. a worker killed in the middle of a run -----------------------------------------


@dataclass(frozen=True)
class KillPoint:
    """Where the worker dies: `fault` slows an ERP write of the activity by `slowed_by_s`;
    the worker is killed meanwhile and the ERP still serves the request afterwards (its
    answer lost). `lands_after_retry`: the new worker starts right away, so the slowed
    request lands after the retry made its own; otherwise the new worker starts only once
    the ERP has served it, and the retry finishes the dead attempt's half-done work."""

    activity: str
    fault: str
    slowed_by_s: float
    lands_after_retry: bool


KILL_POINTS = {
    # The atomic create (order and rows in one request) is held past the retry, which
    # comes after the 15 s heartbeat timeout: the late request is refused by Brightpearl's
    # (externalRef, installedIntegrationInstanceId) key, so it cannot make a second order.
    # Held 45 s: the retry comes about 16-20 s after the kill, and a loaded CI machine must
    # not let the held request land first (the test would then not show the late case).
    "kentico-brightpearl": KillPoint(
        "erp.create_order", "POST */order-service/sales-order", 45.0, lands_after_retry=True
    ),
    # The payment is recorded, not yet released.
    "xcart-acumatica": KillPoint(
        "erp.record_payment", "POST */Payment/ReleasePayment", 10.0, lands_after_retry=False
    ),
}


async def create_statuses(sandbox: httpx.AsyncClient, glob: str) -> list[int]:
    """HTTP statuses of Brightpearl's answers to the requests matching `glob`, in the order
    it answered them."""
    response = await sandbox.get("/brightpearl/_sandbox/requests")
    response.raise_for_status()
    return [
        record["status"]
        for record in response.json()["requests"]
        if record["method"] == "POST" and fnmatch.fnmatchcase(record["path"], glob)
    ]


async def pending_activity(client: Client, workflow_id: str) -> tuple[str, int] | None:
    """(activity type, attempt) of the run's activity a worker is executing right now."""
    description = await client.get_workflow_handle(workflow_id).describe()
    for pending in description.raw_description.pending_activities:
        if pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
            return pending.activity_type.name, pending.attempt
    return None


async def fault_hits(sandbox: httpx.AsyncClient, erp: str, match: str) -> int:
    rules = (await sandbox.get(f"/{erp}/_sandbox/faults")).json()["faults"]
    return sum(rule["hits"] for rule in rules if rule["match"] == match)


async def retried_after_heartbeat_timeout(client: Client, workflow_id: str, activity: str) -> bool:
    """Whether `activity` completed on its second attempt, the first having hit its
    heartbeat timeout (the fate of an attempt whose worker died: its heartbeats stopped),
    per the history. A start-to-close timeout here would mean the dead worker was only
    noticed at the step's full time limit."""
    scheduled: dict[int, str] = {}
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if scheduled.get(started.scheduled_event_id) != activity:
                continue
            timeout = started.last_failure.timeout_failure_info
            return (
                started.attempt == 2
                and started.last_failure.HasField("timeout_failure_info")
                and timeout.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT
            )
    return False


async def assert_once_in_erp(sandbox: httpx.AsyncClient, order: PlacedOrder, number: str) -> None:
    """One complete sales order and one released payment for the store order."""
    sales_orders = await erp_sales_orders(sandbox, order.erp, number)
    assert len(sales_orders) == 1, f"{order.pair}: {sales_orders}"
    payments = await erp_payments(sandbox, order.erp, order.payment_reference)
    assert len(payments) == 1, f"{order.pair}: {payments}"
    if order.erp == "brightpearl":
        rows = sales_orders[0]["orderRows"].values()
        skus = sorted(row["productSku"] for row in rows if row["productSku"])
        assert skus == ["WIDGET-1", "WIDGET-2"], f"{order.pair}: rows {rows}"
    else:
        skus = sorted(line["InventoryID"] for line in sales_orders[0]["Details"])
        assert skus == ["WIDGET-1", "WIDGET-2"], f"{order.pair}: lines {sales_orders[0]}"
        assert payments[0]["Status"] == "Open", f"{order.pair}: payment not released"


async def test_worker_killed_mid_activity_a_new_worker_finishes_every_order_once(
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    temporal_client: Client,
    http: httpx.AsyncClient,
    tmp_path: Path,
    services: Callable[[StackConfig], Services],
) -> None:
    """Both pairs at once in one worker process, as in production: one kill, one wait for
    the activities' heartbeat timeout (the worker heartbeats for every running activity;
    the dead one stops), two orders to recover."""
    config = StackConfig(
        sandbox_url,
        f"sqlite:///{tmp_path / 'commerce-sync.db'}",
        temporal_target(temporal_client),
        tmp_path / "data",
        http_timeout_s=55.0,  # longer than the slowed request: only the kill can stop it
    )
    stack = services(config)
    api = stack.api()
    worker = stack.worker()
    await api.wait_ready(http)
    await point_webhooks(sandboxes, config, api.url)
    for pair, point in KILL_POINTS.items():
        erp = PAIRS[pair][1]
        fault = {"match": point.fault, "delay_s": point.slowed_by_s, "count": 1}
        (await sandboxes.post(f"/{erp}/_sandbox/faults", json=fault)).raise_for_status()

    orders = [await place_order(sandboxes, pair) for pair in KILL_POINTS]

    for order in orders:  # the slowed request has reached the ERP: the activity is mid-way
        match = KILL_POINTS[order.pair].fault
        await eventually(
            partial(fault_hits, sandboxes, order.erp, match), 60.0, f"{order.pair} kill point"
        )
        workflow_id = f"order:{order.pair}:{order.id}"
        assert await pending_activity(temporal_client, workflow_id) == (
            KILL_POINTS[order.pair].activity,
            1,
        )
    assert worker.kill() == -signal.SIGKILL

    # The dead worker left Acumatica half done; Brightpearl still holds its create.
    kentico_order, xcart_order = orders
    assert kentico_order.pair == "kentico-brightpearl" and xcart_order.pair == "xcart-acumatica"
    # (Kentico's order number is its OrderID.)
    assert await erp_sales_orders(sandboxes, "brightpearl", kentico_order.id) == []
    unreleased = await erp_payments(sandboxes, "acumatica", xcart_order.payment_reference)
    assert [p["Status"] for p in unreleased] == ["Balanced"]
    for order in orders:  # the ERP has served the dead worker's slowed request
        if KILL_POINTS[order.pair].lands_after_retry:
            continue
        method, glob = KILL_POINTS[order.pair].fault.split(" ", 1)
        await eventually(
            partial(erp_requests, sandboxes, order.erp, method, glob),
            KILL_POINTS[order.pair].slowed_by_s + 30.0,
            f"{order.pair} slowed request served",
        )

    stack.worker("worker-2")
    for order in orders:
        workflow_id = f"order:{order.pair}:{order.id}"
        # The first attempt is given up once its heartbeats stop (HEARTBEAT_TIMEOUT, 15 s),
        # not at its start-to-close timeout (60 s).
        waiting = await api.wait_state(
            http, order.pair, order.id, "awaiting_shipment", timeout_s=180.0
        )
        status = waiting["status"]
        assert await retried_after_heartbeat_timeout(
            temporal_client, workflow_id, KILL_POINTS[order.pair].activity
        )
        if order.erp == "brightpearl":  # the retry made the order the dead attempt did not
            step = next(s for s in status["steps"] if s["name"] == "create ERP order")
            assert step["detail"] == f"created {status['erp_order_number']}", step
            glob = KILL_POINTS[order.pair].fault.split(" ", 1)[1]

            async def late_create_answered(glob: str = glob) -> bool:
                return len(await create_statuses(sandboxes, glob)) == 2

            await eventually(late_create_answered, 60.0, "the dead worker's create answered")
            # the retry's create made the order; the dead worker's, landing after it, was
            # refused by the unique key
            assert await create_statuses(sandboxes, glob) == [200, 400]
        await assert_once_in_erp(sandboxes, order, status["store_order_number"])
        await ship(sandboxes, order.erp, status, TRACKING)
        done = await api.wait_state(
            http, order.pair, order.id, "shipped", run_status="COMPLETED", timeout_s=60.0
        )
        assert done["status"]["tracking_numbers"] == [TRACKING]
        await assert_once_in_erp(sandboxes, order, status["store_order_number"])


# ---- 3. Temporal unreachable when the webhook arrives ----------------------------------


async def delivery_status(sandbox: httpx.AsyncClient, order: PlacedOrder) -> tuple[int, int] | None:
    """(delivery attempts, last HTTP status) of the store's order event, once answered."""
    events = (await sandbox.get(f"/{order.store}/_sandbox/events")).json()["events"]
    event = next(e for e in events if e["id"] == order.event_id)
    if event["last_status"] is None:
        return None
    return int(event["attempts"]), int(event["last_status"])


async def test_webhooks_accepted_while_temporal_is_down_are_relayed_once_it_is_up(
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    http: httpx.AsyncClient,
    tmp_path: Path,
    services: Callable[[StackConfig], Services],
) -> None:
    """The API starts without Temporal (nothing listens on its address yet); a dev server
    comes up later on exactly that address. Both pairs in one go."""
    (temporal_port,) = free_ports(1)
    database_url = f"sqlite:///{tmp_path / 'commerce-sync.db'}"
    config = StackConfig(sandbox_url, database_url, f"127.0.0.1:{temporal_port}", tmp_path / "data")
    stack = services(config)
    api = stack.api()
    await api.wait_serving(http)
    code, readiness = await api.readiness(http)
    assert (code, readiness["down"]) == (503, ["temporal"]), readiness
    await point_webhooks(sandboxes, config, api.url)

    orders = [await place_order(sandboxes, pair) for pair in PAIRS]

    for order in orders:
        assert await eventually(
            partial(delivery_status, sandboxes, order), 30.0, f"{order.store}'s delivery"
        ) == (1, 202)
        (row,) = webhook_rows(database_url, order.store)
        assert row.event_id == order.event_id
        # Recorded and waiting: the relay tries nothing while no client is connected
        # (intake/relay.py), so the event holds no refusal against it when Temporal returns.
        assert row.status == EventStatus.RECEIVED
        assert (row.started_at, row.start_attempts) == (None, 0)
    code, readiness = await api.readiness(http)
    assert (code, readiness["down"]) == (503, ["temporal"]), readiness

    temporal = await WorkflowEnvironment.start_local(
        port=temporal_port,
        dev_server_existing_path=shutil.which("temporal")
        or str(Path(sys.executable).parent / "temporal"),
        search_attributes=list(search_attributes.ALL_KEYS),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_log_level="error",
    )
    try:
        stack.worker()
        await api.wait_ready(http)  # the API connected by itself
        for order in orders:
            waiting = await api.wait_state(
                http, order.pair, order.id, "awaiting_shipment", timeout_s=90.0
            )
            (row,) = webhook_rows(database_url, order.store)
            assert row.status == EventStatus.STARTED
            # Delivered once: the run was started from the database, by the relay.
            assert await delivery_status(sandboxes, order) == (1, 202)
            workflow_id = f"order:{order.pair}:{order.id}"
            assert len(await eventually(partial(runs_of, temporal.client, workflow_id))) == 1
            number = waiting["status"]["store_order_number"]
            assert len(await erp_sales_orders(sandboxes, order.erp, number)) == 1
            assert len(await erp_payments(sandboxes, order.erp, order.payment_reference)) == 1
    finally:
        stack.close()  # before its Temporal goes away
        await temporal.shutdown()
