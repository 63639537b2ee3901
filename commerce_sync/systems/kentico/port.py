"""Kentico as the `StorePort` of `systems/ports.py`: one pooled connector for the worker.

Each call maps with the calling pair's `[pairs.<id>.kentico]` lookups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import KenticoSettings, Settings
from commerce_sync.contracts.documents import StoreReturn
from commerce_sync.contracts.feeds import CustomerChange, OrderChange
from commerce_sync.contracts.stock import (
    OPEN_ORDER_STATUSES,
    OrderReservation,
    OrderStamp,
    StockWriteResult,
)
from commerce_sync.domain.models import Order, OrderStatus, Product, ReturnStatus
from commerce_sync.systems.errors import (
    ConnectorError,
    NotFound,
    TransientError,
)
from commerce_sync.systems.kentico import mapping
from commerce_sync.systems.kentico.client import KenticoClient
from commerce_sync.systems.kentico.formats import parse_datetime
from commerce_sync.systems.kentico.mapping import MappingError
from commerce_sync.systems.kentico.schema import CUSTOMER, ORDER, ORDER_ITEM, RETURN_REQUEST, SKU
from commerce_sync.systems.listed import ListedRecords
from commerce_sync.systems.observe import RequestHook, ResponseHook

log = logging.getLogger(__name__)

STOCK_WRITES_AT_ONCE = 8
"""Stock `PUT`s in flight at once within one batch (Kentico has no batch write)."""


class KenticoStorePort:
    system = "kentico"

    def __init__(self, settings: KenticoSettings, *, timeout_s: float = 15.0) -> None:
        self.client = KenticoClient(settings, timeout_s=timeout_s)
        self._listed = ListedRecords()

    def _for(self, pair: PairConfig) -> KenticoClient:
        return self.client.with_lookups(pair.kentico)

    async def get_order(self, order_id: str, pair: PairConfig) -> Order:
        return await self._for(pair).get_order(order_id)

    async def set_order_status(
        self,
        order_id: str,
        status: OrderStatus,
        pair: PairConfig,
        erp_ref: str | None = None,
        note: str | None = None,
        *,
        store_notes: str | None = None,
    ) -> str | None:
        return await self._for(pair).write_order_status(
            order_id, status, erp_ref=erp_ref, note=note, custom_data=store_notes
        )

    async def set_tracking(
        self,
        order_id: str,
        tracking_numbers: list[str],
        carrier: str,
        pair: PairConfig,
        *,
        store_notes: str | None = None,
    ) -> str | None:
        return await self._for(pair).set_tracking(
            order_id, tracking_numbers, carrier, custom_data=store_notes
        )

    async def changed_order_ids(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[str]]:
        """`COM_Order` rows changed after `since`, paged by key (`OrderID > last`) as the
        client's incremental reads are: orders changing while we page are neither
        skipped nor repeated. Ids only, no mapping (see `StorePort.changed_order_ids`)."""
        async for changes in self.changed_orders(since, pair, page_size):
            yield [change.order_id for change in changes]

    async def changed_orders(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[OrderChange]]:
        """The rows of `changed_order_ids`, each cancelled when its `OrderStatusID` is the
        pair's status for cancelled orders (`[pairs.*.kentico]` lookups)."""
        cancelled_id = pair.kentico.order_status_ids.get(OrderStatus.CANCELLED.value)
        async for rows in self.client._pages(ORDER, since, page_size):
            yield [
                OrderChange(
                    order_id=str(row["OrderID"]),
                    cancelled=cancelled_id is not None and row.get("OrderStatusID") == cancelled_id,
                )
                for row in rows
            ]

    async def changed_return_ids(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[str]]:
        """Rows of the return request table (docs/systems/kentico.md §9) changed after
        `since` (`ItemModifiedWhen`, the custom table's own stamp), paged by key."""
        async for rows in self.client._pages(RETURN_REQUEST, since, page_size):
            yield [str(row["ItemID"]) for row in rows]

    async def changed_customers(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[CustomerChange]]:
        """`COM_Customer` rows changed after `since` (`CustomerLastModified`), by key."""
        async for rows in self.client._pages(CUSTOMER, since, page_size):
            yield [
                CustomerChange(customer_id=str(row["CustomerID"]), changed_at=changed_at)
                for row in rows
                if (changed_at := parse_datetime(row.get("CustomerLastModified"))) is not None
            ]

    # ---- catalog ----------------------------------------------------------------

    async def find_product(self, sku: str, pair: PairConfig) -> Product | None:
        return await self._for(pair).get_product_by_sku(sku)

    async def create_product(self, product: Product, pair: PairConfig) -> str:
        return await self._for(pair).create_product(product)

    async def update_product(self, product_id: str, product: Product, pair: PairConfig) -> None:
        await self._for(pair).update_product(product_id, product)

    async def delete_product(self, product_id: str, pair: PairConfig) -> bool:
        try:
            await self._for(pair).delete_product(product_id)
        except NotFound:
            return False
        return True

    async def remove_product_twins(self, sku: str, keep_id: str, pair: PairConfig) -> list[str]:
        """Kentico keeps nothing unique on `SKUNumber` that the connector relies on
        (docs/systems/kentico.md §7): a create landing after its retry's look-up makes a
        second SKU, hidden like every new one. It is deleted; the run's stays."""
        client = self._for(pair)
        twins = [
            str(row["SKUID"])
            for row in await client._sku_rows([sku])
            if str(row.get("SKUNumber")) == sku and str(row["SKUID"]) != keep_id
        ]
        for twin in twins:
            with contextlib.suppress(NotFound):
                await client.delete_product(twin)
        return twins

    # ---- inventory ----------------------------------------------------------------

    async def set_stock_levels(
        self, quantities: dict[str, int], pair: PairConfig
    ) -> StockWriteResult:
        """Kentico has no batch write: the batch's SKU rows come in one listing per 100
        (with their `SKUAvailableItems`), and only SKUs whose quantity differs get a
        `PUT`, a few at a time. A SKU the store refuses (unknown, 400, 404) is reported
        and the rest go on; a transient failure raises, and the retried batch finds what
        already landed unchanged."""
        rows = {
            str(row["SKUNumber"]).casefold(): row
            for row in await self.client._sku_rows(list(quantities))
        }
        result = StockWriteResult()
        todo: list[tuple[str, int, int]] = []
        for sku, quantity in quantities.items():
            row = rows.get(sku.casefold())
            if row is None:
                result.rejected[sku] = f"kentico: no SKU {sku!r} in the store"
            elif row.get("SKUAvailableItems") == quantity:
                result.unchanged.append(sku)
            else:
                todo.append((sku, int(row["SKUID"]), quantity))
        gate = asyncio.Semaphore(STOCK_WRITES_AT_ONCE)

        async def put(sku_id: int, quantity: int) -> None:
            async with gate:
                await self.client._update(SKU, sku_id, {"SKUAvailableItems": quantity})

        outcomes = await asyncio.gather(
            *(put(sku_id, quantity) for _, sku_id, quantity in todo), return_exceptions=True
        )
        for (sku, _, _), outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, TransientError):
                raise outcome
            if isinstance(outcome, ConnectorError):
                result.rejected[sku] = str(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                result.written.append(sku)
        return result

    async def orders_changed_since(self, since: datetime, pair: PairConfig) -> list[OrderStamp]:
        """`COM_Order` rows whose `OrderLastModified` is after `since`, paged by key. The
        rows are kept for `order_reservations` (systems/listed.py)."""
        stamps: list[OrderStamp] = []
        listed: list[tuple[str, dict[str, Any]]] = []
        async for rows in self.client._pages(ORDER, since, 100):
            for row in rows:
                placed_at = parse_datetime(row.get("OrderDate"))
                if placed_at is not None:
                    stamps.append(OrderStamp(order_id=str(row["OrderID"]), placed_at=placed_at))
                listed.append((str(row["OrderID"]), row))
        self._listed.keep(listed)
        return stamps

    async def order_reservations(
        self, order_ids: list[str], pair: PairConfig
    ) -> list[OrderReservation]:
        """What each order holds back, a page of orders at a time: their `COM_Order` rows
        (date, status) and `COM_OrderItem` rows (SKU id, count) in one list call each per
        100 orders, SKU numbers from the client's cache (one call for those it lacks), not
        the whole order (addresses, customer). The `COM_Order` rows the push's listing
        just answered (`orders_changed_since`) are not read again (systems/listed.py): the
        list call is for the others only. An order that is gone is left out, and so is
        one whose status, date or a line's SKU cannot be known (its own sync run
        dead-letters it)."""
        ids = sorted({int(i) for i in order_ids if str(i).strip().isdigit()})
        if not ids:
            return []
        client = self._for(pair)
        listed, unread = self._listed.take(str(i) for i in ids)
        rows = list(listed.values())
        if unread:
            rows += await client._list_in(
                ORDER,
                "OrderID",
                [int(i) for i in unread],
                columns=("OrderID", "OrderDate", "OrderStatusID"),
            )
        rows.sort(key=lambda row: int(row["OrderID"]))
        items = await client._list_in(
            ORDER_ITEM,
            "OrderItemOrderID",
            [int(row["OrderID"]) for row in rows],
            columns=("OrderItemID", "OrderItemOrderID", "OrderItemSKUID", "OrderItemUnitCount"),
        )
        numbers = await client.sku_numbers(
            int(item["OrderItemSKUID"]) for item in items if item.get("OrderItemSKUID")
        )
        lines: dict[int, dict[str, int]] = {}
        unknown: set[int] = set()
        for item in items:
            order_id = int(item["OrderItemOrderID"])
            sku = numbers.get(int(item.get("OrderItemSKUID") or 0))
            if sku is None:
                unknown.add(order_id)
                continue
            quantity = int(item.get("OrderItemUnitCount") or 0)
            if quantity > 0:
                held = lines.setdefault(order_id, {})
                held[sku] = held.get(sku, 0) + quantity
        found: list[OrderReservation] = []
        for row in rows:
            order_id = int(row["OrderID"])
            placed_at = parse_datetime(row.get("OrderDate"))
            try:
                status = mapping.status_from_id(row.get("OrderStatusID"), pair.kentico)
            except MappingError as exc:
                log.warning("order %s left out of stock reservations: %s", order_id, exc)
                continue
            if placed_at is None or order_id in unknown:
                log.warning("order %s left out of stock reservations: unreadable", order_id)
                continue
            found.append(
                OrderReservation(
                    order_id=str(order_id),
                    placed_at=placed_at,
                    open=status in OPEN_ORDER_STATUSES,
                    lines=lines.get(order_id, {}),
                )
            )
        return found

    # ---- returns ----------------------------------------------------------------
    # The custom table's `ReturnOrderID` is the order's id, and `ReturnStatus` is free
    # text: the canonical status values are written as they are.

    async def get_return(self, return_id: str, pair: PairConfig) -> StoreReturn:
        client = self._for(pair)
        request = await client.get_return(return_id)
        status = await client.get_return_status(return_id)
        return StoreReturn(request=request, order_id=request.order_number, status=status)

    async def set_return_status(
        self, return_id: str, status: ReturnStatus, pair: PairConfig, note: str | None = None
    ) -> None:
        await self._for(pair).set_return_status(return_id, status.value, note)

    def observe_responses(self, hook: ResponseHook) -> None:
        self.client.observe_responses(hook)

    def observe_requests(self, hook: RequestHook) -> None:
        self.client.observe_requests(hook)

    async def aclose(self) -> None:
        await self.client.aclose()


def create_store_port(settings: Settings) -> KenticoStorePort:
    return KenticoStorePort(settings.kentico, timeout_s=settings.http_timeout_s)
