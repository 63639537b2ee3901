"""The raw ceiling of bench/orders.py: a workflow that runs N activities doing nothing.

It lives in its own small module because the worker's workflow sandbox re-imports a
workflow's module for every run; bench/orders.py imports httpx and friends, which the
sandbox refuses.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench.noop")
async def noop(step: int) -> int:
    """Does nothing; returns its input so the payload round trip is real but tiny."""
    return step


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, activities: int) -> int:
        """Run `activities` no-op activities one after another, as an order run does."""
        for step in range(activities):
            await workflow.execute_activity(
                noop, step, start_to_close_timeout=timedelta(seconds=60)
            )
        return activities
