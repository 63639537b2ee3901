"""The call budget serves waiting calls in one order across worker processes (issue #15,
point 2): by priority, then by the age of their run, the same in every process, so a run
that has started goes on before newer runs, whichever worker its next step lands on, and
a newer run waits only for the runs ahead of it.

On the real Temporal dev server, two worker processes (two `Ports` on one database,
SQLite and Postgres, each with its own task queue so the test says where each step runs)
serve the X-Cart store's real `store.find_product` activity. The budget is given one
slot at a time by the test (a budget whose next slot is hours away, reset between slots),
once the expected callers wait, so the order the slots went in is read from the store
sandbox's request log, not from timing:

- run A: a read in process 1, then a read in process 2;
- run B, newer: a read in process 2;
- run C, newest: a read in process 1.

Served: A, then A's second read (its run is older than B though process 2 first saw it
after B), then B, then C.
"""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
from sqlalchemy import Engine, update
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import Settings
from commerce_sync.contracts.catalog import StoreProductRef
from commerce_sync.ops.heartbeat import HeartbeatInterceptor
from commerce_sync.store.budgets import TABLE
from commerce_sync.systems.budget import CallBudget
from commerce_sync.worker import Ports
from tests.integration.orders.order_stack import eventually

SYSTEM, PAIR = "xcart", "xcart-acumatica"
ONE_SLOT_AT_A_TIME = {
    "rate_per_second": 3 / 36_000,
    "budget_window_s": 36_000.0,
    "burst": 1,
    "margin": 1,
}
"""A call every 36 000 s: after each slot the test gives, the next is hours away."""


@workflow.defn(name="FairBudgetProbe", sandboxed=False)
class FairBudgetProbeWorkflow:
    @workflow.run
    async def run(self, steps: list[tuple[str, str]]) -> int:
        """Each step reads a product by SKU on a task queue (a worker process)."""
        for queue, sku in steps:
            await workflow.execute_activity(
                "store.find_product",
                StoreProductRef(pair=PAIR, sku=sku),
                task_queue=queue,
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(seconds=15),
            )
        return len(steps)


async def until(check: Callable[[], bool], what: str) -> None:
    async def checked() -> bool:
        return check()

    await eventually(checked, 60, what)


async def test_waiting_calls_are_served_oldest_run_first_across_processes(
    temporal_client: Client,
    settings: Settings,
    sandboxes: httpx.AsyncClient,
    engine: Engine,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    budget = type(settings.xcart).model_validate(settings.xcart.model_dump() | ONE_SLOT_AT_A_TIME)
    slow = settings.model_copy(update={"xcart": budget})
    processes = [Ports(slow, engine=engine), Ports(slow, engine=engine)]
    queues = [f"fair-budget-{n}-{uuid.uuid4()}" for n in (1, 2)]
    pairs = load_pairs(None)
    workers = [
        Worker(
            temporal_client,
            task_queue=queue,
            workflows=[FairBudgetProbeWorkflow],
            activities=list(ports.activities(pairs)[SYSTEM]),
            activity_executor=executor,
            interceptors=[HeartbeatInterceptor()],
        )
        for queue, ports in zip(queues, processes, strict=True)
    ]
    first, second = (ports.budgets[SYSTEM] for ports in processes)
    tag = uuid.uuid4().hex[:8]
    sku = {run: f"fair{run}{tag}" for run in "ABC"}
    first.bucket.hold(4_000_000_000.0)  # nothing goes out until the test gives a slot
    (await sandboxes.delete(f"/{SYSTEM}/_sandbox/requests")).raise_for_status()

    async def start(steps: list[tuple[str, str]]) -> WorkflowHandle[FairBudgetProbeWorkflow, int]:
        return await temporal_client.start_workflow(
            FairBudgetProbeWorkflow.run,
            steps,
            id=f"fair-budget-{uuid.uuid4()}",
            task_queue=queues[0],
        )

    async def waiting(budget: CallBudget, count: int, what: str) -> None:
        await until(lambda: budget.waiting == count, what)

    async def sent() -> list[str]:
        log = (await sandboxes.get(f"/{SYSTEM}/_sandbox/requests")).json()["requests"]
        return [
            next((run for run, s in sku.items() if s in str(r.get("query", ""))), "?") for r in log
        ]

    async def one_slot(then: Callable[[], Awaitable[None]]) -> None:
        count = len(await sent())
        with engine.begin() as conn:
            conn.execute(update(TABLE).where(TABLE.c.system == SYSTEM).values(ready_at=0.0))

        async def went_out() -> bool:
            return len(await sent()) > count

        await eventually(went_out, 60, "the slot to be used")
        await then()

    async def nothing() -> None:
        return None

    try:
        async with workers[0], workers[1]:
            run_a = await start([(queues[0], sku["A"]), (queues[1], sku["A"])])
            await waiting(first, 1, "run A's first read to wait in process 1")
            run_b = await start([(queues[1], sku["B"])])
            await waiting(second, 1, "run B's read to wait in process 2")
            run_c = await start([(queues[0], sku["C"])])
            await waiting(first, 2, "run C's read to wait in process 1")

            async def a_second_read_waits() -> None:
                await waiting(second, 2, "run A's second read to wait in process 2, with B")

            await one_slot(a_second_read_waits)
            for _ in range(3):
                await one_slot(nothing)
            results = [await run.result() for run in (run_a, run_b, run_c)]
    finally:
        for ports in processes:
            await ports.aclose()

    assert results == [2, 1, 1]
    # Run A's second read, on the process that saw it last, goes before B's; then C's.
    assert await sent() == ["A", "A", "B", "C"]
    assert first.counts.gave_up == second.counts.gave_up == 0
    assert first.counts.queued == 2 and second.counts.queued == 2
