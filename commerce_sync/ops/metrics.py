"""Our Prometheus metrics (prometheus-client); the Temporal SDK exports its own.

- webhooks received by source and result: the API, from each webhook response;
- runs started and finished by process and state: a worker interceptor, outside replay;
- steps failed by system, step (activity) and error class: the activities' error
  classification;
- end-to-end order latency (placed in the store -> shipped): the same interceptor, from
  the order workflow's `store.get_order` result and its final state;
- ERP orders created per pair, and the time from the webhook (the order run's start) to
  the ERP order: the same interceptor, from `erp.create_order` results that made one;
- API calls per system by outcome (ok, throttled, refused, error), from every answer
  the worker's connectors get, and each system's API budget (calls per second);
- the call budgets' work in this process: calls granted at once or after queueing, calls
  given up (no free call before the attempt's timeout) and throttle pauses, read from
  the budgets when scraped (`BudgetCollector`);
- dead letters open and approvals waiting (per pair): read at scrape time by
  `GET /metrics`.

Workflow code never touches these: the workflow interceptor calls out of the sandbox
through an extern function, and only when the workflow is not replaying, so a run
evicted from the cache and replayed is not counted twice. No workflow code changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

import httpx
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from temporalio import workflow
from temporalio.client import Client
from temporalio.exceptions import FailureError
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from commerce_sync.domain.models import utc_now
from commerce_sync.store.feeds import feed_states
from commerce_sync.store.models import DeadLetter, DeadLetterStatus

log = logging.getLogger(__name__)

WEBHOOKS_RECEIVED = Counter(
    "commerce_sync_webhooks_received",
    "Webhook deliveries by source and result (accepted, duplicate, refused, invalid, ...)",
    ["source", "result"],
)
RUNS_STARTED = Counter(
    "commerce_sync_runs_started", "Workflow runs started, by process", ["process"]
)
RUNS_FINISHED = Counter(
    "commerce_sync_runs_finished",
    "Workflow runs finished, by process and final state",
    ["process", "state"],
)
STEPS_FAILED = Counter(
    "commerce_sync_steps_failed",
    "Activity attempts that failed, by system, step (activity) and error class",
    ["system", "step", "error_class"],
)
ERP_ORDERS_CREATED = Counter(
    "commerce_sync_erp_orders_created", "Orders created in the ERP, per pair", ["pair"]
)
WEBHOOK_TO_ERP = Histogram(
    "commerce_sync_webhook_to_erp_seconds",
    "Store order webhook received (the order run started) -> order created in the ERP",
    ["pair"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 900, 3600, 4 * 3600, 86400),
)
API_CALLS = Counter(
    "commerce_sync_api_calls",
    "Answers the outside systems gave the connectors, by system and outcome",
    ["system", "outcome"],
)
API_BUDGET = Gauge(
    "commerce_sync_api_budget_per_second",
    "Each system's API budget: calls per second, shared by every worker process",
    ["system"],
)


class BudgetCounting(Protocol):
    """What the collector reads of a call budget (`systems/budget.py`'s `BudgetCounts`)."""

    granted: int
    granted_at_once: int
    queued: int
    gave_up: int
    holds: int


class BudgetCollector(Collector):
    """The call budgets of this process, read when scraped: a budget keeps plain counts
    (systems/ knows nothing of Prometheus) and a worker registers each with `watch`."""

    def __init__(self) -> None:
        self._budgets: dict[str, BudgetCounting] = {}

    def watch(self, system: str, counts: BudgetCounting) -> None:
        self._budgets[system] = counts

    def collect(self) -> Iterable[Metric]:
        calls = CounterMetricFamily(
            "commerce_sync_api_budget_calls",
            "Calls the budget let through (at once or after queueing) or gave up on",
            labels=["system", "result"],
        )
        holds = CounterMetricFamily(
            "commerce_sync_api_budget_holds",
            "Throttle answers that paused a system's budget for every process",
            labels=["system"],
        )
        for system, counts in sorted(self._budgets.items()):
            calls.add_metric([system, "at_once"], counts.granted_at_once)
            calls.add_metric([system, "queued"], counts.granted - counts.granted_at_once)
            calls.add_metric([system, "gave_up"], counts.gave_up)
            holds.add_metric([system], counts.holds)
        return [calls, holds]


BUDGETS = BudgetCollector()
REGISTRY.register(BUDGETS)

ORDER_LATENCY = Histogram(
    "commerce_sync_order_latency_seconds",
    "Order placed in the store -> shipped, per pair",
    ["pair", "state"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400),
)

PROCESSES = {
    "OrderSync": "order",
    "CatalogSync": "catalog",
    "InventoryPush": "inventory",
    "ErpEventRouter": "erp-events",
    "CatalogEventRouter": "catalog-events",
    "InventoryScheduleTick": "inventory-tick",
    "CustomerSync": "customer-sync",
    "CustomerMerge": "customer-merge",
    "ReturnSync": "return",
    "ChangeFeed": "change-feed",
}

WEBHOOK_RESULTS = {
    200: "duplicate",
    202: "accepted",
    401: "refused",
    403: "refused",
    404: "unknown_source",
    422: "invalid",
}


def webhook_result(status: int) -> str:
    return WEBHOOK_RESULTS.get(status, "error" if status >= 500 else str(status))


def call_outcome(status: int) -> str:
    """429 and 503 are how the four systems say "slow down" (Brightpearl's throttle is a
    503); other 5xx are errors, other 4xx refusals."""
    if status in (429, 503):
        return "throttled"
    if status >= 500:
        return "error"
    if status >= 400:
        return "refused"
    return "ok"


def api_call_counter(system: str) -> Callable[[httpx.Response], Awaitable[None]]:
    """A connector's response hook that counts each answer of `system`."""
    counter = {
        outcome: API_CALLS.labels(system=system, outcome=outcome)
        for outcome in ("ok", "throttled", "refused", "error")
    }

    async def count(response: httpx.Response) -> None:
        counter[call_outcome(response.status_code)].inc()

    return count


# ---- the workflow side ------------------------------------------------------------------

_EXTERN = "commerce_sync_metric"


def _record(event: str, labels: dict[str, str], value: float) -> None:
    """Runs outside the sandbox, called from the workflow interceptor."""
    if event == "started":
        RUNS_STARTED.labels(**labels).inc()
    elif event == "finished":
        RUNS_FINISHED.labels(**labels).inc()
    elif event == "order_latency":
        ORDER_LATENCY.labels(**labels).observe(value)
    elif event == "erp_order":
        ERP_ORDERS_CREATED.labels(**labels).inc()
        WEBHOOK_TO_ERP.labels(**labels).observe(value)


class MetricsInterceptor(Interceptor):
    """Counts runs and measures order latency on the worker (replay-safe)."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        input.unsafe_extern_functions[_EXTERN] = _record
        return _MetricsWorkflowInbound


def _emit(event: str, labels: dict[str, str], value: float = 0.0) -> None:
    if workflow.unsafe.is_replaying():
        return
    record: Callable[[str, dict[str, str], float], None] = workflow.extern_functions()[_EXTERN]
    record(event, labels, value)


class _MetricsWorkflowInbound(WorkflowInboundInterceptor):
    placed_at: datetime | None = None

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_MetricsWorkflowOutbound(outbound, self))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        info = workflow.info()
        process = PROCESSES.get(info.workflow_type, info.workflow_type)
        _emit("started", {"process": process})
        try:
            result = await super().execute_workflow(input)
        except workflow.ContinueAsNewError:
            _emit("finished", {"process": process, "state": "continued_as_new"})
            raise
        except asyncio.CancelledError:
            _emit("finished", {"process": process, "state": "cancelled"})
            raise
        except FailureError:
            _emit("finished", {"process": process, "state": "failed"})
            raise
        state = getattr(result, "state", None)
        state_name = str(getattr(state, "value", state)) if state is not None else "completed"
        _emit("finished", {"process": process, "state": state_name})
        pair = getattr(result, "pair", None)
        if process == "order" and state_name == "shipped" and self.placed_at and pair:
            latency = (workflow.now() - self.placed_at).total_seconds()
            _emit("order_latency", {"pair": str(pair), "state": state_name}, max(latency, 0.0))
        return result


class _MetricsWorkflowOutbound(WorkflowOutboundInterceptor):
    """Notes when the order was placed, from the result of the run's `store.get_order`."""

    def __init__(self, next: WorkflowOutboundInterceptor, inbound: _MetricsWorkflowInbound):
        super().__init__(next)
        self._inbound = inbound

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        handle = super().start_activity(input)
        if input.activity == "store.get_order" and self._inbound.placed_at is None:
            handle.add_done_callback(self._note_placed)
        elif input.activity == "erp.create_order" and input.args:
            pair = str(getattr(input.args[0], "pair", ""))
            handle.add_done_callback(lambda task: self._note_erp_order(task, pair))
        return handle

    def _note_erp_order(self, task: asyncio.Future[Any], pair: str) -> None:
        """The ERP order this run made: counted, with the time since the run started (the
        webhook's start of it); an order found already made is not counted again."""
        if task.cancelled() or task.exception() is not None or not pair:
            return
        if getattr(task.result(), "created", False):
            waited = (workflow.now() - workflow.info().workflow_start_time).total_seconds()
            _emit("erp_order", {"pair": pair}, max(waited, 0.0))

    def _note_placed(self, task: asyncio.Future[Any]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        placed = getattr(task.result(), "placed_at", None)
        if isinstance(placed, datetime):
            self._inbound.placed_at = placed


# ---- scrape-time gauges and the endpoints -----------------------------------------------

APPROVALS_QUERY = 'SyncState = "awaiting_approval" AND ExecutionStatus = "Running"'


def _open_dead_letters(engine: Engine) -> list[tuple[str, str, int]]:
    with Session(engine) as session:
        rows = session.exec(
            select(DeadLetter.pair, DeadLetter.process, func.count())
            .where(DeadLetter.status == DeadLetterStatus.OPEN)
            .group_by(DeadLetter.pair, DeadLetter.process)
        ).all()
    return [(pair, process, int(count)) for pair, process, count in rows]


async def render(engine: Engine | None, client: Client | None, pairs: Sequence[str] = ()) -> bytes:
    """This process's metrics plus the gauges read now: dead letters open and the change
    feeds' lag and last success (database), approvals waiting per pair (Temporal
    visibility). A source that cannot answer is left out."""
    now = CollectorRegistry()
    if engine is not None:
        dead = Gauge(
            "commerce_sync_dead_letters_open",
            "Dead letters not yet replayed or resolved",
            ["pair", "process"],
            registry=now,
        )
        try:
            for pair, process, count in await asyncio.to_thread(_open_dead_letters, engine):
                dead.labels(pair=pair, process=process).set(count)
        except Exception as exc:
            log.warning("dead letters not counted: %s", type(exc).__name__)
        lag = Gauge(
            "commerce_sync_feed_lag_seconds",
            "How far behind now a change feed has read (now - its mark), per pair and entity",
            ["pair", "entity"],
            registry=now,
        )
        success = Gauge(
            "commerce_sync_feed_last_success_timestamp_seconds",
            "When a change feed last read every change it found (Unix time)",
            ["pair", "entity"],
            registry=now,
        )
        try:
            read_at = utc_now()
            for feed in await asyncio.to_thread(feed_states, engine):
                labels = {"pair": feed.pair, "entity": feed.entity}
                lag.labels(**labels).set(max((read_at - feed.mark).total_seconds(), 0.0))
                if feed.last_success_at is not None:
                    success.labels(**labels).set(feed.last_success_at.timestamp())
        except Exception as exc:
            log.warning("feeds not measured: %s", type(exc).__name__)
    if client is not None:
        waiting = Gauge(
            "commerce_sync_approvals_waiting",
            "Runs waiting for a person's approval, per pair",
            ["pair"],
            registry=now,
        )
        try:
            for pair in pairs:
                query = f'{APPROVALS_QUERY} AND IntegrationPair = "{pair}"'
                waiting.labels(pair=pair).set((await client.count_workflows(query)).count)
        except Exception as exc:
            log.warning("approvals not counted: %s", type(exc).__name__)
    return generate_latest(REGISTRY) + generate_latest(now)


def split_address(address: str) -> tuple[str, int]:
    """ "host:port" -> (host, port), with a readable error naming the setting."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"metrics bind address {address!r}: expected host:port")
    return host, int(port)


class MetricsServer:
    """The worker's own metrics port (prometheus-client's HTTP server in a thread)."""

    def __init__(self, address: str) -> None:
        host, port = split_address(address)
        self._server, self._thread = start_http_server(port, addr=host)
        self.port = int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
