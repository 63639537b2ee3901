"""The call budget's shared bucket and its per-process queue, on a real SQLite database.

Two buckets on one database stand for two worker processes; the bucket takes the time as
an argument, so the windows below are counted on a stepped clock, not measured.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from commerce_sync.config.settings import BrightpearlSettings
from commerce_sync.store.budgets import BucketShape, SharedBucket
from commerce_sync.store.db import make_engine, migrate
from commerce_sync.systems.budget import CallBudget, CallContext, throttle_pause


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'budget.db'}")
    migrate(engine)
    return engine


def test_brightpearl_default_never_fills_a_minute() -> None:
    bp = BrightpearlSettings()
    per_minute = 60 / bp.call_interval_s + bp.burst
    assert per_minute <= 200 - bp.margin
    assert 60 / bp.call_interval_s >= 0.95 * 200  # >= 95 % of the budget sustained


def test_two_processes_never_exceed_the_budget_together(engine: Engine) -> None:
    shape = BucketShape(interval_s=0.1, burst=4)
    first = SharedBucket(engine, "brightpearl", shape)
    second = SharedBucket(engine, "brightpearl", shape)  # another process, same row
    granted: list[float] = []
    start = 1_000_000.0
    for step in range(3000):  # 3 s of both processes asking every millisecond
        now = start + step / 1000
        for bucket in (first, second):
            if bucket.take(now, priority=1) == 0.0:
                granted.append(now)
    # Every 1 s window holds at most 1 / interval + burst grants, whoever took them.
    for i, opened in enumerate(granted):
        in_window = sum(1 for t in granted[i:] if t < opened + 1.0)
        assert in_window <= 10 + 4
    # ... and the budget is used: the burst, then one call per interval.
    assert 4 + 29 <= len(granted) <= 4 + 30


def test_an_urgent_claim_holds_back_less_urgent_callers_of_other_processes(
    engine: Engine,
) -> None:
    shape = BucketShape(interval_s=1.0, burst=1)
    orders = SharedBucket(engine, "brightpearl", shape)
    catalog = SharedBucket(engine, "brightpearl", shape)
    now = 2_000_000.0
    assert catalog.take(now, priority=4) == 0.0  # the bucket's one call
    assert orders.take(now, priority=1) > 0  # refused: the order's process claims the next
    next_slot = now + 1.0
    assert catalog.take(next_slot, priority=4) > 0  # the claim keeps the slot for the order
    assert orders.take(next_slot, priority=1) == 0.0


def test_a_throttle_answer_holds_every_process(engine: Engine) -> None:
    shape = BucketShape(interval_s=0.01, burst=5)
    first = SharedBucket(engine, "acumatica", shape)
    second = SharedBucket(engine, "acumatica", shape)
    now = 3_000_000.0
    first.hold(now + 30.0)
    assert second.take(now + 29.9, priority=1) > 0
    assert second.take(now + 30.0, priority=1) == 0.0


def test_throttle_answers_are_read_as_the_systems_write_them() -> None:
    def answer(status: int, **headers: str) -> httpx.Response:
        return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()})

    assert throttle_pause(answer(503, brightpearl_next_throttle_period="1500")) == 1.5
    assert (
        throttle_pause(
            answer(
                200,
                brightpearl_requests_remaining="0",
                brightpearl_next_throttle_period="800",
            )
        )
        == 0.8
    )
    ok = answer(200, brightpearl_requests_remaining="150", brightpearl_next_throttle_period="800")
    assert throttle_pause(ok) is None
    assert throttle_pause(answer(429, retry_after="7")) == 7.0
    assert throttle_pause(answer(503)) is None  # an outage, not a throttle
    # A 503 while the period still has requests left is not the throttle either.
    unavailable = answer(
        503, brightpearl_requests_remaining="120", brightpearl_next_throttle_period="58000"
    )
    assert throttle_pause(unavailable) is None
    spent = answer(503, brightpearl_requests_remaining="0", brightpearl_next_throttle_period="900")
    assert throttle_pause(spent) == 0.9


async def test_at_idle_a_call_is_granted_at_once(engine: Engine) -> None:
    budget = CallBudget("kentico", SharedBucket(engine, "kentico", BucketShape(1.0, 3)))
    assert await budget.acquire(CallContext(priority=4)) is True
    assert budget.counts.queued == 0 and budget.counts.granted_at_once == 1


class HeldClock:
    """Stands still until `release()`, then runs: every caller is queued before a slot."""

    def __init__(self) -> None:
        self.released_at: float | None = None

    def __call__(self) -> float:
        if self.released_at is None:
            return 5_000_000.0
        return 5_000_010.0 + time.monotonic() - self.released_at

    def release(self) -> None:
        self.released_at = time.monotonic()


async def queued(budget: CallBudget, count: int) -> None:
    while budget.waiting < count:  # noqa: ASYNC110 (the budget signals nothing to tests)
        await asyncio.sleep(0.001)


async def test_an_urgent_call_is_served_before_queued_less_urgent_ones(engine: Engine) -> None:
    clock = HeldClock()
    bucket = SharedBucket(engine, "brightpearl", BucketShape(0.05, 1))
    budget = CallBudget("brightpearl", bucket, clock=clock)
    assert await budget.acquire(CallContext(priority=4)) is True  # the bucket is now empty
    served: list[str] = []

    async def call(name: str, context: CallContext) -> None:
        await budget.acquire(context)
        served.append(name)

    catalog = [
        asyncio.create_task(call(f"catalog-{i}", CallContext(priority=4, since=float(i))))
        for i in range(3)
    ]
    await queued(budget, 3)  # the catalog calls wait first
    order = asyncio.create_task(call("order", CallContext(priority=1, since=10.0)))
    await queued(budget, 4)
    clock.release()
    await asyncio.gather(order, *catalog)
    assert served == ["order", "catalog-0", "catalog-1", "catalog-2"]
    assert budget.counts.queued == 4 and budget.counts.granted == 5


async def test_an_older_run_goes_before_a_newer_one_of_the_same_priority(engine: Engine) -> None:
    clock = HeldClock()
    bucket = SharedBucket(engine, "brightpearl", BucketShape(0.05, 1))
    budget = CallBudget("brightpearl", bucket, clock=clock)
    await budget.acquire(CallContext())
    served: list[str] = []

    async def call(name: str, since: float) -> None:
        await budget.acquire(CallContext(priority=1, since=since))
        served.append(name)

    newer = asyncio.create_task(call("newer run", since=20.0))
    await queued(budget, 1)
    older = asyncio.create_task(call("older run", since=10.0))
    await queued(budget, 2)
    clock.release()
    await asyncio.gather(newer, older)
    assert served == ["older run", "newer run"]
