"""X-Cart as the `StorePort` of `systems/ports.py`: one pooled connector for the worker.

Each call maps with the calling pair's `[pairs.<id>.xcart]` lookups.
"""

from __future__ import annotations

from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import Settings, XCartSettings
from commerce_sync.domain.models import Order, OrderStatus
from commerce_sync.systems.xcart.client import XCartClient


class XCartStorePort:
    system = "xcart"

    def __init__(self, settings: XCartSettings, *, timeout_s: float = 15.0) -> None:
        self.client = XCartClient(settings, timeout_s=timeout_s)

    def _for(self, pair: PairConfig) -> XCartClient:
        return self.client.with_lookups(pair.xcart)

    async def get_order(self, order_id: str, pair: PairConfig) -> Order:
        return await self._for(pair).get_order(order_id)

    async def set_order_status(
        self,
        order_id: str,
        status: OrderStatus,
        pair: PairConfig,
        erp_ref: str | None = None,
        note: str | None = None,
    ) -> None:
        await self._for(pair).set_order_status(order_id, status, erp_ref=erp_ref, note=note)

    async def set_tracking(
        self, order_id: str, tracking_numbers: list[str], carrier: str, pair: PairConfig
    ) -> None:
        await self._for(pair).set_tracking(order_id, tracking_numbers, carrier)

    async def aclose(self) -> None:
        await self.client.aclose()


def create_store_port(settings: Settings) -> XCartStorePort:
    return XCartStorePort(settings.xcart, timeout_s=settings.http_timeout_s)
