"""The workers a `CostProbeWorkflow` of a given shape runs on (bench/bare_workflow.py), for
bench/orders.py's ceilings and bench/temporal_costs.py's shapes alike."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare_workflow import CostProbeWorkflow, ProbeShape, echo
from commerce_sync.worker import workflow_runner


@contextlib.asynccontextmanager
async def probe_workers(client: Client, shape: ProbeShape, task_queue: str) -> AsyncIterator[None]:
    """Run the probe's workflow on `task_queue` with the order runs' workflow runner, and,
    when the shape sends its activities to another queue, a worker there; shut both down
    (gracefully) on leaving."""
    workers = [
        Worker(
            client,
            task_queue=task_queue,
            workflows=[CostProbeWorkflow],
            activities=[echo],
            workflow_runner=workflow_runner(),
        )
    ]
    if shape.activity_queue is not None:
        workers.append(Worker(client, task_queue=shape.activity_queue, activities=[echo]))
    async with contextlib.AsyncExitStack() as running:
        for worker in workers:
            await running.enter_async_context(worker)
        yield
