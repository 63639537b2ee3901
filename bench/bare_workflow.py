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
    async def run(self, activities: int, local_activities: int = 0) -> int:
        """Run `local_activities` no-op local activities and `activities` no-op activities,
        one after another, as many of each as an order run does."""
        for step in range(local_activities):
            await workflow.execute_local_activity(
                noop, step, start_to_close_timeout=timedelta(seconds=30)
            )
        for step in range(activities):
            await workflow.execute_activity(
                noop, step, start_to_close_timeout=timedelta(seconds=60)
            )
        return activities + local_activities
