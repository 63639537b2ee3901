"""`commerce-sync resync orders`: start the order sync runs that webhooks should have started.

A store whose webhooks were lost (target down, hook disabled, a queue dropped) leaves
orders with no run. Resync lists the ids of the store's orders changed since a time
(the store port pages through them) and starts `order:{pair}:{store_order_id}` for
each one that has no run, through the webhook path's own `dispatch`: same workflow id,
task queue, search attributes and start policies.

Only missing runs are started, so running resync twice starts nothing the second time.
A run that exists is left alone whatever its state: going, finished, and also failed or
terminated (a failed order is dead-lettered and replayed from there once the cause is
fixed, not by every resync). The summary names those separately.

Each id is first looked up with `describe` (strongly consistent, unlike visibility);
the start itself is still the idempotent one (`USE_EXISTING`), so a webhook racing us
cannot cause a second run. A run deleted after Temporal's retention period looks
missing: keep `--since` within the namespace's retention.

Everything here runs without the CLI; the CLI renders `ResyncProgress` as a rich bar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from temporalio.client import Client
from temporalio.service import RPCError

from commerce_sync.commands.connectors import budgeted_connectors
from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import Settings
from commerce_sync.intake.missing_runs import Outcome as Outcome  # resync reports these
from commerce_sync.intake.missing_runs import start_missing_orders
from commerce_sync.ops.temporal_client import TemporalUnreachable, connect_within
from commerce_sync.systems.errors import ConnectorError
from commerce_sync.systems.ports import StorePort

DEFAULT_ORDERS_WINDOW = timedelta(hours=24)
"""`--since` left out: the orders changed in the last 24 hours."""

PAGE_SIZE = 100
CONCURRENCY = 8
"""Ids looked up and started at once; the Temporal server, not us, is the bottleneck."""


class ResyncError(Exception):
    """Bad input or a system that cannot be reached; the message is one line for people."""


@dataclass
class ResyncSummary:
    seen: int = 0
    started: int = 0
    existing: int = 0
    """Every run that was there already, the unsuccessful ones included."""
    unsuccessful: int = 0

    def count(self, outcome: Outcome) -> None:
        if outcome is Outcome.STARTED:
            self.started += 1
            return
        self.existing += 1
        if outcome is Outcome.UNSUCCESSFUL:
            self.unsuccessful += 1

    def line(self) -> str:
        text = f"seen {self.seen}, started {self.started}, already running/complete {self.existing}"
        if self.unsuccessful:
            text += (
                f" ({self.unsuccessful} of them failed, were terminated or timed out: "
                "not restarted)"
            )
        return text


class ResyncProgress(Protocol):
    """What a resync reports while it goes (the CLI draws a bar from it)."""

    def listed(self, count: int) -> None:
        """`count` more order ids were read from the store."""

    def handled(self, order_id: str, outcome: Outcome) -> None:
        """One order id was dealt with."""


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace (newlines from a system's error body) collapsed, and cut short."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def parse_since(text: str | None, now: datetime, default: timedelta) -> datetime:
    """An ISO-8601 time (UTC when it has no offset); None means `now - default`."""
    if text is None:
        return now - default
    try:
        since = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ResyncError(
            f"--since: {text!r} is not an ISO-8601 time (e.g. 2026-11-22T10:00:00Z)"
        ) from None
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if since > now:
        raise ResyncError(f"--since: {text!r} is in the future")
    return since


def find_pair(pairs: Mapping[str, PairConfig], pair_id: str) -> PairConfig:
    pair = pairs.get(pair_id)
    if pair is None:
        known = ", ".join(sorted(pairs)) or "none configured"
        raise ResyncError(f"--pair: unknown pair {pair_id!r} (known: {known})")
    return pair


async def resync_orders(
    client: Client,
    store: StorePort,
    pair: PairConfig,
    since: datetime,
    task_queue: str,
    *,
    progress: ResyncProgress | None = None,
    page_size: int = PAGE_SIZE,
    concurrency: int = CONCURRENCY,
) -> ResyncSummary:
    """Page through the store's orders changed since `since`; start each missing run.

    Raises `ResyncError` when the store or Temporal fails; what was started before
    that stays started (running resync again is harmless).
    """
    summary = ResyncSummary()

    def handled(order_id: str, outcome: Outcome) -> None:
        summary.count(outcome)
        if progress is not None:
            progress.handled(order_id, outcome)

    def listed(count: int) -> None:
        summary.seen += count
        if progress is not None:
            progress.listed(count)

    try:
        await start_missing_orders(
            client,
            store,
            pair,
            since,
            task_queue,
            trigger="resync",
            page_size=page_size,
            concurrency=concurrency,
            listed=listed,
            handled=handled,
        )
    except ConnectorError as exc:
        # "kentico (HTTP 401): GET ...: access denied" -> "store kentico (HTTP 401): ..."
        raise ResyncError(f"store {one_line(str(exc))}") from None
    except RPCError as exc:
        raise ResyncError(f"Temporal: {one_line(exc.message)}") from None
    return summary


async def connect_temporal(settings: Settings) -> Client:
    try:
        return await connect_within(settings)
    except TemporalUnreachable as exc:
        raise ResyncError(
            f"Temporal unreachable at {exc.address}: {one_line(exc.reason)}"
        ) from None


async def run_order_resync(
    settings: Settings,
    pair: PairConfig,
    since: datetime,
    *,
    progress: ResyncProgress | None = None,
    client: Client | None = None,
    page_size: int = PAGE_SIZE,
) -> ResyncSummary:
    """`resync orders` end to end: connect (unless given a client), list, start, close."""
    if client is None:
        client = await connect_temporal(settings)
    async with budgeted_connectors(settings) as connectors:
        return await resync_orders(
            client,
            connectors.stores[pair.store],
            pair,
            since,
            settings.task_queue,
            progress=progress,
            page_size=page_size,
        )
