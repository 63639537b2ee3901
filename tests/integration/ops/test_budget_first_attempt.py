"""An attempt that only waited for the call budget leaves its retry a first attempt
(issue #15, points 1 and 2): on the real Temporal dev server, Brightpearl's customer
create, held in its budget until two attempts have handed their place back, then creates
as a first attempt does, with no search before the create and none after it. A retry
after an attempt that did send (its create refused with a 503) still looks first.

The probe workflow is the test's own (short attempts, so the hand-backs come in
seconds); the activity, the worker's `Ports`, its budget and the heartbeat memory are the
production ones, on a real database and against the Brightpearl sandbox.
"""

from __future__ import annotations

import concurrent.futures
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Engine
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import Settings
from commerce_sync.contracts.steps import CustomerCreate, CustomerCreated
from commerce_sync.domain.models import Customer
from commerce_sync.ops.heartbeat import HeartbeatInterceptor
from commerce_sync.worker import Ports
from tests.integration.ops.budget_probe import ATTEMPT, HELD, free_after_hand_backs

SYSTEM, PAIR = "brightpearl", "kentico-brightpearl"
SEARCH = "contact-service/contact-search"
CONTACT_POST = "contact-service/contact"


@workflow.defn(name="BudgetFirstAttemptProbe", sandboxed=False)
class BudgetFirstAttemptProbeWorkflow:
    @workflow.run
    async def run(self, request: CustomerCreate) -> str:
        created: CustomerCreated = await workflow.execute_activity(
            "erp.create_customer",
            request,
            result_type=CustomerCreated,
            start_to_close_timeout=ATTEMPT,
            heartbeat_timeout=timedelta(seconds=15),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1)),
        )
        return created.customer_id


def new_customer() -> CustomerCreate:
    tag = uuid.uuid4().hex[:10]
    customer = Customer(email=f"first-{tag}@example.com", first_name="Ada", last_name=tag)
    return CustomerCreate(pair=PAIR, customer=customer)


async def brightpearl_calls(sandboxes: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await sandboxes.get(f"/{SYSTEM}/_sandbox/requests")
    response.raise_for_status()
    calls: list[dict[str, Any]] = response.json()["requests"]
    return calls


def searches(calls: list[dict[str, Any]]) -> int:
    return sum(1 for call in calls if call["method"] == "GET" and SEARCH in call["path"])


def contact_posts(calls: list[dict[str, Any]]) -> int:
    return sum(
        1 for call in calls if call["method"] == "POST" and call["path"].endswith(CONTACT_POST)
    )


async def attempt_that_went_through(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    (started,) = [
        e.activity_task_started_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    return started.attempt


async def test_a_retry_after_hand_backs_alone_creates_as_a_first_attempt(
    temporal_client: Client,
    settings: Settings,
    sandboxes: httpx.AsyncClient,
    engine: Engine,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    ports = Ports(settings, engine=engine)
    budget = ports.budgets[SYSTEM]
    queue = f"budget-first-{uuid.uuid4()}"
    worker = Worker(
        temporal_client,
        task_queue=queue,
        workflows=[BudgetFirstAttemptProbeWorkflow],
        activities=list(ports.activities(load_pairs(None))[SYSTEM]),
        activity_executor=executor,
        interceptors=[HeartbeatInterceptor()],
    )
    budget.bucket.hold(HELD)  # what a throttle answer does, for as long as the test says
    (await sandboxes.delete(f"/{SYSTEM}/_sandbox/requests")).raise_for_status()
    try:
        async with worker:
            handle = await temporal_client.start_workflow(
                BudgetFirstAttemptProbeWorkflow.run,
                new_customer(),
                id=f"budget-first-{uuid.uuid4()}",
                task_queue=queue,
            )

            await free_after_hand_backs(budget, engine, 2)  # then the budget frees
            assert (await handle.result()).isdigit()
            went_through = await attempt_that_went_through(handle)
    finally:
        await ports.aclose()
    calls = await brightpearl_calls(sandboxes)

    assert went_through >= 3  # two or more attempts handed back before it
    # The attempt that went through created as attempt 1 does: no look before or after.
    assert searches(calls) == 0, calls
    assert contact_posts(calls) == 1, calls
    assert budget.counts.granted == len(calls)


async def test_a_retry_after_an_attempt_that_sent_still_looks_first(
    temporal_client: Client,
    settings: Settings,
    sandboxes: httpx.AsyncClient,
    engine: Engine,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    ports = Ports(settings, engine=engine)
    queue = f"budget-first-{uuid.uuid4()}"
    worker = Worker(
        temporal_client,
        task_queue=queue,
        workflows=[BudgetFirstAttemptProbeWorkflow],
        activities=list(ports.activities(load_pairs(None))[SYSTEM]),
        activity_executor=executor,
        interceptors=[HeartbeatInterceptor()],
    )
    (await sandboxes.delete(f"/{SYSTEM}/_sandbox/requests")).raise_for_status()
    refuse_once = {"rules": [{"match": f"POST */{CONTACT_POST}", "status": 503, "count": 1}]}
    (await sandboxes.post(f"/{SYSTEM}/_sandbox/faults", json=refuse_once)).raise_for_status()
    try:
        async with worker:
            handle = await temporal_client.start_workflow(
                BudgetFirstAttemptProbeWorkflow.run,
                new_customer(),
                id=f"budget-first-{uuid.uuid4()}",
                task_queue=queue,
            )
            assert (await handle.result()).isdigit()
            went_through = await attempt_that_went_through(handle)
    finally:
        (await sandboxes.delete(f"/{SYSTEM}/_sandbox/faults")).raise_for_status()
        await ports.aclose()
    calls = await brightpearl_calls(sandboxes)

    assert went_through == 2
    # The refused attempt had sent its create: the retry looked for the customer first.
    assert searches(calls) >= 1, calls
    assert contact_posts(calls) == 2, calls
