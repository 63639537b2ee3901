"""Acumatica as the `ErpPort` of `systems/ports.py`: one pooled connector for the worker.

A sales order's handle id is `{OrderType}/{OrderNbr}` (e.g. `SO/000123`), the form the
links table keeps; its number is the `OrderNbr`. Customers are `CustomerID`s; payments
are `ReferenceNbr`s of AR payments applied to the order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import AcumaticaSettings, Settings
from commerce_sync.contracts.documents import ErpOrderHandle, PriorReturns
from commerce_sync.contracts.stock import Availability, StockChanges
from commerce_sync.domain.models import (
    Customer,
    Order,
    OrderLine,
    Payment,
    Product,
    ReturnLine,
    Shipment,
)
from commerce_sync.systems.acumatica.client import AcumaticaClient
from commerce_sync.systems.acumatica.mapping import datetime_value, order_ref, parse_order_ref, v
from commerce_sync.systems.acumatica.schema import odata_string, value_of
from commerce_sync.systems.attempts import NO_MEMORY, AttemptMemory
from commerce_sync.systems.errors import ValidationFailed
from commerce_sync.systems.expiring import ExpiringMap
from commerce_sync.systems.observe import RequestHook, ResponseHook

# How long a SKU read as a stock item for an order is taken as one by this process.
STOCK_ITEM_TTL_S = 600.0


def _handle(order_type: str, order_nbr: str) -> ErpOrderHandle:
    return ErpOrderHandle(id=order_ref(order_type, order_nbr), number=order_nbr)


class AcumaticaErpPort:
    system = "acumatica"

    def __init__(
        self,
        settings: AcumaticaSettings,
        *,
        timeout_s: float = 15.0,
        stock_item_ttl_s: float = STOCK_ITEM_TTL_S,
    ) -> None:
        self.client = AcumaticaClient(settings, timeout_s=timeout_s)
        # SKUs (`InventoryID`s) known to be stock items, for `stock_item_ttl_s`: one read per
        # SKU and process, not one per order.
        self._stock_items: ExpiringMap[str, bool] = ExpiringMap(stock_item_ttl_s)

    async def unknown_skus(self, skus: list[str], pair: PairConfig) -> list[str]:
        """Stock items found are remembered for `stock_item_ttl_s` (the order's create
        names them by `InventoryID`, so nothing else needs reading); runs asking for the
        same SKU at the same time read it once."""
        known = await self._stock_items.get_or_fetch(skus, self._read_stock_items)
        return [sku for sku in skus if sku not in known]

    async def _read_stock_items(self, skus: list[str]) -> dict[str, bool]:
        return {product.sku: True for product in await self.client.get_stock_items(skus)}

    async def find_customer_by_email(self, email: str, pair: PairConfig) -> str | None:
        customer = await self.client.find_customer_by_email(email)
        if customer is None or customer.origin is None:
            return None
        return customer.origin.external_id

    async def create_customer(
        self, customer: Customer, pair: PairConfig, *, memory: AttemptMemory = NO_MEMORY
    ) -> str:
        """One request (`PUT Customer`): nothing made on the way for `memory` to keep."""
        return await self.client.create_customer(customer, pair.acumatica)

    async def delete_customer(
        self, customer_id: str, pair: PairConfig, *, memory: AttemptMemory = NO_MEMORY
    ) -> None:
        """Delete the customer; when documents refer to it (the sales order this run
        created and then cancelled), Acumatica refuses the delete, so deactivate it:
        it no longer takes orders and the cancelled documents keep their customer."""
        try:
            await self.client.delete_customer(customer_id)
        except ValidationFailed:
            await self.client.deactivate_customer(customer_id)

    async def find_order(self, store_order_number: str, pair: PairConfig) -> ErpOrderHandle | None:
        found = await self.client.find_order_by_customer_order(
            store_order_number, pair.acumatica.order_type
        )
        return None if found is None else _handle(*found)

    async def create_order(
        self,
        order: Order,
        customer_id: str,
        pair: PairConfig,
        *,
        first_attempt: bool = False,
        first_run: bool = False,
    ) -> tuple[ErpOrderHandle, bool]:
        """Acumatica numbers orders itself and keeps nothing unique on `CustomerOrder`, so
        a live order with the store order number is looked for first: only the look keeps
        a retry, or a later run of the order, from making a second one. The first attempt
        of the first run to reach the ERP has nothing to find and writes straight away (a
        twin a stray request still makes is what `remove_order_twins` removes)."""
        order_nbr, made = await self.client.create_sales_order_once(
            order, customer_id, pair.acumatica, look_first=not (first_attempt and first_run)
        )
        return _handle(pair.acumatica.order_type, order_nbr), made

    async def cancel_order(self, handle: ErpOrderHandle, pair: PairConfig) -> None:
        await self.client.cancel_order(*parse_order_ref(handle.id, pair.acumatica.order_type))

    async def remove_order_twins(
        self, keep: ErpOrderHandle, store_order_number: str, pair: PairConfig
    ) -> list[str]:
        """Sales orders are auto-numbered and Acumatica keeps nothing unique on
        `CustomerOrder`: a create whose answer was lost and that lands after the retry's
        lookup makes a second open order. The run keeps the one it recorded and cancels
        the others, found by the store order number written into `CustomerOrder`."""
        order_type = pair.acumatica.order_type
        live = await self.client.live_orders_by_customer_order(store_order_number, order_type)
        twins = [(kind, nbr) for kind, nbr in live if order_ref(kind, nbr) != keep.id]
        for kind, nbr in twins:
            await self.client.cancel_order(kind, nbr)
        return [order_ref(kind, nbr) for kind, nbr in twins]

    async def record_payment(
        self,
        handle: ErpOrderHandle,
        payment: Payment,
        customer_id: str,
        pair: PairConfig,
        *,
        first_on_new_order: bool = False,
    ) -> str:
        """Nothing is unique on `PaymentRef`, so the payment is looked up first, except on
        the first attempt for an order the run has just made: no payment can be on it."""
        order_type, order_nbr = parse_order_ref(handle.id, pair.acumatica.order_type)
        return await self.client.record_payment(
            order_type,
            order_nbr,
            payment,
            customer_id=customer_id,
            lookups=pair.acumatica,
            look_first=not first_on_new_order,
        )

    async def reverse_payment(
        self, handle: ErpOrderHandle, payment_id: str, pair: PairConfig
    ) -> None:
        await self.client.void_payment(payment_id)

    async def get_shipments(self, handle: ErpOrderHandle, pair: PairConfig) -> list[Shipment]:
        order_type, order_nbr = parse_order_ref(handle.id, pair.acumatica.order_type)
        return await self.client.get_shipments(order_type, order_nbr, pair.acumatica)

    async def orders_for_shipment_event(
        self, ids: list[str], rows: list[dict[str, Any]], pair: PairConfig
    ) -> list[str]:
        """`CS-Shipments` rows carry their order's keys."""
        orders: list[str] = []
        for row in rows:
            order_type, order_nbr = row.get("OrderType"), row.get("OrderNbr")
            if order_type and order_nbr:
                ref = order_ref(str(order_type), str(order_nbr))
                if ref not in orders:
                    orders.append(ref)
        return orders

    # ---- catalog ----------------------------------------------------------------
    # A stock item's key, `InventoryID`, is its SKU. Acumatica keeps `DefaultPrice` in the
    # company's base currency, which is the pair's first currency.

    async def get_product(self, sku: str, pair: PairConfig, product_id: str = "") -> Product | None:
        for product in await self.client.get_stock_items([sku], pair.currencies[0]):
            if product.sku == sku:
                return product
        return None

    async def product_skus(self, product_ids: list[str], pair: PairConfig) -> dict[str, str]:
        items = await self.client.get_stock_items(product_ids, pair.currencies[0])
        return {item.sku: item.sku for item in items}

    async def changed_products(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[Product]]:
        page: list[Product] = []
        async for product in self.client.iter_stock_items_changed_since(since, pair.currencies[0]):
            page.append(product)
            if len(page) >= page_size:
                yield page
                page = []
        if page:
            yield page

    # ---- inventory ----------------------------------------------------------------
    # `InventoryQuantityAvailable` answers `QtyAvailable` (on hand less what open sales
    # orders hold) per item over every warehouse, for one item or for all of them, and
    # filters on `LastModifiedDateTime` for delta pulls. One inquiry serves a batch.

    async def _quantities_available(
        self, *, sku: str | None = None, since: datetime | None = None
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {}
        if sku is not None:
            body["InventoryID"] = v(sku)
        if since is not None:
            body["LastModifiedDateTime"] = v(since)
        result = await self.client._json(
            "PUT", "InventoryQuantityAvailable", body=body, params={"$expand": "Results"}
        )
        rows: list[dict[str, Any]] = (result or {}).get("Results", [])
        return rows

    async def stock_skus(self, erp_ids: list[str], pair: PairConfig) -> dict[str, str]:
        """Push notifications name items by `InventoryID`, which is the SKU."""
        return {each: each for each in erp_ids if each.strip()}

    async def read_stock(self, skus: list[str], pair: PairConfig) -> list[Availability]:
        wanted = set(skus)
        rows = await self._quantities_available(sku=skus[0] if len(wanted) == 1 else None)
        levels: list[Availability] = []
        for row in rows:
            sku = str(value_of(row, "InventoryID") or "")
            if sku in wanted:
                levels.append(
                    Availability(
                        sku=sku,
                        available=int(Decimal(str(value_of(row, "QtyAvailable") or 0))),
                        as_of=datetime_value(row, "LastModifiedDateTime"),
                    )
                )
        return levels

    async def stock_changed_since(self, since: datetime | None, pair: PairConfig) -> StockChanges:
        skus: list[str] = []
        cursor = since
        for row in await self._quantities_available(since=since):
            sku = str(value_of(row, "InventoryID") or "")
            if not sku:
                continue
            skus.append(sku)
            changed = datetime_value(row, "LastModifiedDateTime")
            if changed is not None and (cursor is None or changed > cursor):
                cursor = changed
        return StockChanges(skus=list(dict.fromkeys(skus)), cursor=cursor)

    # ---- returns ----------------------------------------------------------------
    # A return is a return order (type `acumatica.return_order_type`, `Receipt` lines,
    # `CustomerOrder` = the return's reference, `ExternalRef` = the sales order's, so the
    # returns of an order are found by it). Goods go back on hand by the return order's
    # receipt, undone by correcting and deleting it (see `restock`); the refund is a
    # `Refund` payment (`PaymentRef` = the reference), voided.

    async def _sales_order(self, handle: ErpOrderHandle, pair: PairConfig) -> dict[str, Any]:
        order_type, order_nbr = parse_order_ref(handle.id, pair.acumatica.order_type)
        record: dict[str, Any] = await self.client._json(
            "GET",
            f"SalesOrder/{order_type}/{order_nbr}",
            params={"$select": "OrderType,OrderNbr,CustomerID,ExternalRef,CurrencyID"},
        )
        return record

    async def prior_returns(
        self, handle: ErpOrderHandle, pair: PairConfig, exclude: str = ""
    ) -> PriorReturns:
        parent = await self._sales_order(handle, pair)
        external_ref = str(value_of(parent, "ExternalRef") or "")
        result = PriorReturns()
        if not external_ref:
            return result
        records = await self.client._json(
            "GET",
            "SalesOrder",
            params={
                "$filter": f"OrderType eq {odata_string(pair.acumatica.return_order_type)} "
                f"and ExternalRef eq {odata_string(external_ref)}",
                "$expand": "Details",
            },
        )
        for record in records:
            reference = str(value_of(record, "CustomerOrder") or "")
            if value_of(record, "Status") == "Canceled" or reference == exclude:
                continue
            result.references.append(reference)
            for row in record.get("Details", []):
                sku = str(value_of(row, "InventoryID") or "")
                quantity = int(Decimal(str(value_of(row, "OrderQty") or 0)))
                result.quantities[sku] = result.quantities.get(sku, 0) + quantity
            refunds = await self.client._json(
                "GET",
                "Payment",
                params={
                    "$filter": f"Type eq 'Refund' and PaymentRef eq {odata_string(reference)}",
                    "$select": "Type,ReferenceNbr,Status,PaymentAmount",
                },
            )
            for refund in refunds:
                if value_of(refund, "Status") != "Voided":
                    result.refunded += Decimal(str(value_of(refund, "PaymentAmount") or 0))
        return result

    async def create_credit(
        self, handle: ErpOrderHandle, lines: list[OrderLine], reference: str, pair: PairConfig
    ) -> str:
        order_type, order_nbr = parse_order_ref(handle.id, pair.acumatica.order_type)
        returned = [ReturnLine(sku=line.sku, quantity=line.quantity) for line in lines]
        return_nbr = await self.client.create_return_order(
            order_type, order_nbr, returned, reference, pair.acumatica
        )
        return order_ref(pair.acumatica.return_order_type, return_nbr)

    async def cancel_credit(self, handle: ErpOrderHandle, reference: str, pair: PairConfig) -> None:
        found = await self.client.find_order_by_customer_order(
            reference, pair.acumatica.return_order_type
        )
        if found is not None:
            await self.client.cancel_return_order(*found)

    # Goods come back on the return order's own receipt (`SalesOrderCreateReceipt`, then
    # confirmed), as docs/systems/acumatica.md §6 describes a return: the receipt is linked to the
    # return order, so finding it needs no key of ours, and it is undone the way
    # Acumatica allows before invoicing: `CorrectShipment`, then the Open receipt deleted.
    # Runs that restocked before this used a stand-alone `InventoryReceipt` keyed by its
    # description; their undo still finds and reverses it.

    @staticmethod
    def _receipt_description(reference: str) -> str:
        return f"commerce-sync {reference}"[:255]  # as `receive_stock` writes it

    async def restock(
        self, credit_id: str, lines: list[ReturnLine], reference: str, pair: PairConfig
    ) -> str:
        order_type, order_nbr = parse_order_ref(credit_id, pair.acumatica.return_order_type)
        return await self.client.create_receipt(
            order_type, order_nbr, warehouse=pair.acumatica.warehouse_id
        )

    async def reverse_restock(self, credit_id: str, reference: str, pair: PairConfig) -> None:
        order_type, order_nbr = parse_order_ref(credit_id, pair.acumatica.return_order_type)
        await self.client.undo_receipt(order_type, order_nbr)
        found = await self.client._find_document(
            "InventoryReceipt",
            f"Description eq {odata_string(self._receipt_description(reference))}",
        )
        if found is None:
            return
        number = str(value_of(found, "ReferenceNbr"))
        if value_of(found, "Status") != "Released":
            # An earlier attempt stopped before the release: finish it, then reverse.
            number = await self.client.receive_stock([], reference, pair.acumatica.warehouse_id)
        await self.client.reverse_receipt(number)

    async def refund(
        self,
        handle: ErpOrderHandle,
        credit_id: str,
        amount: Decimal,
        currency: str,
        method: str,
        reference: str,
        pair: PairConfig,
    ) -> str:
        customer_id = str(value_of(await self._sales_order(handle, pair), "CustomerID"))
        return await self.client.refund(
            customer_id, amount, currency, reference, method=method, lookups=pair.acumatica
        )

    async def reverse_refund(self, credit_id: str, reference: str, pair: PairConfig) -> None:
        found = await self.client._find_payment("Refund", reference)
        if found is not None:
            await self.client.void_refund(str(value_of(found, "ReferenceNbr")))

    async def remove_return_twins(
        self,
        handle: ErpOrderHandle,
        reference: str,
        pair: PairConfig,
        *,
        credit_id: str,
        restock_id: str,
        refund_id: str,
    ) -> list[str]:
        """Twins a lost answer can leave, and how each is removed:
        - a return order: auto-numbered, and nothing is unique on the `CustomerOrder` the
          reference is written into, so a create landing after its retry's lookup makes
          a second one; the others than the run's are cancelled (they hold no receipt:
          goods are received on the run's return order only);
        - a refund: a `Payment` of type Refund, auto-numbered and not unique on
          `PaymentRef`, so a late create pays out twice; the others are voided;
        - a receipt: made by an action on the run's return order; a late second action
          finds nothing left to receive once the first receipt is confirmed, but one
          landing before that makes a second receipt, which is corrected and deleted."""
        removed: list[str] = []
        return_type = pair.acumatica.return_order_type
        for kind, nbr in await self.client.live_orders_by_customer_order(reference, return_type):
            if order_ref(kind, nbr) != credit_id:
                await self.client.cancel_return_order(kind, nbr)
                removed.append(f"credit {order_ref(kind, nbr)}")
        if restock_id:
            kind, nbr = parse_order_ref(credit_id, return_type)
            for number, status in await self.client.receipts_of(kind, nbr):
                if number != restock_id:
                    await self.client.remove_receipt(number, status)
                    removed.append(f"restock {number}")
        for refund in await self.client._live_payments("Refund", reference):
            number = str(value_of(refund, "ReferenceNbr"))
            if number != refund_id:
                await self.client.void_refund(number)
                removed.append(f"refund {number}")
        return removed

    def observe_responses(self, hook: ResponseHook) -> None:
        self.client.observe_responses(hook)

    def observe_requests(self, hook: RequestHook) -> None:
        self.client.observe_requests(hook)

    async def aclose(self) -> None:
        await self.client.aclose()


def create_erp_port(settings: Settings) -> AcumaticaErpPort:
    return AcumaticaErpPort(settings.acumatica, timeout_s=settings.http_timeout_s)
