"""Asking for inventory pushes and following them, from outside a workflow.

The API (`POST /inventory/{pair}/push`), `commerce-sync resync inventory`, benchmarks and
the schedule tick all go through `request_push`: a signal-with-start of the pair's one
push run `inventory:{pair}` (the webhook path's own `dispatch`, so the same start
options), with a request id the run uses to report progress and to ignore repeats.
`push_and_wait` also follows the request to its end (a benchmark: `await
push_and_wait(client, "kentico-brightpearl", task_queue)` pushes every SKU, `skus=[...]`
some). The run itself never ends: it serialises every push of its pair. Starting it
with `InventoryPushInput(pair=..., request=PushRequest(...))` queues that request first.

`ensure_schedules` creates the two Temporal Schedules of every pair, or brings them in
line with pairs.toml: an incremental push every `inventory.incremental_every` and a full
reconciliation every night at `inventory.nightly_full_at_hour_utc`. The worker calls it
at start-up (`commerce-sync worker`, and so `up`): a worker is the one process every
deployment runs, it knows the pairs and the task queue the schedules' runs must use, and
creating or updating a schedule twice is harmless, so N replicas may all do it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    WorkflowExecutionStatus,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts import search_attributes as sa
from commerce_sync.contracts.ids import inventory_workflow_id
from commerce_sync.contracts.inventory import (
    InventoryStatus,
    PushMode,
    PushPhase,
    PushProgress,
    PushRequest,
    ScheduleTick,
)
from commerce_sync.intake.dispatch import dispatch
from commerce_sync.intake.routing import inventory_push_route
from commerce_sync.ops.schedules import ensure_schedule

FINISHED = (PushPhase.DONE, PushPhase.FAILED)


def new_request_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


async def request_push(
    client: Client,
    pair: str,
    task_queue: str,
    *,
    mode: PushMode = PushMode.SKUS,
    skus: Sequence[str] = (),
    since: datetime | None = None,
    requested_by: str = "api",
    request_id: str | None = None,
) -> PushRequest:
    """Queue a push on `inventory:{pair}`, starting the run if there is none."""
    request = PushRequest(
        request_id=request_id or new_request_id(requested_by),
        mode=mode,
        skus=list(dict.fromkeys(skus)),
        since=since,
        requested_by=requested_by,
    )
    await dispatch(client, inventory_push_route(pair, request), task_queue)
    return request


async def push_status(client: Client, pair: str) -> InventoryStatus | None:
    """The running push run's `status` query; None when the pair has no running run.

    A closed run (terminated, say) is not queried: answering would need a worker to
    replay it on its old task queue, and none may poll that any more."""
    handle = client.get_workflow_handle(inventory_workflow_id(pair))
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    status: InventoryStatus = await handle.query("status", result_type=InventoryStatus)
    return status


async def wait_for_push(
    client: Client,
    pair: str,
    request_id: str,
    *,
    poll_s: float = 0.5,
    on_progress: Callable[[PushProgress], None] | None = None,
) -> PushProgress:
    """Poll the run until the request is done (or failed); `on_progress` sees each state.

    The run may continue as new meanwhile: the handle follows the latest run."""
    while True:
        try:
            status = await push_status(client, pair)
        except RPCError as exc:
            if exc.status != RPCStatusCode.FAILED_PRECONDITION:
                raise
            status = None  # no worker has polled the run's queue yet: ask again
        progress = status.request(request_id) if status is not None else None
        if progress is not None:
            if on_progress is not None:
                on_progress(progress)
            if progress.phase in FINISHED:
                return progress
        await asyncio.sleep(poll_s)


# ---- schedules --------------------------------------------------------------------------


def schedule_ids(pair: str) -> tuple[str, str]:
    """(incremental, full) schedule ids of a pair."""
    return f"inventory-incremental:{pair}", f"inventory-full:{pair}"


def _schedule(pair: PairConfig, mode: PushMode, task_queue: str) -> Schedule:
    rules = pair.inventory
    if mode == PushMode.INCREMENTAL:
        spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=rules.incremental_every)])
    else:
        hour = rules.nightly_full_at_hour_utc
        spec = ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    hour=[ScheduleRange(hour)],
                    minute=[ScheduleRange(0)],
                    second=[ScheduleRange(0)],
                    comment=f"nightly full inventory reconciliation at {hour:02d}:00 UTC",
                )
            ],
            time_zone_name="UTC",
        )
    incremental, full = schedule_ids(pair.id)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "InventoryScheduleTick",
            ScheduleTick(pair=pair.id, mode=mode),
            id=incremental if mode == PushMode.INCREMENTAL else full,
            task_queue=task_queue,
            execution_timeout=timedelta(minutes=10),
            typed_search_attributes=TypedSearchAttributes(
                [SearchAttributePair(sa.INTEGRATION_PAIR, pair.id)]
            ),
        ),
        spec=spec,
        # A tick only queues a request; the push run itself never overlaps.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_schedules(
    client: Client, pairs: Iterable[PairConfig], task_queue: str
) -> list[str]:
    """Create each pair's two schedules, or update them to the configured spec."""
    ensured: list[str] = []
    for pair in pairs:
        for mode, schedule_id in zip(
            (PushMode.INCREMENTAL, PushMode.ALL), schedule_ids(pair.id), strict=True
        ):
            # Spec and action follow pairs.toml; a pause set by an operator stays.
            await ensure_schedule(client, schedule_id, _schedule(pair, mode, task_queue))
            ensured.append(schedule_id)
    return ensured


# ---- `commerce-sync resync inventory` ---------------------------------------------------


def summary_line(pair: str, progress: PushProgress) -> str:
    """One line for people: what the push did, and what it left for its retries."""
    counts = progress.counts
    line = (
        f"inventory {pair}: {progress.phase.value}, {progress.done} of {progress.total or 0} "
        f"SKUs: written {counts.written}, unchanged {counts.unchanged}, "
        f"refused by the store {counts.rejected} (dead letters), "
        f"not in the ERP {counts.not_in_erp}"
    )
    retried = counts.read_failed + counts.write_failed
    if retried:
        line += f", {retried} failed and will be pushed again"
    if progress.error:
        line += f"; {progress.error}"
    return line


async def push_and_wait(
    client: Client,
    pair: str,
    task_queue: str,
    *,
    skus: Sequence[str] | None = None,
    since: datetime | None = None,
    requested_by: str = "api",
    on_progress: Callable[[PushProgress], None] | None = None,
) -> PushProgress:
    """Push these SKUs (None: every SKU, or those changed since `since`) through the pair's
    push run and follow it to the end: what `resync inventory` and benchmarks use."""
    if skus is not None:
        mode = PushMode.SKUS
    else:
        mode = PushMode.ALL if since is None else PushMode.CHANGED
    request = await request_push(
        client,
        pair,
        task_queue,
        mode=mode,
        skus=skus or (),
        since=since,
        requested_by=requested_by,
    )
    return await wait_for_push(client, pair, request.request_id, on_progress=on_progress)


async def run_inventory_resync(
    client: Client,
    pair: PairConfig,
    task_queue: str,
    *,
    since: datetime | None = None,
    on_progress: Callable[[PushProgress], None] | None = None,
) -> PushProgress:
    """`resync inventory`: every SKU (or those changed in the ERP since `since`)."""
    return await push_and_wait(
        client, pair.id, task_queue, since=since, requested_by="resync", on_progress=on_progress
    )
