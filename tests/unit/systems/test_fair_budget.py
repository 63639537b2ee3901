"""The call budget is fair across processes (issue #15, point 2): a slot goes to the
caller ahead in one queue of every process's waiting calls (priority, then its run's
age), on SQLite and on Postgres (the `engine` fixture runs each test on both when
COMMERCE_SYNC_TEST_POSTGRES_URL is set).

Two buckets or budgets on one database stand for two worker processes; the bucket takes
the time as an argument, so slots are counted on a stepped or held clock, not measured.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import Engine, select

from commerce_sync.store.budgets import (
    CLAIM_GRACE_S,
    CLAIM_RENEWED_WITHIN_S,
    LAPSED_KEPT_S,
    WAITERS,
    BucketShape,
    SharedBucket,
    kept_place,
)
from commerce_sync.systems.budget import CallBudget, CallContext
from tests.unit.systems.test_call_budget import queued

ORDER, CATALOG = 1, 4


class HeldClock:
    """Stands still until `release()`, then runs on from where it stood: every caller is
    queued, and has recorded itself, before the next slot comes."""

    def __init__(self) -> None:
        self.released_at: float | None = None

    def __call__(self) -> float:
        if self.released_at is None:
            return 5_000_000.0
        return 5_000_000.0 + time.monotonic() - self.released_at

    def release(self) -> None:
        self.released_at = time.monotonic()


def test_a_newer_run_in_another_process_waits_for_an_older_ones_slot(engine: Engine) -> None:
    shape = BucketShape(interval_s=1.0, burst=1)
    first = SharedBucket(engine, "brightpearl", shape)
    second = SharedBucket(engine, "brightpearl", shape)  # another process, same row
    now = 1_000_000.0
    assert first.take(now, ORDER) == 0.0  # the bucket's one call
    assert first.take(now, ORDER, since=now - 50) > 0  # an older run now waits in `first`
    slot = now + 1.0
    assert second.take(slot, ORDER, since=now - 10) > 0  # newer: the slot is not its
    assert second.take(slot, CATALOG, since=now - 90) > 0  # older but less urgent: nor
    assert first.take(slot, ORDER, since=now - 50) == 0.0
    # Granted, `first` waits no more: the next slot goes to `second`'s newer run.
    assert second.take(slot + 1.0, ORDER, since=now - 10) == 0.0


def test_a_waiting_process_that_stops_asking_holds_no_slot_for_long(engine: Engine) -> None:
    shape = BucketShape(interval_s=1.0, burst=1)
    dead = SharedBucket(engine, "acumatica", shape)
    alive = SharedBucket(engine, "acumatica", shape)
    now = 2_000_000.0
    assert dead.take(now, ORDER) == 0.0
    wait = dead.take(now, ORDER, since=now - 100)  # ... and is never heard of again
    assert alive.take(now + wait, ORDER, since=now) > 0
    lapsed = now + min(wait, CLAIM_RENEWED_WITHIN_S) + CLAIM_GRACE_S + 0.01
    assert alive.take(lapsed, ORDER, since=now) == 0.0


def waiting_rows(engine: Engine, system: str) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(select(WAITERS.c.holder).where(WAITERS.c.system == system)).scalars()
        )


def test_lapsed_waiting_rows_go_when_a_new_one_is_recorded(engine: Engine) -> None:
    """A dead process's row and a kept place no retry took up stay on record, ignored,
    until a row of their system is recorded a minute after they lapsed."""
    shape = BucketShape(interval_s=1.0, burst=1)
    dead = SharedBucket(engine, "brightpearl", shape)
    alive = SharedBucket(engine, "brightpearl", shape)
    other_system = SharedBucket(engine, "acumatica", shape)
    now = 8_000_000.0
    assert dead.take(now, ORDER) == 0.0
    assert dead.take(now, ORDER, since=now - 100) > 0  # ... and is never heard of again
    dead.keep_place("run-gone", ORDER, since=now - 100, until=now + 5.0, now=now)
    assert other_system.take(now, ORDER) == 0.0
    assert other_system.take(now, ORDER, since=now - 100) > 0
    assert waiting_rows(engine, "brightpearl") == {dead.holder, kept_place("run-gone")}

    soon = now + 5.0 + LAPSED_KEPT_S - 1.0  # both lapsed, less than a minute ago
    alive.keep_place("run-waits", ORDER, since=soon, until=soon + 5.0, now=soon)
    assert kept_place("run-gone") in waiting_rows(engine, "brightpearl")

    later = now + 5.0 + LAPSED_KEPT_S + 1.0
    assert alive.take(later, ORDER, since=later) > 0  # the kept place of run-waits is ahead
    assert waiting_rows(engine, "brightpearl") == {alive.holder, kept_place("run-waits")}
    assert waiting_rows(engine, "acumatica") == {other_system.holder}  # another system's


def test_a_caller_that_stops_waiting_leaves_no_claim(engine: Engine) -> None:
    shape = BucketShape(interval_s=1.0, burst=1)
    first = SharedBucket(engine, "kentico", shape)
    second = SharedBucket(engine, "kentico", shape)
    now = 3_000_000.0
    assert first.take(now, ORDER) == 0.0
    assert first.take(now, ORDER, since=now - 100) > 0
    first.stop_waiting()
    assert second.take(now + 1.0, CATALOG) == 0.0


def test_a_runs_age_is_the_same_in_every_process(engine: Engine) -> None:
    shape = BucketShape(interval_s=1.0, burst=1)
    first = SharedBucket(engine, "brightpearl", shape)
    second = SharedBucket(engine, "xcart", shape)  # another process and system
    assert first.run_since("order-run-1", 100.0) == 100.0
    assert second.run_since("order-run-1", 250.0) == 100.0  # its first wait counts
    assert second.run_since("order-run-2", 250.0) == 250.0


async def test_two_processes_serve_their_waiting_calls_as_one_queue(engine: Engine) -> None:
    """Each process holds calls of runs of several ages; together they are served oldest
    run first, whichever process holds the call, and the order's call before all."""
    clock = HeldClock()
    shape = BucketShape(interval_s=0.2, burst=1)
    processes = [
        CallBudget("brightpearl", SharedBucket(engine, "brightpearl", shape), clock=clock)
        for _ in range(2)
    ]
    assert await processes[0].acquire(CallContext()) is True  # the bucket is now empty
    served: list[str] = []

    async def call(process: int, name: str, context: CallContext) -> None:
        await processes[process].acquire(context)
        served.append(name)

    calls = {  # name: (process, priority, since)
        "catalog, oldest": (0, CATALOG, 1.0),
        "run 20": (0, ORDER, 20.0),
        "run 40": (0, ORDER, 40.0),
        "run 10": (1, ORDER, 10.0),
        "run 30": (1, ORDER, 30.0),
        "run 50": (1, ORDER, 50.0),
    }
    tasks = []
    for name, (process, priority, since) in calls.items():
        context = CallContext(priority=priority, since=since)
        tasks.append(asyncio.create_task(call(process, name, context)))
    await queued(processes[0], 3)
    await queued(processes[1], 3)
    clock.release()
    try:
        await asyncio.gather(*tasks)
    finally:
        for budget in processes:
            await budget.aclose()
    assert served == ["run 10", "run 20", "run 30", "run 40", "run 50", "catalog, oldest"]
    assert sum(budget.counts.queued for budget in processes) == 6


def test_a_handed_back_runs_place_is_kept_for_its_retry(engine: Engine) -> None:
    """A call still queued when its attempt ended keeps its run's place: until its retry
    comes, a newer run in another process takes no slot; the retry's grant ends it."""
    shape = BucketShape(interval_s=1.0, burst=1)
    first = SharedBucket(engine, "brightpearl", shape)
    second = SharedBucket(engine, "brightpearl", shape)
    now = 6_000_000.0
    assert first.take(now, ORDER) == 0.0
    first.keep_place("run-old", ORDER, since=now - 300, until=now + 5.0, now=now)
    slot = now + 1.0
    assert second.take(slot, ORDER, since=now - 10, run="run-new") > 0  # the place is kept
    assert second.take(slot, ORDER, since=now - 300, run="run-old") == 0.0  # its retry
    assert first.take(slot + 1.0, ORDER, since=now - 10, run="run-new") == 0.0  # then the next


def test_a_kept_place_lapses_when_no_retry_comes(engine: Engine) -> None:
    shape = BucketShape(interval_s=1.0, burst=1)
    bucket = SharedBucket(engine, "acumatica", shape)
    now = 7_000_000.0
    assert bucket.take(now, ORDER) == 0.0
    bucket.keep_place("run-gone", ORDER, since=now - 300, until=now + 5.0, now=now)
    assert bucket.take(now + 4.0, ORDER, since=now) > 0
    assert bucket.take(now + 5.01, ORDER, since=now) == 0.0
