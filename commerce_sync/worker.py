"""Builds and runs the Temporal workers.

One workflow task queue (`settings.task_queue`) runs every workflow and the database
activities. Each outside system gets its own activity task queue, named after it, with
no rate limit: the systems' API budgets are counted in calls, not activities, by the
connectors' call budget (`systems/budget.py`), shared through the app database by every
worker process of the deployment, so ten workers together still send Brightpearl no
more than 200 requests a minute. An activity waiting for its calls holds a slot of its
queue's worker, hence the larger `SYSTEM_QUEUE_SLOTS` (the wait is a sleeping coroutine).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import signal
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner

from commerce_sync.activities.catalog import (
    CatalogErpActivities,
    CatalogStarter,
    CatalogStoreActivities,
)
from commerce_sync.activities.checks import CheckActivities
from commerce_sync.activities.customers import CustomerActivities, CustomerDatabaseActivities
from commerce_sync.activities.database import DatabaseActivities
from commerce_sync.activities.erp import ErpActivities
from commerce_sync.activities.feeds import FeedActivities
from commerce_sync.activities.inventory import (
    InventoryDatabaseActivities,
    InventoryErpActivities,
    InventoryStoreActivities,
)
from commerce_sync.activities.privacy import PrivacyActivities
from commerce_sync.activities.returns import ErpReturnActivities, StoreReturnActivities
from commerce_sync.activities.store import StoreActivities
from commerce_sync.commands.connectors import Connectors
from commerce_sync.commands.feeds import ensure_feed_schedules
from commerce_sync.commands.inventory_control import ensure_schedules
from commerce_sync.config.pairs import PairConfig, load_pairs
from commerce_sync.config.settings import Settings
from commerce_sync.contracts.activities import implementations
from commerce_sync.ops.activity_logs import install_repeated_failure_trimming
from commerce_sync.ops.alerts import Notifier, UnreachableWatch, install_watch
from commerce_sync.ops.codec import key_ring
from commerce_sync.ops.heartbeat import HeartbeatInterceptor
from commerce_sync.ops.metrics import MetricsInterceptor, MetricsServer
from commerce_sync.ops.redaction import install_log_redaction
from commerce_sync.ops.temporal_client import connect, metrics_runtime
from commerce_sync.ops.tracing import configure_tracing
from commerce_sync.store.db import make_engine, migrate
from commerce_sync.systems.customer_ports import customer_port
from commerce_sync.workflows.catalog_sync import CatalogEventRouterWorkflow, CatalogSyncWorkflow
from commerce_sync.workflows.change_feed import ChangeFeedWorkflow
from commerce_sync.workflows.customer_merge import CustomerMergeWorkflow
from commerce_sync.workflows.customer_sync import CustomerSyncWorkflow
from commerce_sync.workflows.erp_events import ErpEventRouterWorkflow
from commerce_sync.workflows.inventory_push import (
    InventoryPushWorkflow,
    InventoryScheduleTickWorkflow,
)
from commerce_sync.workflows.order_sync import OrderSyncWorkflow
from commerce_sync.workflows.return_sync import ReturnSyncWorkflow

log = logging.getLogger(__name__)

SYSTEM_QUEUES = ("kentico", "xcart", "brightpearl", "acumatica")
SYSTEM_QUEUE_SLOTS = 1000
GRACEFUL_SHUTDOWN = timedelta(seconds=30)

WORKFLOWS: list[type] = [OrderSyncWorkflow, ErpEventRouterWorkflow]
WORKFLOWS += [CatalogSyncWorkflow, CatalogEventRouterWorkflow]
WORKFLOWS += [InventoryPushWorkflow, InventoryScheduleTickWorkflow]
WORKFLOWS += [CustomerMergeWorkflow, CustomerSyncWorkflow]
WORKFLOWS += [ReturnSyncWorkflow, ChangeFeedWorkflow]


class Ports(Connectors):
    """One pooled connector per outside system for the whole worker process, each drawing
    on its system's shared call budget (`commands/connectors.py`, as the commands' own
    connectors do), and the system activities over them.
    """

    def activities(self, pairs: dict[str, PairConfig]) -> dict[str, Sequence[Callable[..., Any]]]:
        """Each system's activities, for its own task queue. The ERP activities note the
        customers they create (echo suppression) in the same database as the budgets."""
        owners: dict[str, list[object]] = {}
        for system, store in self.stores.items():
            owners[system] = [
                StoreActivities(store, pairs),
                CatalogStoreActivities(store, pairs),
                InventoryStoreActivities(store, pairs),
                CustomerActivities(customer_port(store), pairs),
                StoreReturnActivities(store, pairs),
            ]
        for system, erp in self.erps.items():
            owners[system] = [
                ErpActivities(erp, pairs, engine=self._engine),
                CatalogErpActivities(erp, pairs),
                InventoryErpActivities(erp, pairs),
                CustomerActivities(customer_port(erp), pairs),
                ErpReturnActivities(erp, pairs),
            ]
        return {system: implementations(*found) for system, found in owners.items()}


def workflow_queue_activities(
    client: Client,
    settings: Settings,
    engine: Engine,
    pairs: dict[str, PairConfig],
    notifier: Notifier,
    ports: Ports,
) -> list[Callable[..., Any]]:
    """The activities of the workflows' own task queue: database, alerts, starts, codec,
    and the change feeds' reads, through the process's connectors (`ports`) and so its
    call budgets."""
    ring = key_ring(settings)
    return implementations(
        DatabaseActivities(
            engine,
            pairs,
            notifier=notifier,
            send_attempts=settings.alerts.send_attempts,
            email_key=ring.search_key if ring else None,
        ),
        CatalogStarter(client),
        InventoryDatabaseActivities(engine, client),
        CustomerDatabaseActivities(engine),
        PrivacyActivities(settings),
        CheckActivities(pairs, ring),
        FeedActivities(
            client,
            settings=settings,
            engine=engine,
            pairs=pairs,
            stores=ports.stores,
            erps=ports.erps,
        ),
    )


def workflow_runner() -> WorkflowRunner:
    """Workflows run without the SDK's sandbox; their determinism is checked from source.

    The sandbox passed every module through already (2026-12-07: a run no longer imported
    its workflow's modules afresh, 13% of the worker's CPU per order; README, "Figures").
    With that, all it still refused at run time were three builtins, `open`, `input` and
    `breakpoint` (`SandboxRestrictions.invalid_module_members_default`), and it charged each run
    an `exec` of compiled source for every activation and every payload sequence it
    encodes or decodes (the SDK asks the run for a serialization context inside the
    sandbox each time): 12.6% of the worker's GIL samples in a py-spy profile of 300
    orders, four times the workflow code itself.

    What replaces it, before a change is merged rather than when a run fails in
    production (tests/unit/test_workflow_determinism.py): the workflow modules read no
    clock, randomness, environment or file and import from a short list; no module a
    workflow can import (`workflows/`, `domain/`, `contracts/`) calls `open`, `input`,
    `breakpoint`, `eval` or `exec`, nor imports inside a function, where an import would
    run during a run. Every workflow still passes the default sandbox's import checks
    (tests/integration/test_workflow_sandbox.py), and the recorded histories replay
    (tests/unit/test_replay.py). No module a workflow imports keeps state a run could
    change: workflows import only `domain/` and `contracts/` (tests/unit/test_layout.py),
    which the sandbox shared between runs already.
    """
    return UnsandboxedWorkflowRunner()


def build_workers(
    client: Client,
    settings: Settings,
    engine: Engine,
    *,
    executor: concurrent.futures.Executor,
    pairs: dict[str, PairConfig],
    ports: Ports,
    workflows: Sequence[type] | None = None,
) -> list[Worker]:
    """The workflows' own worker and one per outside system, every call through `ports`."""
    install_log_redaction()
    install_repeated_failure_trimming()
    notifier = Notifier(settings.alerts.urls)
    # This process's system activities report their failures and successes here.
    install_watch(
        UnreachableWatch(settings.alerts.unreachable_after_s, engine=engine, notifier=notifier)
    )
    workers = [
        Worker(
            client,
            task_queue=settings.task_queue,
            workflows=list(workflows if workflows is not None else WORKFLOWS),
            activities=workflow_queue_activities(client, settings, engine, pairs, notifier, ports),
            activity_executor=executor,
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
            interceptors=[MetricsInterceptor(), HeartbeatInterceptor()],
            workflow_runner=workflow_runner(),
        )
    ]
    for system, activities in ports.activities(pairs).items():
        if not activities:
            continue
        workers.append(
            Worker(
                client,
                task_queue=system,
                activities=list(activities),
                # Every system activity is a coroutine, so no executor: the SDK would warn
                # that its 32 threads are fewer than the slots, and a thread-bound activity
                # registered here by mistake fails the worker's start instead of queueing.
                max_concurrent_activities=SYSTEM_QUEUE_SLOTS,
                graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
                interceptors=[HeartbeatInterceptor()],
            )
        )
    return workers


async def run_workers(workers: Sequence[Worker], stop: asyncio.Event) -> None:
    """Run until `stop` is set, then shut down gracefully: running activities may finish."""
    runs = [asyncio.create_task(worker.run()) for worker in workers]
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*runs, stopper], return_when=asyncio.FIRST_COMPLETED)
    if stopper not in done:
        stopper.cancel()
        for task in done:
            task.result()  # a worker died: raise its error
    await asyncio.gather(*(worker.shutdown() for worker in workers), return_exceptions=True)
    await asyncio.gather(*runs, return_exceptions=True)


async def serve(settings: Settings) -> None:
    """The `commerce-sync worker` process: connect, migrate, run until SIGINT/SIGTERM."""
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    configure_tracing(settings, "commerce-sync-worker")
    client = await connect(settings, runtime=metrics_runtime(settings))
    address = settings.metrics.worker_bind_address
    metrics_server = MetricsServer(address) if address else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pairs = load_pairs(settings.pairs_file)
    ports = Ports(settings, engine=engine)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
            workers = build_workers(
                client,
                settings,
                engine,
                executor=executor,
                pairs=pairs,
                ports=ports,
            )
            log.info("worker polling %s and %s", settings.task_queue, ", ".join(SYSTEM_QUEUES))
            # The inventory schedules start their ticks on this worker's workflow queue.
            try:
                await ensure_schedules(client, pairs.values(), settings.task_queue)
            except RPCError as exc:  # orders must still flow; the schedules come next start
                log.error("inventory schedules not ensured: %s", exc.message)
            # The change feeds' schedules, the intake of stores that send no webhooks.
            try:
                await ensure_feed_schedules(client, settings, pairs.values())
            except RPCError as exc:
                log.error("change feed schedules not ensured: %s", exc.message)
            await run_workers(workers, stop)
    finally:
        await ports.aclose()
        engine.dispose()
        if metrics_server is not None:
            metrics_server.close()
