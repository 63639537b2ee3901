"""Catalog sync activities.

- `CatalogStoreActivities` on each store's queue (`kentico`, `xcart`): find a product by
  SKU, create, update, delete. The create looks the SKU up first, so a retry after a
  lost answer does not make a second product; the delete of what is already gone
  succeeds.
- `CatalogErpActivities` on each ERP's queue: read the product by SKU, and turn the
  product ids a webhook named into SKUs.
- `CatalogStarter` on the workflow queue: start (or signal) `catalog:{pair}:{sku}` runs
  for the router workflow, through the webhook path's own `dispatch`. Starting twice
  only makes the run read the product once more, so retries are harmless.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from commerce_sync.activities.attempts import first_attempt
from commerce_sync.activities.errors import classified
from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.activities import Catalog, Erp, Store, implements
from commerce_sync.contracts.catalog import (
    CatalogStarts,
    ErpProductIds,
    ErpProductRef,
    StoreProductCreated,
    StoreProductRef,
    StoreProductRemoval,
    StoreProductTwinCheck,
    StoreProductWrite,
)
from commerce_sync.domain.models import Product
from commerce_sync.intake.dispatch import dispatch
from commerce_sync.intake.routing import catalog_route
from commerce_sync.systems.ports import ErpPort, StorePort


class CatalogStoreActivities:
    def __init__(self, port: StorePort, pairs: dict[str, PairConfig]) -> None:
        self._port = port
        self._pairs = pairs

    @implements(Store.find_product)
    @classified
    async def find_product(self, ref: StoreProductRef) -> Product | None:
        return await self._port.find_product(ref.sku, self._pairs[ref.pair])

    @implements(Store.create_product)
    @classified
    async def create_product(self, write: StoreProductWrite) -> StoreProductCreated:
        """Create unless the SKU is there. Found on a retry, it is the product an earlier
        attempt made (its answer was lost); found on the first attempt, someone else made
        it between the workflow's look-up and now, and it is not ours to remove."""
        pair = self._pairs[write.pair]
        existing = await self._port.find_product(write.product.sku, pair)
        if existing is not None and existing.origin is not None:
            return StoreProductCreated(
                product_id=existing.origin.external_id, created=not first_attempt()
            )
        product_id = await self._port.create_product(write.product, pair)
        return StoreProductCreated(product_id=product_id, created=True)

    @implements(Store.update_product)
    @classified
    async def update_product(self, write: StoreProductWrite) -> None:
        await self._port.update_product(write.product_id, write.product, self._pairs[write.pair])

    @implements(Store.delete_product)
    @classified
    async def delete_product(self, removal: StoreProductRemoval) -> bool:
        """Remove the product; True when something was removed."""
        pair = self._pairs[removal.pair]
        product_id = removal.product_id
        if not product_id:
            found = await self._port.find_product(removal.sku, pair)
            if found is None or found.origin is None:
                return False
            product_id = found.origin.external_id
        return await self._port.delete_product(product_id, pair)

    @implements(Store.remove_product_twins)
    @classified
    async def remove_product_twins(self, check: StoreProductTwinCheck) -> list[str]:
        return await self._port.remove_product_twins(check.sku, check.keep, self._pairs[check.pair])


class CatalogErpActivities:
    def __init__(self, port: ErpPort, pairs: dict[str, PairConfig]) -> None:
        self._port = port
        self._pairs = pairs

    @implements(Erp.get_product)
    @classified
    async def get_product(self, ref: ErpProductRef) -> Product | None:
        return await self._port.get_product(ref.sku, self._pairs[ref.pair], ref.erp_product_id)

    @implements(Erp.product_skus)
    @classified
    async def product_skus(self, ids: ErpProductIds) -> dict[str, str]:
        return await self._port.product_skus(ids.product_ids, self._pairs[ids.pair])


class CatalogStarter:
    """Starts catalog runs on the workflow task queue it runs on (the worker's own)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @implements(Catalog.start_runs)
    async def start_runs(self, request: CatalogStarts) -> list[str]:
        task_queue = activity.info().task_queue
        started: list[str] = []
        for start in request.starts:
            route = catalog_route(
                start.pair,
                start.sku,
                erp_product_id=start.erp_product_id,
                trigger=start.trigger,
                erp_event_id=start.erp_event_id,
            )
            await dispatch(self._client, route, task_queue)
            started.append(route.workflow_id)
        return started
