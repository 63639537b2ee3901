"""Record the change-feed history that tests/unit/test_replay.py replays: a read whose
three allowed attempts all handed their budget place back, scheduled again by
`workflows/requeue.py` (patch `requeue-budget-hand-backs`), then read.

The history is the workflow's: what the activity answered, in the order it answered.
The read here answers as the production activity does when its call budget is queued
past each attempt (`ApplicationError` of type `BudgetQueued`, retryable, details naming
no failed attempt: `activities/errors.py`, shown on the real budget by
tests/integration/ops/test_budget_requeue_bounded.py), three times, and then reads;
waiting out three five-minute attempts for real would take a quarter of an hour.
Self-contained (its own dev server):

    .venv/bin/python -m tests.histories.record_feed [--overwrite]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio import activity
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from commerce_sync.contracts.activities import Feeds
from commerce_sync.contracts.feeds import FeedPoll, FeedRead
from commerce_sync.workflows.change_feed import READ_RETRY, ChangeFeedWorkflow

HERE = Path(__file__).parent
NAME = "ChangeFeed-kentico-brightpearl-handed-back"
HANDED_BACK_ATTEMPTS = READ_RETRY.maximum_attempts
calls = 0


@activity.defn(name=Feeds.read_orders.name)
async def read_orders(poll: FeedPoll) -> FeedRead:
    global calls
    calls += 1
    if calls <= HANDED_BACK_ATTEMPTS:
        raise ApplicationError(
            "kentico: call budget: still queued when this attempt ends; its retry waits "
            "again in the same place (nothing was sent)",
            {
                "system": "kentico",
                "status": None,
                "field": None,
                "message": "call budget: still queued when this attempt ends",
                "failed_attempts": 0,
            },
            type="BudgetQueued",
        )
    at = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    return FeedRead(
        pair=poll.pair,
        entity=poll.entity,
        since=at,
        read_from=at,
        seen=1,
        started=1,
        existing=0,
        unsuccessful=0,
    )


async def record(overwrite: bool) -> None:
    target = HERE / f"{NAME}.json"
    if target.exists() and not overwrite:
        raise SystemExit(f"{target.name} exists (--overwrite to replace it)")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=shutil.which("temporal")
        or str(Path(sys.executable).parent / "temporal"),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_log_level="error",
    )
    try:
        queue = f"record-feed-{uuid.uuid4()}"
        async with Worker(
            env.client, task_queue=queue, workflows=[ChangeFeedWorkflow], activities=[read_orders]
        ):
            handle = await env.client.start_workflow(
                ChangeFeedWorkflow.run,
                FeedPoll(pair="kentico-brightpearl", entity="orders"),
                id=f"feed-orders:kentico-brightpearl:{uuid.uuid4().hex[:8]}",
                task_queue=queue,
            )
            await handle.result()
        history = await handle.fetch_history()
    finally:
        await env.shutdown()
    target.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
    print(f"recorded {handle.id} -> {target.name} ({len(history.events)} events)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overwrite", action="store_true")
    asyncio.run(record(parser.parse_args().overwrite))
