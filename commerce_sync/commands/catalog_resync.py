"""`commerce-sync resync catalog`: sync the ERP products whose webhooks were lost.

Lists the ERP's products created or changed since a time (the ERP port pages through
them) and starts `catalog:{pair}:{sku}` for each, through the webhook path's own
`dispatch` and `catalog_route`: same workflow id, task queue, search attributes and
signal-with-start. Unlike `resync orders`, every listed product gets a run, not only
those that never had one: an earlier completed run says nothing about the latest
change. A run that is going is signalled and reads the product once more; a completed
one is started afresh. Both are harmless, since a catalog run that finds the store
product up to date writes nothing, so running resync twice changes nothing the second
time.

The start, progress and error handling are `resync orders`' (`commerce_sync.commands.resync`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio.client import Client
from temporalio.service import RPCError

from commerce_sync.commands.connectors import budgeted_connectors
from commerce_sync.commands.resync import (
    CONCURRENCY,
    PAGE_SIZE,
    Outcome,
    ResyncError,
    ResyncProgress,
    ResyncSummary,
    connect_temporal,
    one_line,
)
from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import Settings
from commerce_sync.intake.dispatch import dispatch
from commerce_sync.intake.routing import catalog_route
from commerce_sync.systems.errors import ConnectorError
from commerce_sync.systems.ports import ErpPort

DEFAULT_CATALOG_WINDOW = timedelta(hours=24)
"""`--since` left out: the products changed in the last 24 hours."""


def summary_line(summary: ResyncSummary) -> str:
    return f"seen {summary.seen} changed products, started or re-synced {summary.started}"


async def resync_catalog(
    client: Client,
    erp: ErpPort,
    pair: PairConfig,
    since: datetime,
    task_queue: str,
    *,
    progress: ResyncProgress | None = None,
    page_size: int = PAGE_SIZE,
    concurrency: int = CONCURRENCY,
) -> ResyncSummary:
    """Page through the ERP's products changed since `since`; start each one's run.

    Raises `ResyncError` when the ERP or Temporal fails; what was started before that
    stays started (running resync again is harmless).
    """
    summary = ResyncSummary()
    gate = asyncio.Semaphore(concurrency)

    async def one(sku: str, erp_product_id: str) -> Outcome:
        async with gate:
            route = catalog_route(pair.id, sku, erp_product_id=erp_product_id, trigger="resync")
            await dispatch(client, route, task_queue)
        if progress is not None:
            progress.handled(sku, Outcome.STARTED)
        return Outcome.STARTED

    try:
        async for page in erp.changed_products(since, pair, page_size):
            products = {p.sku: p for p in page if p.sku}  # one run per SKU
            summary.seen += len(products)
            if progress is not None:
                progress.listed(len(products))
            results = await asyncio.gather(
                *(
                    one(sku, product.origin.external_id if product.origin else "")
                    for sku, product in products.items()
                ),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
                summary.count(result)
    except ConnectorError as exc:
        raise ResyncError(f"ERP {one_line(str(exc))}") from None
    except RPCError as exc:
        raise ResyncError(f"Temporal: {one_line(exc.message)}") from None
    return summary


async def run_catalog_resync(
    settings: Settings,
    pair: PairConfig,
    since: datetime,
    *,
    progress: ResyncProgress | None = None,
    client: Client | None = None,
) -> ResyncSummary:
    """`resync catalog` end to end: connect (unless given a client), list, start, close."""
    if client is None:
        client = await connect_temporal(settings)
    async with budgeted_connectors(settings) as connectors:
        return await resync_catalog(
            client, connectors.erps[pair.erp], pair, since, settings.task_queue, progress=progress
        )
