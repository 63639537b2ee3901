"""The call budgets' counts as Prometheus counters, read from the budgets when scraped."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from commerce_sync.ops.metrics import BudgetCollector
from commerce_sync.store.budgets import BucketShape, SharedBucket
from commerce_sync.store.db import make_engine, migrate
from commerce_sync.systems.budget import CallBudget, CallContext


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    raise AssertionError(f"{name} {labels} not exported:\n{text}")


async def test_granted_queued_and_held_calls_are_exported(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'budget.db'}")
    migrate(engine)
    # One call at once, then one every half second: the second call queues behind the
    # first (however busy the machine, the two come sooner than that).
    budget = CallBudget("brightpearl", SharedBucket(engine, "brightpearl", BucketShape(0.5, 1)))
    collector = BudgetCollector()
    collector.watch("brightpearl", budget.counts)
    registry = CollectorRegistry()
    registry.register(collector)

    assert await budget.acquire(CallContext(priority=1)) is True
    assert await budget.acquire(CallContext(priority=1)) is False
    throttled = httpx.Response(
        503,
        headers={"brightpearl-next-throttle-period": "1000"},
        request=httpx.Request("GET", "https://example.invalid/"),
    )
    await budget.after_response(throttled)

    text = generate_latest(registry).decode()
    calls = "commerce_sync_api_budget_calls_total"
    assert sample(text, calls, system="brightpearl", result="at_once") == 1
    assert sample(text, calls, system="brightpearl", result="queued") == 1
    assert sample(text, calls, system="brightpearl", result="gave_up") == 0
    assert sample(text, "commerce_sync_api_budget_holds_total", system="brightpearl") == 1
    assert budget.bucket.take(time.time(), 1) > 0.0  # the hold reached the shared row
