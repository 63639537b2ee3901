"""The worker's heartbeat interceptor (commerce_sync/ops/heartbeat.py) on the real Temporal
dev server: an activity that runs longer than its heartbeat timeout, and never heartbeats
itself, completes on its one allowed attempt on a worker with the interceptor, async and
sync (thread pool) activities alike. On a worker without the interceptor the same attempt
fails with a heartbeat timeout: what the interceptor prevents.

The probe workflow and activities are the test's own: the production workflows take a
15 s heartbeat timeout, too long to outlast here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutType
from temporalio.exceptions import TimeoutError as TemporalTimeout
from temporalio.worker import Worker

from commerce_sync.ops.heartbeat import HeartbeatInterceptor

HEARTBEAT_TIMEOUT = timedelta(seconds=2)
RUN_S = 5.0
"""How long each probe activity runs: more than twice its heartbeat timeout."""


@activity.defn(name="probe.async_wait")
async def async_wait(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "async done"


@activity.defn(name="probe.sync_wait")
def sync_wait(seconds: float) -> str:
    time.sleep(seconds)
    return "sync done"


@workflow.defn(name="HeartbeatProbe", sandboxed=False)
class HeartbeatProbeWorkflow:
    @workflow.run
    async def run(self, activity_name: str) -> str:
        result: str = await workflow.execute_activity(
            activity_name,
            RUN_S,
            result_type=str,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
        return result


def probe_worker(
    client: Client, queue: str, executor: concurrent.futures.Executor, *, heartbeats: bool
) -> Worker:
    return Worker(
        client,
        task_queue=queue,
        workflows=[HeartbeatProbeWorkflow],
        activities=[async_wait, sync_wait],
        activity_executor=executor,
        interceptors=[HeartbeatInterceptor()] if heartbeats else [],
    )


async def probe(client: Client, queue: str, activity_name: str) -> str | BaseException:
    """The probe run's result, or the cause of its activity's failure."""
    try:
        result: str = await client.execute_workflow(
            HeartbeatProbeWorkflow.run,
            activity_name,
            id=f"heartbeat-probe-{uuid.uuid4()}",
            task_queue=queue,
        )
        return result
    except WorkflowFailureError as failure:
        assert isinstance(failure.cause, ActivityError), failure.cause
        assert failure.cause.cause is not None
        return failure.cause.cause


async def test_activities_outlast_their_heartbeat_timeout_only_with_the_interceptor(
    temporal_client: Client, executor: concurrent.futures.ThreadPoolExecutor
) -> None:
    beating, silent = f"heartbeat-on-{uuid.uuid4()}", f"heartbeat-off-{uuid.uuid4()}"
    async with (
        probe_worker(temporal_client, beating, executor, heartbeats=True),
        probe_worker(temporal_client, silent, executor, heartbeats=False),
    ):
        outcomes = await asyncio.gather(
            probe(temporal_client, beating, "probe.async_wait"),
            probe(temporal_client, beating, "probe.sync_wait"),
            probe(temporal_client, silent, "probe.async_wait"),
            probe(temporal_client, silent, "probe.sync_wait"),
        )
    assert list(outcomes[:2]) == ["async done", "sync done"]
    for outcome in outcomes[2:]:
        assert isinstance(outcome, TemporalTimeout), outcome
        assert outcome.type == TimeoutType.HEARTBEAT, outcome
