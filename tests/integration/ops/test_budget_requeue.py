"""A call still queued for its budget when its activity attempt ends is not a failure
(issue #15, point 2): on the real Temporal dev server, a store read whose system's shared
budget is held (as a throttle answer holds it) hands its place back before its attempt's
timeout, is retried, and goes out once the budget frees; no failed step is counted, the
only failed attempts are `BudgetQueued` ones (nothing sent), and the run completes.

The probe workflow is the test's own: its attempts get a short start-to-close timeout (the
production steps' 60 s is too long to outwait here). The activity, the worker's `Ports`
and its budget are the production ones, on a real database (SQLite, and Postgres when
COMMERCE_SYNC_TEST_POSTGRES_URL is set).
"""

from __future__ import annotations

import concurrent.futures
import uuid
from datetime import timedelta

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import Engine, select
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import Settings
from commerce_sync.contracts.catalog import StoreProductRef
from commerce_sync.ops.heartbeat import HeartbeatInterceptor
from commerce_sync.store.budgets import RUNS
from commerce_sync.worker import Ports
from tests.integration.ops.budget_probe import ATTEMPT, HELD, free_after_hand_backs

SYSTEM, PAIR = "xcart", "xcart-acumatica"


@workflow.defn(name="BudgetRequeueProbe", sandboxed=False)
class BudgetRequeueProbeWorkflow:
    @workflow.run
    async def run(self, ref: StoreProductRef) -> bool:
        found = await workflow.execute_activity(
            "store.find_product",
            ref,
            start_to_close_timeout=ATTEMPT,
            heartbeat_timeout=timedelta(seconds=15),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1)),
        )
        return found is not None


def failure_types(failure: Failure) -> list[str]:
    """The application error types along a failure's chain of causes (the server may
    wrap a long one, stack traces and all, in a "Failure exceeds size limit." of its own)."""
    found = []
    while failure.ByteSize():
        if failure.HasField("application_failure_info"):
            found.append(failure.application_failure_info.type)
        failure = failure.cause
    return found


def failed_steps() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if (
                sample.name == "commerce_sync_steps_failed_total"
                and sample.labels.get("system") == SYSTEM
            ):
                total += sample.value
    return total


async def test_a_call_queued_past_its_attempt_is_requeued_not_failed(
    temporal_client: Client,
    settings: Settings,
    sandboxes: httpx.AsyncClient,
    engine: Engine,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    ports = Ports(settings, engine=engine)
    budget = ports.budgets[SYSTEM]
    queue = f"budget-requeue-{uuid.uuid4()}"
    worker = Worker(
        temporal_client,
        task_queue=queue,
        workflows=[BudgetRequeueProbeWorkflow],
        activities=list(ports.activities(load_pairs(None))[SYSTEM]),
        activity_executor=executor,
        interceptors=[HeartbeatInterceptor()],
    )
    failed_before = failed_steps()
    budget.bucket.hold(HELD)  # what a throttle answer does, for as long as the test says
    (await sandboxes.delete(f"/{SYSTEM}/_sandbox/requests")).raise_for_status()
    try:
        async with worker:
            handle = await temporal_client.start_workflow(
                BudgetRequeueProbeWorkflow.run,
                StoreProductRef(pair=PAIR, sku=f"no-such-sku-{uuid.uuid4().hex[:8]}"),
                id=f"budget-requeue-{uuid.uuid4()}",
                task_queue=queue,
            )

            await free_after_hand_backs(budget, engine, 2)  # then the budget frees
            assert await handle.result() is False  # no such product: the read went out
            history = await handle.fetch_history()
    finally:
        await ports.aclose()
    log = (await sandboxes.get(f"/{SYSTEM}/_sandbox/requests")).json()["requests"]

    # Temporal keeps an activity's retried attempts out of the history: its start event
    # says which attempt went through and the last failure before it.
    assert not [
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    (started,) = [
        e.activity_task_started_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert started.attempt == budget.counts.gave_up + 1 >= 3
    assert "BudgetQueued" in failure_types(started.last_failure)
    # Every request the store got was granted by the budget, after the attempts that sent none.
    assert budget.counts.granted == len(log) >= 1
    # No failed step counted for the queued attempts, of any error class.
    assert failed_steps() == failed_before
    # Each retry waited again as the same run: one age, recorded once.
    with engine.begin() as conn:
        runs = conn.execute(select(RUNS.c.run)).scalars().all()
    assert runs == [
        history.events[0].workflow_execution_started_event_attributes.original_execution_run_id
    ]
