"""The ceilings of bench/orders.py and the shapes of bench/temporal_costs.py: a workflow
whose steps do nothing, shaped as asked (the raw ceiling's: only as many steps as an order
run; the shaped ceiling's: also its upserts, payload sizes and another activity queue).

It lives in a small module of its own that imports only what a workflow may: both
benches run this one workflow, and it would pass the SDK's default sandbox too
(bench/orders.py imports httpx and friends, which that sandbox refuses).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow

from commerce_sync.contracts.search_attributes import SYNC_STATE


@dataclass(frozen=True)
class ProbeShape:
    """What a `CostProbeWorkflow` does besides its no-op steps (bench/temporal_costs.py)."""

    activities: int
    local_activities: int
    pad_bytes: int = 0
    """Each step's argument and result carry this many bytes (an order's are 1-5 KB)."""
    upserts: int = 0
    """`SyncState` upserts, one after each of the first activities (an order run makes
    four before it waits for the shipment)."""
    activity_queue: str | None = None
    """The activities' task queue; None: the workflow's own, where the SDK asks for them
    eagerly (the server hands the first one back with the workflow task's completion)."""


@activity.defn(name="bench.echo")
async def echo(text: str) -> str:
    """Does nothing; hands its argument back, so the payload goes both ways."""
    return text


@workflow.defn(name="BenchCostProbeWorkflow")
class CostProbeWorkflow:
    @workflow.run
    async def run(self, shape: ProbeShape) -> int:
        text = "x" * shape.pad_bytes
        for _ in range(shape.local_activities):
            await workflow.execute_local_activity(
                echo, text, start_to_close_timeout=timedelta(seconds=30)
            )
        for step in range(shape.activities):
            await workflow.execute_activity(
                echo,
                text,
                task_queue=shape.activity_queue,
                start_to_close_timeout=timedelta(seconds=60),
            )
            if step < shape.upserts:
                workflow.upsert_search_attributes([SYNC_STATE.value_set(f"step-{step}")])
        return shape.activities + shape.local_activities
