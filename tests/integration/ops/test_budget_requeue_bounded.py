"""A bounded retry counts failed attempts, not budget hand-backs (issue #15, point 2:
0 failures from throttling): on the real Temporal dev server, a Brightpearl read whose
retry policy allows two attempts waits through three hand-backs (the budget held by the
test) and then reads, scheduled again by `workflows/requeue.py`; the same retry policy
still ends after two attempts that the system refused.

The probe workflow is the test's own (short attempts, so the hand-backs come in
seconds) around the production `execute_bounded`; the activity, the worker's `Ports`,
its budget and the heartbeat memory are the production ones, on a real database and
against the Brightpearl sandbox. Its history is replayed, patch marker included.
"""

from __future__ import annotations

import concurrent.futures
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import Settings
from commerce_sync.contracts.steps import CustomerLookup
from commerce_sync.ops.heartbeat import HeartbeatInterceptor
from commerce_sync.worker import Ports
from commerce_sync.workflows.requeue import REQUEUE_PATCH, execute_bounded
from tests.integration.ops.budget_probe import ATTEMPT, HELD, free_after_hand_backs

SYSTEM, PAIR = "brightpearl", "kentico-brightpearl"
TWO_ATTEMPTS = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=2)


@workflow.defn(name="BoundedRequeueProbe", sandboxed=False)
class BoundedRequeueProbeWorkflow:
    @workflow.run
    async def run(self, lookup: CustomerLookup) -> str:
        found: str | None = await execute_bounded(
            "erp.find_customer",
            lookup,
            result_type=str,
            task_queue=f"{workflow.info().task_queue}-{SYSTEM}",
            start_to_close_timeout=ATTEMPT,
            heartbeat_timeout=timedelta(seconds=15),
            retry_policy=TWO_ATTEMPTS,
        )
        return found or "none"


def lookup() -> CustomerLookup:
    return CustomerLookup(pair=PAIR, email=f"nobody-{uuid.uuid4().hex[:10]}@example.com")


def workers(
    client: Client, ports: Ports, queue: str, executor: concurrent.futures.ThreadPoolExecutor
) -> tuple[Worker, Worker]:
    """The probe on its own queue; the production Brightpearl activities on theirs (a
    queue of the test's own, so no other test's worker takes them)."""
    probe = Worker(client, task_queue=queue, workflows=[BoundedRequeueProbeWorkflow])
    system = Worker(
        client,
        task_queue=f"{queue}-{SYSTEM}",
        activities=list(ports.activities(load_pairs(None))[SYSTEM]),
        activity_executor=executor,
        interceptors=[HeartbeatInterceptor()],
    )
    return probe, system


async def scheduled_and_failures(client: Client, workflow_id: str) -> tuple[int, list[Any]]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled = sum(
        1 for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )
    failures = [
        e.activity_task_failed_event_attributes.failure
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    return scheduled, failures


async def test_hand_backs_beyond_the_attempts_allowed_are_scheduled_again(
    temporal_client: Client,
    settings: Settings,
    engine: Engine,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    ports = Ports(settings, engine=engine)
    budget = ports.budgets[SYSTEM]
    queue = f"bounded-requeue-{uuid.uuid4()}"
    probe, system = workers(temporal_client, ports, queue, executor)
    workflow_id = f"bounded-requeue-{uuid.uuid4()}"
    budget.bucket.hold(HELD)  # what a throttle answer does, for as long as the test says
    try:
        async with probe, system:
            handle = await temporal_client.start_workflow(
                "BoundedRequeueProbe",
                lookup(),
                id=workflow_id,
                task_queue=queue,
                result_type=str,
            )

            await free_after_hand_backs(budget, engine, 3, timeout_s=90)  # then the budget frees
            assert await handle.result() == "none"  # nobody has that e-mail
    finally:
        await ports.aclose()

    scheduled, failures = await scheduled_and_failures(temporal_client, workflow_id)
    assert scheduled >= 2  # two attempts handed back, then scheduled again
    (first_failure, *_) = failures
    details = pydantic_data_converter.payload_converter.from_payloads(
        first_failure.application_failure_info.details.payloads
    )
    assert first_failure.application_failure_info.type == "BudgetQueued"
    assert details[0]["failed_attempts"] == 0  # none of them failed: both handed back

    history = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
    markers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    assert markers, "the patch marker"
    replayer = Replayer(
        workflows=[BoundedRequeueProbeWorkflow], data_converter=pydantic_data_converter
    )
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None, replayed.replay_failure
    assert REQUEUE_PATCH in str(markers[0])


async def test_attempts_the_system_failed_still_end_the_retry(
    temporal_client: Client,
    settings: Settings,
    sandboxes: httpx.AsyncClient,
    engine: Engine,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    ports = Ports(settings, engine=engine)
    queue = f"bounded-requeue-{uuid.uuid4()}"
    probe, system = workers(temporal_client, ports, queue, executor)
    workflow_id = f"bounded-requeue-{uuid.uuid4()}"
    # Retryable (a 503 that is no throttle), and refused on every try.
    refuse = {"rules": [{"match": "GET */contact-service/contact-search", "status": 503}]}
    (await sandboxes.post(f"/{SYSTEM}/_sandbox/faults", json=refuse)).raise_for_status()
    try:
        async with probe, system:
            handle = await temporal_client.start_workflow(
                "BoundedRequeueProbe",
                lookup(),
                id=workflow_id,
                task_queue=queue,
                result_type=str,
            )
            with pytest.raises(WorkflowFailureError):
                await handle.result()
    finally:
        (await sandboxes.delete(f"/{SYSTEM}/_sandbox/faults")).raise_for_status()
        await ports.aclose()

    scheduled, failures = await scheduled_and_failures(temporal_client, workflow_id)
    assert scheduled == 1 and len(failures) == 1
    assert failures[0].application_failure_info.type != "BudgetQueued"
