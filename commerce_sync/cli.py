"""The `commerce-sync` command."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from commerce_sync.config.pairs import PairConfig, PairsConfigError, load_pairs
from commerce_sync.config.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from commerce_sync.commands.resync import Outcome
    from commerce_sync.commands.run_list import RunFilters, RunPage
    from commerce_sync.contracts.orders import OrderSyncStatus
    from commerce_sync.store.models import DeadLetter

app = typer.Typer(
    name="commerce-sync",
    help="Durable ERP <-> eCommerce integration on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
WIDE_TABLES = 120
"""Console width from which the tables show every column (80-column terminals get fewer)."""


def leave(code: int) -> NoReturn:
    """Exit now with `code`, output flushed, skipping interpreter teardown.

    Once a command has used the Temporal client, the SDK's native runtime can abort the
    process while Python finalises (temporalio/sdk-python#300, `Fatal Python error:
    PyGILState_Release`), turning a finished command's status into SIGABRT. Nothing is
    left to clean up when a command leaves: its work is done and its answer written.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def fail(message: str, code: int = 1) -> NoReturn:
    """One readable line on stderr and a non-zero exit."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    leave(code)


def load_settings() -> Settings:
    """Settings plus a validated pairs file, or one line saying what is wrong."""
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"settings: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    try:
        pairs = load_pairs(settings.pairs_file)
    except PairsConfigError as exc:
        fail(str(exc))
    if not settings.use_sandboxes:
        leftovers = settings.sandbox_leftovers(
            system for pair in pairs.values() for system in (pair.store, pair.erp)
        )
        if leftovers:
            fail(
                f"settings: {', '.join(leftovers)}: still the local sandbox's URL or "
                "credentials; set the real system's, remove its pair from pairs.toml, or run "
                "`commerce-sync up` to use the sandboxes"
            )
    from commerce_sync.ops.codec import CodecConfigError, key_ring, with_generated_keys

    settings = with_generated_keys(settings)
    try:
        key_ring(settings)
    except CodecConfigError as exc:
        fail(str(exc))
    return settings


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def worker() -> None:
    """Run a Temporal worker (workflows and every system's activities)."""
    from commerce_sync.worker import serve

    settings = load_settings()
    _logging()
    asyncio.run(serve(settings))


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings)")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="API processes on the port (default: api_workers, one per CPU)"),
    ] = None,
) -> None:
    """Serve the HTTP API (webhooks, status, approvals, dead letters)."""
    from commerce_sync.api.serve import serve
    from commerce_sync.ops.sockets import port_in_use

    settings = load_settings()
    host, port = host or settings.api_host, port or settings.api_port
    if port_in_use(host, port):
        fail(f"port {port} (API) is already in use")
    serve(settings, host, port, workers or settings.api_workers)


class ApprovalCommandError(Exception):
    """Why `approve` could not record the decision, as one line for the operator."""


def _one_line(text: object) -> str:
    """Collapse whitespace and escape Rich markup, so a server message stays one literal line."""
    from rich.markup import escape

    return escape(" ".join(str(text).split()))


def _approval_workflow_id(target: list[str], settings: Settings) -> str:
    """The run named on the command line: a workflow id as is, or a pair and a store order id."""
    from commerce_sync.contracts.ids import order_workflow_id

    parts = [part.strip() for part in target]
    if len(parts) == 1 and parts[0]:
        return parts[0]
    if len(parts) == 2 and all(parts):
        pair, store_order_id = parts
        pairs = load_pairs(settings.pairs_file)
        if pair not in pairs:
            fail(_one_line(f"unknown pair {pair!r} (pairs: {', '.join(sorted(pairs))})"))
        return order_workflow_id(pair, store_order_id)
    fail(
        "give a workflow id (order:PAIR:STORE_ORDER_ID, return:PAIR:RMA_ID) "
        "or a pair and a store order id"
    )


async def _run_approval(
    settings: Settings,
    workflow_id: str,
    *,
    approved: bool,
    by: str,
    reason: str,
    timeout_s: float,
) -> dict[str, object]:
    """Execute the `approve` update; the run's status once the decision has been taken in."""
    from temporalio.client import (
        WorkflowUpdateFailedError,
        WorkflowUpdateRPCTimeoutOrCancelledError,
    )
    from temporalio.service import RPCError, RPCStatusCode

    from commerce_sync.contracts.orders import ApprovalDecision
    from commerce_sync.ops.temporal_client import (
        TemporalUnreachable,
        connect_within,
        update_refusal,
    )

    try:
        client = await connect_within(settings)
    except TemporalUnreachable as exc:
        raise ApprovalCommandError(str(exc)) from None

    handle = client.get_workflow_handle(workflow_id)
    decision = ApprovalDecision(approved=approved, by=by, reason=reason)
    try:
        result: dict[str, object] = await asyncio.wait_for(
            handle.execute_update("approve", decision, result_type=dict), timeout=timeout_s
        )
        return result
    except WorkflowUpdateFailedError as exc:
        # The workflow's validator refused: nothing waits, or `by` is missing.
        raise ApprovalCommandError(f"{workflow_id}: {update_refusal(exc)}") from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # wait_for's cancellation surfaces as the SDK's own error. The server keeps the
        # admitted update: a worker that comes back may still apply it.
        raise ApprovalCommandError(
            f"{workflow_id}: no worker answered within {timeout_s:g}s (is a worker running?); "
            "the decision may still be applied when one does"
        ) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.UNAVAILABLE:
            raise ApprovalCommandError(
                f"cannot reach Temporal at {settings.resolved_temporal_address}: {exc.message}"
            ) from None
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise ApprovalCommandError(f"{workflow_id}: {exc.message}") from None
    # NOT_FOUND means no such run, or a run that has already ended: say which.
    try:
        description = await handle.describe()
    except RPCError:
        raise ApprovalCommandError(
            f"no run {workflow_id} in namespace {settings.temporal_namespace}"
        ) from None
    ended = description.status.name.lower() if description.status else "closed"
    raise ApprovalCommandError(
        f"{workflow_id}: the run has ended ({ended}); nothing waits for approval"
    )


@app.command()
def approve(
    target: Annotated[
        list[str],
        typer.Argument(
            metavar="WORKFLOW_ID | PAIR STORE_ORDER_ID",
            help="The run: its workflow id (order:PAIR:STORE_ORDER_ID or return:PAIR:RMA_ID), "
            "or a pair and an order id",
            show_default=False,
        ),
    ],
    by: Annotated[str, typer.Option("--by", help="Who decides (recorded on the run)")],
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approve")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (told to the store on reject)")] = "",
    timeout: Annotated[
        float, typer.Option("--timeout", min=1.0, help="Seconds to wait for the workflow")
    ] = 60.0,
) -> None:
    """Approve (or --reject) an order that waits for a person's decision."""
    settings = load_settings()
    if not by.strip():
        fail("--by: who approves or rejects is required")
    workflow_id = _approval_workflow_id(target, settings)
    try:
        status = asyncio.run(
            _run_approval(
                settings,
                workflow_id,
                approved=not reject,
                by=by.strip(),
                reason=reason.strip(),
                timeout_s=timeout,
            )
        )
    except ApprovalCommandError as exc:
        fail(_one_line(exc))
    verb = "rejected" if reject else "approved"
    typer.echo(f"{workflow_id}: {status.get('state', 'unknown')} ({verb} by {by.strip()})")
    leave(0)


async def _read_order_status(settings: Settings, workflow_id: str) -> tuple[str, OrderSyncStatus]:
    """The run's Temporal status and its `status` query; ApprovalCommandError, one line,
    when it cannot be read."""
    from temporalio.service import RPCError, RPCStatusCode

    from commerce_sync.contracts.orders import OrderSyncStatus
    from commerce_sync.ops.temporal_client import TemporalUnreachable, connect_within

    try:
        client = await connect_within(settings)
    except TemporalUnreachable as exc:
        raise ApprovalCommandError(str(exc)) from None
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
        status = await handle.query("status", result_type=OrderSyncStatus)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ApprovalCommandError(
                f"no run {workflow_id} in namespace {settings.temporal_namespace}"
            ) from None
        raise ApprovalCommandError(f"{workflow_id}: {exc.message}") from None
    return (description.status.name if description.status else "UNKNOWN"), status


def _status_lines(workflow_id: str, run_status: str, status: OrderSyncStatus) -> list[str]:
    """An order run's status as short lines: what waits and why, what was flagged, what
    cleansing changed, and the steps."""
    when = "%Y-%m-%d %H:%M UTC"
    lines = [f"{workflow_id}: {status.state.value} (run {run_status.lower()})"]
    if status.error:
        lines.append(f"error: {status.error}")
    if status.approval is not None:
        approval = status.approval
        lines.append(
            f"waits for approval since {approval.since:{when}}, rejected by itself at "
            f"{approval.reject_at:{when}}; because:"
        )
        lines += [f"  - {reason}" for reason in approval.reasons]
    if status.anomaly_score is not None:
        lines.append(f"anomaly score {status.anomaly_score:.2f}")
        lines += [f"  {flag.check} {flag.score:.2f}: {flag.reason}" for flag in status.flags]
    if status.cleansed:
        lines.append("cleansed before the ERP write:")
        lines += [
            f"  {change.field}: {change.before!r} -> {change.after!r} ({change.why})"
            for change in status.cleansed
        ]
    lines.append("steps:")
    lines += [
        f"  {step.at:%H:%M:%S} {step.name}: {step.outcome}"
        + (f" ({step.detail})" if step.detail else "")
        for step in status.steps
    ]
    return lines


@app.command()
def status(
    target: Annotated[
        list[str],
        typer.Argument(
            metavar="WORKFLOW_ID | PAIR STORE_ORDER_ID",
            help="The order run: its workflow id (order:PAIR:STORE_ORDER_ID), or a pair and "
            "an order id",
            show_default=False,
        ),
    ],
) -> None:
    """An order run's state: why it waits for approval, its anomaly flags, what cleansing
    changed, and its steps (decoded)."""
    settings = load_settings()
    workflow_id = _approval_workflow_id(target, settings)
    if not workflow_id.startswith("order:"):
        fail(f"{_one_line(workflow_id)}: status shows order runs (order:PAIR:STORE_ORDER_ID)")
    try:
        run_status, found = asyncio.run(_read_order_status(settings, workflow_id))
    except ApprovalCommandError as exc:
        fail(_one_line(exc))
    out = Console()
    for line in _status_lines(workflow_id, run_status, found):
        out.print(line, highlight=False, markup=False)
    leave(0)


@app.command()
def check(
    pair: Annotated[str, typer.Argument(help="Integration pair id, e.g. kentico-brightpearl")],
    order: Annotated[
        str, typer.Option(help="The store order to read (default: one changed lately)")
    ] = "",
    sku: Annotated[str, typer.Option(help="The SKU to read (default: the order's first)")] = "",
    email: Annotated[
        str, typer.Option(help="The customer e-mail to read (default: the order's)")
    ] = "",
    days: Annotated[
        int, typer.Option(min=1, help="Without --order: read an order changed in these days")
    ] = 30,
) -> None:
    """Read-only dry run of a pair against its systems: authenticate, read one order, one
    product and one customer in the store and the ERP, and report. Nothing is written.
    Exits 1 when a read fails."""
    from rich.markup import escape

    from commerce_sync.commands.check import CheckTargets, Outcome, check_pair

    settings = load_settings()
    pairs = load_pairs(settings.pairs_file)
    if pair not in pairs:
        fail(f"unknown pair {escape(_one_line(pair))} (one of: {', '.join(sorted(pairs))})")
    targets = CheckTargets(order_id=order, sku=sku, email=email, window=timedelta(days=days))
    report = asyncio.run(check_pair(settings, pairs[pair], targets))
    out = Console()
    colours = {Outcome.OK: "green", Outcome.NONE: "yellow", Outcome.FAILED: "red"}
    for line in report.lines:
        mark = f"[{colours[line.outcome]}]{line.outcome.value:<7}[/]"
        out.print(
            f"{mark}{line.system:<12}{line.read:<16}{escape(line.detail)}",
            highlight=False,
            soft_wrap=True,
        )
    failed = sum(line.outcome is Outcome.FAILED for line in report.lines)
    out.print(
        f"check {pair}: {len(report.lines)} reads, {failed} failed, nothing written",
        highlight=False,
        markup=False,
    )
    leave(1 if report.failed else 0)


@app.command("email-query")
def email_query(
    email: Annotated[str, typer.Argument(help="The shopper's email")],
) -> None:
    """Print the Web UI query that finds a shopper's order runs: with codec keys the
    `CustomerEmail` search attribute holds a keyed hash of the email, not the email."""
    from commerce_sync.ops.codec import customer_email_search_value, key_ring

    settings = load_settings()  # with the keys `up` generated, when it did
    value = customer_email_search_value(key_ring(settings), email)
    if not value:
        fail("codec keys are set but no codec.search_key: CustomerEmail is not recorded")
    typer.echo(f"CustomerEmail = '{value}'")


class ResyncBar:
    """`ResyncProgress` as a rich bar (on stderr in the CLI); the total grows as the
    store's pages arrive, and the bar is cleared when done (the summary line stays)."""

    def __init__(self, console: Console, description: str) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,  # no bar (nor stray blank line) in a pipe or log
        )
        self._task: TaskID = self._progress.add_task(description, total=None)
        self._total = 0

    def __enter__(self) -> ResyncBar:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def listed(self, count: int) -> None:
        self._total += count
        self._progress.update(self._task, total=self._total)

    def handled(self, order_id: str, outcome: Outcome) -> None:
        self._progress.advance(self._task)


resync_app = typer.Typer(
    name="resync",
    help="Start the sync runs that lost webhooks should have started (idempotent).",
    no_args_is_help=True,
)


PairOption = Annotated[
    str | None, typer.Option(help="Integration pair id, e.g. kentico-brightpearl (required)")
]


def _resync_target(
    pair: str | None, since: str | None, window: timedelta | None
) -> tuple[Settings, PairConfig, datetime | None]:
    """Settings, the pair and the --since time of a resync command, or one line saying what
    is wrong. Without --since: `window` back from now, or None (everything) without one."""
    from rich.markup import escape

    from commerce_sync.commands import resync

    settings = load_settings()
    pairs = load_pairs(settings.pairs_file)
    try:
        if pair is None:
            raise resync.ResyncError(f"--pair is required (one of: {', '.join(sorted(pairs))})")
        pair_config = resync.find_pair(pairs, pair)
        now = datetime.now(UTC)
        if since is None and window is None:
            return settings, pair_config, None
        return settings, pair_config, resync.parse_since(since, now, window or timedelta(0))
    except resync.ResyncError as exc:
        fail(escape(str(exc)))


@resync_app.command("orders")
def resync_orders(
    pair: PairOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="ISO-8601 time, e.g. 2026-11-22T10:00:00Z (UTC when no offset is given): "
            "orders changed since then. Default: the last 24 hours."
        ),
    ] = None,
) -> None:
    """Start an order sync run for every store order changed since --since that has none.

    Only missing runs are started: a run that exists is left alone, whether it is going,
    finished, or failed (replay failed orders from the dead letters).
    Keep --since within Temporal's retention period: a deleted run looks missing.
    Ends with one line: seen N, started M, already running/complete K.
    """
    from rich.markup import escape

    from commerce_sync.commands import resync

    settings, pair_config, since_at = _resync_target(pair, since, resync.DEFAULT_ORDERS_WINDOW)
    assert since_at is not None
    try:
        with ResyncBar(err, f"orders {pair_config.id}") as bar:
            summary = asyncio.run(
                resync.run_order_resync(settings, pair_config, since_at, progress=bar)
            )
    except resync.ResyncError as exc:
        fail(escape(str(exc)))
    typer.echo(summary.line())
    leave(0)


@resync_app.command("catalog")
def resync_catalog(
    pair: PairOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="ISO-8601 time, e.g. 2026-11-22T10:00:00Z (UTC when no offset is given): "
            "ERP products changed since then. Default: the last 24 hours."
        ),
    ] = None,
) -> None:
    """Start a catalog sync run for every ERP product created or changed since --since.

    Every listed product is synced again (a running run reads it once more), since a
    finished run says nothing about a later change; a product already up to date in the
    store is not written. Ends with one line: seen N changed products, started M.
    """
    from rich.markup import escape

    from commerce_sync.commands import catalog_resync, resync

    settings, pair_config, since_at = _resync_target(
        pair, since, catalog_resync.DEFAULT_CATALOG_WINDOW
    )
    assert since_at is not None
    try:
        with ResyncBar(err, f"catalog {pair_config.id}") as bar:
            summary = asyncio.run(
                catalog_resync.run_catalog_resync(settings, pair_config, since_at, progress=bar)
            )
    except resync.ResyncError as exc:
        fail(escape(str(exc)))
    typer.echo(catalog_resync.summary_line(summary))
    leave(0)


@resync_app.command("inventory")
def resync_inventory(
    pair: PairOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="ISO-8601 time, e.g. 2026-11-22T10:00:00Z (UTC when no offset is given): "
            "only SKUs whose stock changed in the ERP since then. Default: every SKU."
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1.0, help="Seconds to follow the push")
    ] = 3600.0,
) -> None:
    """Push sellable stock of every SKU (or those changed since --since) to the store now.

    The push runs in the pair's inventory push run (`inventory:{pair}`), as the nightly
    full reconciliation does: absolute quantities, one ERP read per batch, store orders
    not yet in the ERP held back. Shows its progress; ends with one line of counts.
    Leaving early (Ctrl-C, --timeout) does not stop the push.
    """
    from rich.markup import escape

    from commerce_sync.commands import resync
    from commerce_sync.commands.inventory_control import run_inventory_resync, summary_line
    from commerce_sync.contracts.inventory import PushPhase, PushProgress

    settings, pair_config, since_at = _resync_target(pair, since, None)

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    task = bar.add_task(f"inventory {pair_config.id}", total=None)

    def show(progress: PushProgress) -> None:
        bar.update(task, total=progress.total, completed=progress.done)

    async def go() -> PushProgress:
        client = await resync.connect_temporal(settings)
        return await asyncio.wait_for(
            run_inventory_resync(
                client, pair_config, settings.task_queue, since=since_at, on_progress=show
            ),
            timeout=timeout,
        )

    try:
        with bar:
            done = asyncio.run(go())
    except resync.ResyncError as exc:
        fail(escape(str(exc)))
    except TimeoutError:
        fail(
            f"the push is still going after {timeout:g}s (is a worker running?); "
            f"follow it with GET /inventory/{pair_config.id}"
        )
    typer.echo(summary_line(pair_config.id, done))
    leave(0 if done.phase == PushPhase.DONE else 1)


app.add_typer(resync_app)

dead_letters_app = typer.Typer(
    name="dead-letters",
    help="Items that failed for good: list, show, and replay them (optionally edited).",
    no_args_is_help=True,
)


def _letters_engine(settings: Settings) -> Engine:
    """The application database, or one line saying why it cannot be read."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from commerce_sync.store.db import make_engine

    try:
        engine = make_engine(settings.resolved_database_url)
        if not inspect(engine).has_table("dead_letters"):
            fail("the database has no dead_letters table (has the API or a worker run yet?)")
    except SQLAlchemyError as exc:
        fail(_one_line(f"database: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"))
    return engine


def _letter_json(letter: DeadLetter) -> str:
    import json

    return json.dumps(letter.model_dump(mode="json"), indent=2, ensure_ascii=False)


@dead_letters_app.command("list")
def dead_letters_list(
    pair: Annotated[str | None, typer.Option(help="Only this integration pair")] = None,
    process: Annotated[
        str | None, typer.Option(help="Only this process: order, catalog or inventory")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason, e.g. invalid_order")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only this status: open, replayed or resolved")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Letters per page")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Letters to skip (newest first)")] = 0,
) -> None:
    """A table of dead letters, newest first, and how many match in all."""
    from rich.markup import escape
    from rich.table import Table

    from commerce_sync.store.dead_letters import list_dead_letters
    from commerce_sync.store.models import LETTER_PROCESSES, DeadLetterStatus

    if process is not None and process not in LETTER_PROCESSES:
        fail(_one_line(f"--process: {process!r} is not one of {', '.join(LETTER_PROCESSES)}"))
    if status is not None and status not in {member.value for member in DeadLetterStatus}:
        fail(_one_line(f"--status: {status!r} is not one of open, replayed, resolved"))
    settings = load_settings()
    engine = _letters_engine(settings)
    letters, total = list_dead_letters(
        engine,
        pair=pair,
        process=process,
        reason=reason,
        status=status,
        limit=limit,
        offset=offset,
    )
    out = Console()
    # Narrow terminals: the business key names the process and the pair already.
    narrow = out.width < WIDE_TABLES
    table = Table(title=None, show_lines=False, box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD)
    columns: tuple[str, ...] = ("id", "status", "business key", "reason", "tries", "updated")
    if not narrow:
        columns = ("id", "status", "pair", "process", "business key", "reason", "tries", "updated")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=narrow and column == "business key")
    when = "%m-%d %H:%M" if narrow else "%Y-%m-%d %H:%M:%S"
    for letter in letters:
        cells = {
            "id": str(letter.id),
            "status": letter.status,
            "pair": escape(letter.pair),
            "process": letter.process,
            "business key": escape(letter.business_key),
            "reason": escape(letter.reason),
            "tries": str(letter.attempts),
            "updated": letter.updated_at.strftime(when),
        }
        table.add_row(*(cells[column] for column in columns))
    out.print(table)
    shown = f"{offset + 1}-{offset + len(letters)}" if letters else "none"
    out.print(f"{shown} of {total}", highlight=False)
    engine.dispose()
    leave(0)


@dead_letters_app.command("show")
def dead_letters_show(
    letter_id: Annotated[int, typer.Argument(metavar="ID", help="The letter's id")],
) -> None:
    """One letter as JSON: payload, error, attempts, status and history."""
    from commerce_sync.store.dead_letters import get_dead_letter

    settings = load_settings()
    engine = _letters_engine(settings)
    letter = get_dead_letter(engine, letter_id)
    engine.dispose()
    if letter is None:
        fail(f"no dead letter {letter_id}")
    typer.echo(_letter_json(letter))
    leave(0)


def _read_payload(source: str) -> dict[str, object]:
    """The edited payload from a file, or from stdin for `-`: a JSON object."""
    import json
    from pathlib import Path

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        fail(_one_line(f"--payload: cannot read {source}: {exc.strerror or exc}"))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(_one_line(f"--payload: not JSON ({exc.msg} at line {exc.lineno})"))
    if not isinstance(value, dict):
        fail("--payload: must be a JSON object (the letter's payload, edited)")
    return value


@dead_letters_app.command("replay")
def dead_letters_replay(
    letter_id: Annotated[int, typer.Argument(metavar="ID", help="The letter's id")],
    payload: Annotated[
        str | None,
        typer.Option(
            "--payload",
            metavar="FILE|-",
            help="The edited payload as JSON (a file, or - for stdin); default: the letter's",
        ),
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Who replays (kept in the history)")] = "cli",
) -> None:
    """Start a fresh run for the letter (same workflow id); it is resolved when that run
    succeeds. Prints the letter as it now stands."""
    from commerce_sync.commands.dead_letter_replay import ReplayError, replay_dead_letter
    from commerce_sync.commands.resync import ResyncError, connect_temporal

    if not by.strip():
        fail("--by: who replays is required")
    edited = _read_payload(payload) if payload is not None else None
    settings = load_settings()
    engine = _letters_engine(settings)

    async def run() -> DeadLetter:
        client = await connect_temporal(settings)
        return await replay_dead_letter(
            engine, client, settings.task_queue, letter_id, edited=edited, by=by.strip()
        )

    try:
        letter = asyncio.run(run())
    except ResyncError as exc:
        fail(_one_line(exc))
    except ReplayError as exc:
        fail(_one_line(exc.one_line()))
    engine.dispose()
    typer.echo(_letter_json(letter))
    leave(0)


app.add_typer(dead_letters_app)

runs_app = typer.Typer(
    name="runs",
    help="Runs from Temporal visibility, as GET /runs lists them.",
    no_args_is_help=True,
)


async def _runs_page(
    settings: Settings, filters: RunFilters, limit: int, page_token: str | None
) -> RunPage:
    """One page of runs; RunFilterError for a bad token, TemporalUnanswered when Temporal cannot
    answer (the connection refused included)."""
    from commerce_sync.commands.run_list import TemporalUnanswered, list_page
    from commerce_sync.ops.temporal_client import TemporalUnreachable, connect_within

    try:
        client = await connect_within(settings)
    except TemporalUnreachable as exc:
        raise TemporalUnanswered(str(exc)) from None
    return await list_page(client, settings, filters, limit=limit, page_token=page_token)


@runs_app.command("list")
def runs_list(
    process: Annotated[
        str | None, typer.Option(help="Only this process: order, return, ...")
    ] = None,
    state: Annotated[str | None, typer.Option(help="Only runs in this SyncState")] = None,
    pair: Annotated[str | None, typer.Option(help="Only this integration pair")] = None,
    running: Annotated[
        bool | None, typer.Option("--running/--closed", help="Only running (or closed) runs")
    ] = None,
    task_queue: Annotated[
        str | None, typer.Option(help="Only runs started on this workflow task queue")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="Runs per page")] = 50,
    page_token: Annotated[
        str | None, typer.Option(help="The next-page token printed under the page before")
    ] = None,
) -> None:
    """A table of runs, newest first, and the token of the next page."""
    from rich.markup import escape
    from rich.table import Table

    from commerce_sync.commands.run_list import RunFilterError, RunFilters, TemporalUnanswered

    settings = load_settings()
    filters = RunFilters(
        process=process, state=state, pair=pair, running=running, task_queue=task_queue
    )
    try:
        filters.check(load_pairs(settings.pairs_file))
        page = asyncio.run(_runs_page(settings, filters, limit, page_token))
    except RunFilterError as exc:
        fail(_one_line(f"--{exc.field.replace('_', '-')}: {exc.reason}"))
    except TemporalUnanswered as exc:
        fail(_one_line(exc))
    out = Console()
    # Narrow terminals get the columns that matter, whole: the process and the pair are
    # in the workflow id already, and times lose their year and seconds.
    narrow = out.width < WIDE_TABLES
    table = Table(title=None, show_lines=False, box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD)
    table.add_column("workflow id", no_wrap=narrow, overflow="fold")
    columns = (
        ("state", "status", "started")
        if narrow
        else ("process", "pair", "state", "status", "started", "closed")
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    when = "%m-%d %H:%M" if narrow else "%Y-%m-%d %H:%M:%S"
    for run in page.runs:
        cells = {
            "process": escape(run.process),
            "pair": escape(run.pair or ""),
            "state": run.state or "",
            "status": run.run_status,
            "started": run.start_time.strftime(when),
            "closed": run.close_time.strftime(when) if run.close_time else "",
        }
        table.add_row(escape(run.workflow_id), *(cells[column] for column in columns))
    out.print(table)
    following = f"next page: --page-token {page.next_page_token}"
    out.print(following if page.next_page_token else "last page", highlight=False, soft_wrap=True)
    leave(0)


app.add_typer(runs_app)


def _add_installed_commands() -> None:
    """Commands that other installed distributions add through the entry point group
    `commerce_sync.cli`: the sandboxes' `up` and `sandbox` where `make run` or `make test`
    installed them. The production image has none, and this module never names them."""
    for entry in entry_points(group="commerce_sync.cli"):
        entry.load()(app)


_add_installed_commands()


if __name__ == "__main__":
    app()
