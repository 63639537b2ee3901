"""Store activities, registered on each store's own task queue (`kentico`, `xcart`).

The same activity names run on every store's queue; the worker for a queue binds them
to that store's port, and a workflow picks the store by picking the queue.
"""

from __future__ import annotations

from commerce_sync.activities.errors import classified
from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.activities import Store, implements
from commerce_sync.contracts.steps import StoreOrderRef, StoreStatusUpdate, TrackingUpdate
from commerce_sync.domain.models import Order
from commerce_sync.systems.ports import StorePort


class StoreActivities:
    def __init__(self, port: StorePort, pairs: dict[str, PairConfig]) -> None:
        self._port = port
        self._pairs = pairs

    @implements(Store.get_order)
    @classified
    async def get_order(self, ref: StoreOrderRef) -> Order:
        return await self._port.get_order(ref.order_id, self._pairs[ref.pair])

    @implements(Store.set_order_status)
    @classified
    async def set_order_status(self, update: StoreStatusUpdate) -> str | None:
        return await self._port.set_order_status(
            update.order_id,
            update.status,
            self._pairs[update.pair],
            erp_ref=update.erp_ref,
            note=update.note,
            store_notes=update.store_notes,
        )

    @implements(Store.set_tracking)
    @classified
    async def set_tracking(self, update: TrackingUpdate) -> str | None:
        return await self._port.set_tracking(
            update.order_id,
            update.tracking_numbers,
            update.carrier,
            self._pairs[update.pair],
            store_notes=update.store_notes,
        )
