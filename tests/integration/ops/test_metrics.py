"""Metrics: `GET /metrics` on the API (read key), our worker port and the Temporal SDK's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.ops.ops_stack import OpsStack, dead_lettered_order, scrape, value
from tests.integration.orders.order_stack import PAIRS, READ_ONLY_KEY, eventually

DASHBOARD = Path(__file__).parents[3] / "deploy" / "grafana" / "dashboards" / "commerce-sync.json"


async def api_metrics(ops: OpsStack) -> str:
    response = await ops.stack.http.get(
        f"{ops.stack.api}/metrics", headers=ops.stack.headers(READ_ONLY_KEY)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_metrics_route_needs_a_key(ops: OpsStack) -> None:
    none = await ops.stack.http.get(f"{ops.stack.api}/metrics")
    wrong = await ops.stack.http.get(
        f"{ops.stack.api}/metrics", headers={"authorization": "Bearer nope"}
    )
    assert (none.status_code, wrong.status_code) == (401, 401)


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_shipped_order_counts_webhooks_runs_latency_and_sdk_metrics(
    ops: OpsStack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    stack = ops.stack
    before_api = await api_metrics(ops)
    before_worker = await scrape(ops, ops.worker_metrics)

    # One transient ERP failure on the way: a failed step by system and error class. A
    # write's (Acumatica's token POST is sent again with the read it came before).
    write = "POST *" if erp == "brightpearl" else "POST */entity/*"
    await stack.sandbox.post(
        f"/{erp}/_sandbox/faults",
        json={"rules": [{"match": write, "status": 502, "count": 1}]},
    )
    order_id = await stack.place_order(store)
    placed = await stack.wait_state(pair, order_id, "awaiting_shipment")
    await stack.ship(erp, placed["status"]["erp_order_number"], "1Z999AA10123456784")
    await stack.wait_state(pair, order_id, "shipped", run_status="COMPLETED")

    after_api = await api_metrics(ops)
    accepted = {"source": store, "result": "accepted"}
    name = "commerce_sync_webhooks_received_total"
    assert value(after_api, name, **accepted) == value(before_api, name, **accepted) + 1
    shipped = {"source": erp, "result": "accepted"}
    assert value(after_api, name, **shipped) >= value(before_api, name, **shipped) + 1

    worker = await scrape(ops, ops.worker_metrics)
    for metric, labels in [
        ("commerce_sync_runs_started_total", {"process": "order"}),
        ("commerce_sync_runs_finished_total", {"process": "order", "state": "shipped"}),
        ("commerce_sync_order_latency_seconds_count", {"pair": pair, "state": "shipped"}),
    ]:
        assert value(worker, metric, **labels) == value(before_worker, metric, **labels) + 1, metric
    failed = {"system": erp, "error_class": "TransientError"}
    metric = "commerce_sync_steps_failed_total"
    assert value(worker, metric, **failed) >= value(before_worker, metric, **failed) + 1
    assert value(worker, "commerce_sync_order_latency_seconds_sum", pair=pair) > 0

    # The Temporal SDK's own worker metrics, on its Runtime's Prometheus port.
    sdk = await scrape(ops, ops.temporal_metrics)
    assert value(sdk, "temporal_workflow_completed", workflow_type="OrderSync") >= 1


async def test_dead_letters_open_and_approvals_waiting_are_read_at_scrape_time(
    ops: OpsStack,
) -> None:
    pair = "kentico-brightpearl"
    await dead_lettered_order(ops, pair)
    text = await api_metrics(ops)
    assert value(text, "commerce_sync_dead_letters_open", pair=pair, process="order") == 1
    assert value(text, "commerce_sync_runs_finished_total", process="order", state="failed")

    # An order over the pair's total threshold waits for a person.
    order_id = await ops.stack.place_order(
        "kentico", lines=[{"sku": "WIDGET-1", "quantity": 1, "unit_price": "2500.00"}]
    )
    await ops.stack.wait_state(pair, order_id, "awaiting_approval")

    async def waiting() -> float | None:
        # Visibility is eventually consistent; the gauge follows it.
        text = await api_metrics(ops)
        return value(text, "commerce_sync_approvals_waiting", pair=pair) or None

    assert await eventually(waiting, 15, "approvals waiting gauge") >= 1


def dashboard_metrics() -> set[str]:
    """Every metric name the shipped Grafana dashboard queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs
    return {name for expr in exprs for name in re.findall(r"\b(commerce_sync_\w+)", expr)}


def exported(text: str, name: str) -> bool:
    """A sample of `name` in Prometheus text, or its TYPE line (a labelled gauge that has
    no series yet, e.g. no dead letter open)."""
    base = re.sub(r"_(total|bucket|count|sum)$", "", name)
    return any(
        line.startswith((f"{name} ", f"{name}{{")) or line.startswith(f"# TYPE {base} ")
        for line in text.splitlines()
    )


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_every_metric_the_dashboard_queries_is_exported_and_moves(
    ops: OpsStack, pair: str
) -> None:
    """An order through the stack with one throttled ERP call: the dashboard's orders,
    latency, API calls and budget, throttling, the call budgets' calls and pauses and
    failed steps all have data, and every metric it queries is in the API's or the
    worker's /metrics."""
    store, erp = PAIRS[pair]
    stack = ops.stack
    before = await scrape(ops, ops.worker_metrics)
    throttled = {
        "match": "POST *",
        "status": 503 if erp == "brightpearl" else 429,
        "count": 1,
        "retry_after_s": 1,
    }
    await stack.sandbox.post(f"/{erp}/_sandbox/faults", json={"rules": [{**throttled}]})
    if erp == "acumatica":  # Acumatica creates with PUT
        await stack.sandbox.post(
            f"/{erp}/_sandbox/faults", json={"rules": [{**throttled, "match": "PUT *"}]}
        )
    order_id = await stack.place_order(store)
    await stack.wait_state(pair, order_id, "awaiting_shipment", timeout_s=120)

    worker = await scrape(ops, ops.worker_metrics)
    api = await api_metrics(ops)
    for metric, labels in [
        ("commerce_sync_erp_orders_created_total", {"pair": pair}),
        ("commerce_sync_webhook_to_erp_seconds_count", {"pair": pair}),
    ]:
        assert value(worker, metric, **labels) == value(before, metric, **labels) + 1, metric
    calls = "commerce_sync_api_calls_total"
    for system in (store, erp):
        ok = {"system": system, "outcome": "ok"}
        assert value(worker, calls, **ok) > value(before, calls, **ok), system
    slow_down = {"system": erp, "outcome": "throttled"}
    assert value(worker, calls, **slow_down) >= value(before, calls, **slow_down) + 1
    failed = "commerce_sync_steps_failed_total"
    assert any(
        line.startswith(failed) and f'system="{erp}"' in line and 'step="erp.' in line
        for line in worker.splitlines()
    )
    budget = getattr(stack.settings, erp).rate_per_second
    assert value(worker, "commerce_sync_api_budget_per_second", system=erp) == budget
    # The worker's calls go through the shared call budgets: each system's counts moved,
    # and the throttle answer paused the ERP's budget for every process.
    granted = "commerce_sync_api_budget_calls_total"
    for system in (store, erp):
        assert value(worker, granted, system=system) > value(before, granted, system=system)
    holds = "commerce_sync_api_budget_holds_total"
    assert value(worker, holds, system=erp) >= value(before, holds, system=erp) + 1

    missing = sorted(name for name in dashboard_metrics() if not exported(api + worker, name))
    assert missing == []
