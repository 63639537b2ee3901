"""X-Cart as the `StorePort` of `systems/ports.py`: one pooled connector for the worker.

Each call maps with the calling pair's `[pairs.<id>.xcart]` lookups.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import Settings, XCartSettings
from commerce_sync.contracts.documents import StoreReturn
from commerce_sync.contracts.feeds import CustomerChange, OrderChange
from commerce_sync.contracts.stock import (
    OrderReservation,
    OrderStamp,
    StockWriteResult,
    reservation_of,
)
from commerce_sync.domain.models import Order, OrderStatus, Product, ReturnStatus
from commerce_sync.systems.errors import NotFound, ValidationFailed
from commerce_sync.systems.listed import ListedRecords
from commerce_sync.systems.observe import RequestHook, ResponseHook
from commerce_sync.systems.xcart.client import MODULE_EVENTS_KEPT, RETURNS, XCartClient
from commerce_sync.systems.xcart.mapping import (
    from_unix,
    order_from_native,
    order_status_from_native,
    return_from_native,
    to_unix,
)

log = logging.getLogger(__name__)

# The store's clock and ours may differ: the module's outbox is trusted to reach back to
# `since` only up to its retention less this margin.
CLOCK_MARGIN = timedelta(hours=1)

# The returns module's statuses: requested, authorized, declined, received, completed.
RETURN_STATUSES: dict[ReturnStatus, str] = {
    ReturnStatus.REQUESTED: "requested",
    ReturnStatus.APPROVED: "authorized",
    ReturnStatus.REJECTED: "declined",
    ReturnStatus.REFUNDED: "completed",
}


class XCartStorePort:
    system = "xcart"

    def __init__(self, settings: XCartSettings, *, timeout_s: float = 15.0) -> None:
        self.client = XCartClient(settings, timeout_s=timeout_s)
        self._listed = ListedRecords()

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
        *,
        store_notes: str | None = None,
    ) -> str | None:
        return await self._for(pair).set_order_status(
            order_id, status, erp_ref=erp_ref, note=note, admin_notes=store_notes
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
        """X-Cart keeps tracking outside `adminNotes`: `store_notes` is not needed, and
        the notes are answered as they were given."""
        await self._for(pair).set_tracking(order_id, tracking_numbers, carrier)
        return store_notes

    async def changed_order_ids(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[str]]:
        """Orders placed or changed at or after `since`, each once, a page at a time. Ids
        only, no mapping (see `StorePort.changed_order_ids`).

        Where the store module (emitters/xcart/) is installed and its outbox still holds
        events back to `since`: the orders placed since (X-Cart's `date` condition, by
        id) and the orders its events name, two short reads. Otherwise every order is
        read by id and kept when its `lastRenewDate` is recent enough, a read that grows
        with the store; an order that changes while we page can only move into that
        listing, so it may repeat an id but never skips one."""
        seen: set[str] = set()
        page: list[str] = []
        async for change in self._changed_order_stream(since, pair, page_size):
            if change.order_id in seen:
                continue
            seen.add(change.order_id)
            page.append(change.order_id)
            if len(page) >= page_size:
                yield page
                page = []
        if page:
            yield page

    async def changed_orders(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[OrderChange]]:
        """The orders of `changed_order_ids`, each cancelled when the module's
        `order.cancelled` event names it, or (without the module) when its payment status
        maps to cancelled. An order listed before as placed comes again once cancelled."""
        told: dict[str, bool] = {}
        page: list[OrderChange] = []
        async for change in self._changed_order_stream(since, pair, page_size):
            if change.order_id in told and (told[change.order_id] or not change.cancelled):
                continue
            told[change.order_id] = change.cancelled
            page.append(change)
            if len(page) >= page_size:
                yield page
                page = []
        if page:
            yield page

    async def _changed_order_stream(
        self, since: datetime, pair: PairConfig, page_size: int
    ) -> AsyncIterator[OrderChange]:
        events = await self._module_events_since(since, page_size)
        if events is None:
            async for record in self.client._iter_changed(
                "order", "order_id", "lastRenewDate", since, page_size
            ):
                status = order_status_from_native(
                    (record.get("shippingStatus") or {}).get("id"),
                    (record.get("paymentStatus") or {}).get("code"),
                    pair.xcart,
                )
                yield OrderChange(
                    order_id=str(record["order_id"]), cancelled=status == OrderStatus.CANCELLED
                )
            return
        async for order_id in self.client.iter_order_ids_placed_since(since, page_size):
            yield OrderChange(order_id=order_id)
        for event in events:
            kind = str(event.get("type") or "")
            if kind.startswith("order.") and event.get("recordId"):
                yield OrderChange(
                    order_id=str(event["recordId"]), cancelled=kind == "order.cancelled"
                )

    async def _module_events_since(
        self, since: datetime, page_size: int
    ) -> list[dict[str, Any]] | None:
        """The module's events since `since`, or None when they cannot answer for the
        time: the module is not installed (404), or `since` is older than the outbox
        keeps sent events. Read whole before any id is given out, so a listing never
        mixes the two ways."""
        aware = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
        if aware < datetime.now(UTC) - MODULE_EVENTS_KEPT + CLOCK_MARGIN:
            return None
        try:
            return [event async for event in self.client.iter_module_events_since(since, page_size)]
        except NotFound:
            return None

    # ---- catalog ----------------------------------------------------------------

    async def find_product(self, sku: str, pair: PairConfig) -> Product | None:
        return await self._for(pair).get_product_by_sku(sku)

    async def create_product(self, product: Product, pair: PairConfig) -> str:
        self._check_currency(product, pair)
        return await self._for(pair).create_product(product)

    async def update_product(self, product_id: str, product: Product, pair: PairConfig) -> None:
        self._check_currency(product, pair)
        await self._for(pair).update_product(product_id, product)

    async def delete_product(self, product_id: str, pair: PairConfig) -> bool:
        try:
            return await self._for(pair).delete_product(product_id)
        except NotFound:
            return False

    async def remove_product_twins(self, sku: str, keep_id: str, pair: PairConfig) -> list[str]:
        """A create landing after its retry's look-up would make a second product with
        the SKU where the store does not refuse one (the sandbox does, docs/systems/xcart.md
        §6; the connector does not rely on it): any such twin is deleted."""
        client = self._for(pair)
        twins = [pid for pid in await client.product_ids_with_sku(sku) if pid != keep_id]
        for twin in twins:
            await client.delete_product(twin)
        return twins

    # ---- inventory ----------------------------------------------------------------

    async def set_stock_levels(
        self, quantities: dict[str, int], pair: PairConfig
    ) -> StockWriteResult:
        """One update-many `PUT product` for the whole batch (product ids from the client's
        SKU cache, refreshed by one listing on a miss), of the SKUs whose amount differs
        where the client knows it (`XCartClient.set_stock_many`). A SKU the store does not
        know is reported; a failed call raises (retrying the absolute batch is harmless)."""
        pushed = await self.client.set_stock_many(quantities, batch_size=max(1, len(quantities)))
        return StockWriteResult(
            written=list(pushed.updated),
            unchanged=list(pushed.unchanged),
            rejected={sku: f"xcart: {reason}" for sku, reason in pushed.failed.items()},
        )

    async def orders_changed_since(self, since: datetime, pair: PairConfig) -> list[OrderStamp]:
        """Orders whose `lastRenewDate` is at or after `since`, with their `date` placed.

        The push holds back only orders placed within `inventory.order_lookback`
        (workflows/inventory_push.py), so only those are listed: X-Cart's own `date`
        condition (`_cnd[date][0]`, Unix seconds, XC-5.3.2 Repo/Order.php
        `prepareCndDate`; docs/systems/xcart.md §4) from the lookback (and the overlap,
        for the store's clock) before now, by `o.order_id`, 100 a page, and kept here
        by `lastRenewDate` (X-Cart has no "changed since" condition on orders). A read
        that grows with the orders of the lookback window, not with every order the
        store ever took. The records are whole orders: kept for `order_reservations`."""
        rules = pair.inventory
        placed_from = datetime.now(UTC) - rules.order_lookback - rules.order_overlap
        since_unix = to_unix(since)
        stamps: dict[str, OrderStamp] = {}
        listed: list[tuple[str, dict[str, Any]]] = []
        async for record in self.client._iter_pages(
            "order", {"date": [to_unix(placed_from)]}, "o.order_id", 100
        ):
            if int(record.get("lastRenewDate") or 0) < since_unix:
                continue
            placed_at = from_unix(record.get("date"))
            if placed_at is not None:
                order_id = str(record["order_id"])
                stamps[order_id] = OrderStamp(order_id=order_id, placed_at=placed_at)
                listed.append((order_id, record))
        self._listed.keep(listed)
        return list(stamps.values())

    async def order_reservations(
        self, order_ids: list[str], pair: PairConfig
    ) -> list[OrderReservation]:
        """What each order holds back. An order the push's listing just answered
        (`orders_changed_since`, whole records) is not read again (systems/listed.py);
        any other is read through the store's API (`GET order/{id}`). One that is gone is
        left out, and so is one that does not map (its lines cannot be known; the order's
        own sync run dead-letters it)."""
        listed, _ = self._listed.take(order_ids)
        found: list[OrderReservation] = []
        for order_id in dict.fromkeys(order_ids):
            try:
                if order_id in listed:
                    order = order_from_native(listed[order_id], pair.xcart)
                else:
                    order = await self.get_order(order_id, pair)
            except (NotFound, ValidationFailed, ValueError) as exc:
                log.warning("order %s left out of stock reservations: %s", order_id, exc)
                continue
            found.append(reservation_of(order_id, order))
        return found

    @staticmethod
    def _check_currency(product: Product, pair: PairConfig) -> None:
        """X-Cart prices the catalog in one currency; another is a permanent mapping error
        (the mapping's own ValueError would be retried forever)."""
        if product.currency != pair.xcart.currency:
            raise ValidationFailed(
                "xcart",
                f"X-Cart prices in {pair.xcart.currency}; product {product.sku} is in "
                f"{product.currency}",
                field="price",
            )

    # ---- customers (the change feed) ---------------------------------------------

    async def changed_customers(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[CustomerChange]]:
        """Profiles changed at or after `since`, a page at a time.

        Where the store module's outbox answers for the time: its `customer.created` and
        `customer.updated` events (the profile and the event's time), one short read.
        Otherwise every profile is read by id and kept by its `updateDate`: the sandbox
        has one, but X-Cart 5.3.2's `Profile` model has no such column
        (docs/systems/xcart.md §3), so on such a store only the module reports profile
        changes."""
        events = await self._module_events_since(since, page_size)
        if events is not None:
            changes = [
                CustomerChange(customer_id=str(event["recordId"]), changed_at=changed_at)
                for event in events
                if str(event.get("type") or "").startswith("customer.")
                and event.get("recordId")
                and (changed_at := from_unix(event.get("createdAt"))) is not None
            ]
            for start in range(0, len(changes), page_size):
                yield changes[start : start + page_size]
            return
        page: list[CustomerChange] = []
        async for record in self.client._iter_changed(
            "profile", "profile_id", "updateDate", since, page_size
        ):
            changed_at = from_unix(record.get("updateDate"))
            if changed_at is None:
                continue
            page.append(
                CustomerChange(customer_id=str(record["profile_id"]), changed_at=changed_at)
            )
            if len(page) >= page_size:
                yield page
                page = []
        if page:
            yield page

    # ---- returns ----------------------------------------------------------------

    async def changed_return_ids(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[str]]:
        """Return requests made or changed at or after `since`, a page at a time.

        Where the store module's outbox answers for the time: the returns its
        `return.requested` events name, one short read. Otherwise every return is read
        by id and kept when its `lastRenewDate` is recent enough (the returns model has
        no "changed since" condition either, docs/systems/xcart.md §3)."""
        events = await self._module_events_since(since, page_size)
        if events is not None:
            ids = list(
                dict.fromkeys(
                    str(event["recordId"])
                    for event in events
                    if event.get("type") == "return.requested" and event.get("recordId")
                )
            )
            for start in range(0, len(ids), page_size):
                yield ids[start : start + page_size]
            return
        page: list[str] = []
        async for record in self.client._iter_changed(
            RETURNS, "id", "lastRenewDate", since, page_size
        ):
            page.append(str(record["id"]))
            if len(page) >= page_size:
                yield page
                page = []
        if page:
            yield page

    async def get_return(self, return_id: str, pair: PairConfig) -> StoreReturn:
        """The return names its order by id (`order.order_id`) and by number."""
        native = await self.client._get_one(RETURNS, return_id)
        order_id = str((native.get("order") or {}).get("order_id") or "")
        return StoreReturn(
            request=return_from_native(native),
            order_id=order_id,
            status=str(native.get("status") or ""),
        )

    async def set_return_status(
        self, return_id: str, status: ReturnStatus, pair: PairConfig, note: str | None = None
    ) -> None:
        await self._for(pair).set_return_status(return_id, RETURN_STATUSES[status], note)

    def observe_responses(self, hook: ResponseHook) -> None:
        self.client.observe_responses(hook)

    def observe_requests(self, hook: RequestHook) -> None:
        self.client.observe_requests(hook)

    async def aclose(self) -> None:
        await self.client.aclose()


def create_store_port(settings: Settings) -> XCartStorePort:
    return XCartStorePort(settings.xcart, timeout_s=settings.http_timeout_s)
