"""The catalog change feed's starts: each ERP product changed since the feed's mark
reaches its catalog run (`catalog:{pair}:{sku}`), as the ERP's product webhook would.

A SKU's catalog run is signalled or started afresh on every change (`rerun`), and a run
that finds the store product up to date writes nothing, so passing a change on twice
costs reads, not records. The feed still passes on only what nothing has covered:
- a change the feed passed on before is recorded as an event (`feed:product:{sku}:{the
  ERP's stamp}`, already started), so an overlapping read skips it;
- a change is skipped when the SKU's latest run started after the ERP's stamp of the
  change plus `CLOCK_MARGIN` (the ERP's clock and ours may differ), since that run read
  the product as it is now: the run an ERP event started, for one.
A change whose ERP event started a run within `CLOCK_MARGIN` of it is passed on once
more by the first read that finds it (one extra pass that writes nothing).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.ids import catalog_workflow_id
from commerce_sync.domain.models import Product
from commerce_sync.intake.dispatch import dispatch
from commerce_sync.intake.missing_runs import Outcome, start_each
from commerce_sync.intake.routing import catalog_route
from commerce_sync.store.events import find_event, record_event
from commerce_sync.systems.ports import ErpPort

CLOCK_MARGIN = timedelta(seconds=5)
FEED_EVENT_TYPE = "product.changed"
"""How far the ERP's clock and ours may disagree before a change could be taken for one a
run already read: a run must have started this long after the change's stamp."""


def _event_id(product: Product) -> str:
    stamp = product.updated_at.isoformat() if product.updated_at is not None else "unstamped"
    return f"feed:product:{product.sku}:{stamp}"


async def _covered(client: Client, engine: Engine, pair: PairConfig, product: Product) -> bool:
    if product.updated_at is None:
        return False
    if await asyncio.to_thread(find_event, engine, pair.erp, _event_id(product)) is not None:
        return True
    try:
        described = await client.get_workflow_handle(
            catalog_workflow_id(pair.id, product.sku)
        ).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return described.start_time >= product.updated_at + CLOCK_MARGIN


def _remember(engine: Engine, pair: PairConfig, product: Product, workflow_id: str) -> None:
    """The change as passed on: recorded already started, so the relay never takes it."""
    record_event(
        engine,
        source=pair.erp,
        event_id=_event_id(product),
        event_type=FEED_EVENT_TYPE,
        workflow_id=workflow_id,
        payload={"via": "feed", "sku": product.sku},
        started=True,
    )


async def pass_on_product_changes(
    client: Client,
    engine: Engine,
    erp: ErpPort,
    pair: PairConfig,
    since: datetime,
    task_queue: str,
    *,
    page_size: int,
    concurrency: int,
) -> tuple[int, Counter[Outcome]]:
    """(products seen, outcomes): STARTED for a change passed on to the SKU's run,
    EXISTING for one a run started after it has read already."""

    async def one(product: Product) -> Outcome:
        if await _covered(client, engine, pair, product):
            return Outcome.EXISTING
        route = catalog_route(
            pair.id,
            product.sku,
            erp_product_id=product.origin.external_id if product.origin else "",
            trigger="feed",
        )
        await dispatch(client, route, task_queue)
        if product.updated_at is not None:
            await asyncio.to_thread(_remember, engine, pair, product, route.workflow_id)
        return Outcome.STARTED

    async def one_per_sku() -> AsyncIterator[list[Product]]:
        async for page in erp.changed_products(since, pair, page_size):
            yield list({product.sku: product for product in page if product.sku}.values())

    return await start_each(one_per_sku(), one, concurrency)
