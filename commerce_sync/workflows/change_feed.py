"""The change feed's tick: one read of a store's changed orders (`Feeds.read_orders`),
return requests (`Feeds.read_returns`) or customers (`Feeds.read_customers`).

Started by the pair's Temporal Schedules `feed-{orders,returns,customers}:{pair}`
(every minute when the store
sends no webhooks, every quarter hour as a safety net when it does; pausable in the Web
UI's Schedules page). The read itself keeps the feed's mark in the app database, so a
tick that fails leaves the next one to cover the same changes.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from commerce_sync.contracts.activities import Feeds
    from commerce_sync.contracts.feeds import FeedPoll, FeedRead
    from commerce_sync.workflows.requeue import execute_bounded

READ_TIMEOUT = timedelta(minutes=5)
# A few quick tries; past them the next tick of the schedule reads the same changes.
READ_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=20),
    maximum_attempts=3,
)


@workflow.defn(name="ChangeFeed")
class ChangeFeedWorkflow:
    @workflow.run
    async def run(self, poll: FeedPoll) -> FeedRead:
        activity = {
            "orders": Feeds.read_orders,
            "returns": Feeds.read_returns,
            "customers": Feeds.read_customers,
            "catalog": Feeds.read_products,
        }[poll.entity]
        read: FeedRead = await execute_bounded(
            activity.name,
            poll,
            result_type=activity.result_type,
            start_to_close_timeout=READ_TIMEOUT,
            retry_policy=READ_RETRY,
        )
        return read
