"""What an attempt remembers reaches its retries (commerce_sync/ops/heartbeat.py), on the
real Temporal dev server: the record rides in the activity's heartbeat details, the
worker's regular beats resend it instead of overwriting it with nothing, and a record
made just before a failure (its beat still held back by the SDK's throttle) goes out
with the failure. Async and sync (thread pool) activities alike.

Each probe activity fails its first two attempts and answers, on its third, what it
found recorded: the first attempt records two values back to back and outlives a few
regular beats before failing; the second outlives a few more (only the handed-down
record to resend) and records a third value.

`temporalio.testing.ActivityEnvironment` runs no worker interceptors, so it cannot show
this: the probes run on a real worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from commerce_sync.ops.heartbeat import HEARTBEAT_MEMORY, HeartbeatInterceptor, remembered
from commerce_sync.systems.attempts import NO_MEMORY, AttemptMemory

HEARTBEAT_TIMEOUT = timedelta(seconds=1.5)
HOLD_S = 1.5
"""How long an attempt runs on after recording: three regular beats (one per 0.5 s)."""
KEYS = ("first", "second", "third")


def _found(memory: AttemptMemory) -> dict[str, str]:
    return {key: value for key in KEYS if (value := memory.get(key)) is not None}


@activity.defn(name="probe.remember_async")
async def remember_async() -> dict[str, str]:
    attempt = activity.info().attempt
    if attempt == 1:
        HEARTBEAT_MEMORY.put("first", "1")
        HEARTBEAT_MEMORY.put("second", "2")
        await asyncio.sleep(HOLD_S)
        raise ApplicationError("the first attempt fails after recording")
    if attempt == 2:
        await asyncio.sleep(HOLD_S)
        HEARTBEAT_MEMORY.put("third", "3")
        raise ApplicationError("the second attempt fails after recording")
    return _found(HEARTBEAT_MEMORY)


@activity.defn(name="probe.remember_sync")
def remember_sync() -> dict[str, str]:
    attempt = activity.info().attempt
    if attempt == 1:
        HEARTBEAT_MEMORY.put("first", "1")
        HEARTBEAT_MEMORY.put("second", "2")
        time.sleep(HOLD_S)
        raise ApplicationError("the first attempt fails after recording")
    if attempt == 2:
        time.sleep(HOLD_S)
        HEARTBEAT_MEMORY.put("third", "3")
        raise ApplicationError("the second attempt fails after recording")
    return _found(HEARTBEAT_MEMORY)


@workflow.defn(name="AttemptMemoryProbe", sandboxed=False)
class AttemptMemoryProbeWorkflow:
    @workflow.run
    async def run(self, activity_name: str) -> dict[str, str]:
        found: dict[str, str] = await workflow.execute_activity(
            activity_name,
            result_type=dict[str, str],
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100), maximum_attempts=3
            ),
        )
        return found


async def test_a_retry_finds_what_its_earlier_attempts_remembered(
    temporal_client: Client, executor: concurrent.futures.ThreadPoolExecutor
) -> None:
    queue = f"attempt-memory-{uuid.uuid4()}"
    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[AttemptMemoryProbeWorkflow],
        activities=[remember_async, remember_sync],
        activity_executor=executor,
        interceptors=[HeartbeatInterceptor()],
    ):
        found = await asyncio.gather(
            *(
                temporal_client.execute_workflow(
                    AttemptMemoryProbeWorkflow.run,
                    name,
                    id=f"attempt-memory-{uuid.uuid4()}",
                    task_queue=queue,
                )
                for name in ("probe.remember_async", "probe.remember_sync")
            )
        )
    expected = {"first": "1", "second": "2", "third": "3"}
    assert found == [expected, expected]


def test_outside_an_activity_nothing_is_remembered() -> None:
    HEARTBEAT_MEMORY.put("key", "value")
    assert remembered("key") is None
    NO_MEMORY.put("key", "value")
    assert NO_MEMORY.get("key") is None
