"""Brightpearl as the `ErpPort` of `systems/ports.py`: one pooled connector for the worker.

Order ids are Brightpearl order ids; the number people see is the same id. Brightpearl
has no contact delete in its API, so undoing a contact this run created marks it
inactive (contact status 2) instead; it no longer takes orders and keeps its history.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import BrightpearlSettings, Settings
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
from commerce_sync.systems.attempts import NO_MEMORY, AttemptMemory
from commerce_sync.systems.brightpearl.client import BrightpearlClient
from commerce_sync.systems.brightpearl.mapping import bp_datetime, parse_datetime
from commerce_sync.systems.errors import NotFound, ValidationFailed
from commerce_sync.systems.expiring import ExpiringMap
from commerce_sync.systems.observe import RequestHook, ResponseHook

# How long a SKU's product id read for an order is reused by this process.
PRODUCT_TTL_S = 600.0
RESTOCK_NOTE = "commerce-sync restocked the goods of"
UNSTOCK_NOTE = "commerce-sync took back the restock of"


class BrightpearlErpPort:
    system = "brightpearl"

    def __init__(
        self,
        settings: BrightpearlSettings,
        *,
        timeout_s: float = 15.0,
        product_ttl_s: float = PRODUCT_TTL_S,
    ) -> None:
        self.client = BrightpearlClient(settings, timeout_s=timeout_s)
        # SKU -> product id of the products orders name, for `product_ttl_s` (one search
        # per SKU and process, not one at validation and again at every create).
        self._order_products: ExpiringMap[str, int] = ExpiringMap(product_ttl_s)
        # Product id <-> SKU, learned from every read (stock webhooks name ids, stores SKUs):
        # a warm index makes each stock batch one `product-availability` call.
        self._sku_of: dict[str, str] = {}
        self._id_of: dict[str, str] = {}

    async def _order_product_ids(self, skus: list[str]) -> dict[str, int]:
        """SKU -> product id of those that exist: the cached ones, the rest searched (once,
        however many runs ask for the same SKU at the same time)."""
        return await self._order_products.get_or_fetch(skus, self._search_products)

    async def _search_products(self, skus: list[str]) -> dict[str, int]:
        found = await self.client.find_products_by_sku(skus)
        for sku, product_id in found.items():  # stock webhooks name these ids next
            self._learn(str(product_id), sku)
        return found

    async def unknown_skus(self, skus: list[str], pair: PairConfig) -> list[str]:
        found = await self._order_product_ids(skus)
        return [sku for sku in skus if sku not in found]

    async def find_customer_by_email(self, email: str, pair: PairConfig) -> str | None:
        contact_id = await self.client.find_contact_by_email(email)
        return None if contact_id is None else str(contact_id)

    async def create_customer(
        self, customer: Customer, pair: PairConfig, *, memory: AttemptMemory = NO_MEMORY
    ) -> str:
        """The postal addresses, then the contact: `memory` keeps the addresses an attempt
        made for its retry (client.py's docstring says why)."""
        return str(
            await self.client.create_contact(
                customer, pair.brightpearl, memory=memory, settle=pair.duplicate_check_after
            )
        )

    async def delete_customer(
        self, customer_id: str, pair: PairConfig, *, memory: AttemptMemory = NO_MEMORY
    ) -> None:
        try:
            contact = await self.client.get_contact(int(customer_id))
        except NotFound:
            return
        if contact.active:
            await self.client.set_contact_active(int(customer_id), False)

    async def find_order(self, store_order_number: str, pair: PairConfig) -> ErpOrderHandle | None:
        order_id = await self.client.find_order_by_reference(store_order_number)
        return None if order_id is None else ErpOrderHandle(id=str(order_id), number=str(order_id))

    async def create_order(
        self,
        order: Order,
        customer_id: str,
        pair: PairConfig,
        *,
        first_attempt: bool = False,
        first_run: bool = False,
    ) -> tuple[ErpOrderHandle, bool]:
        """The first attempt posts straight away (Brightpearl refuses a second order with
        the same `externalRef`, and answers with the one that holds it); a retry looks
        first, as an attempt may find an order the legacy create left half made
        (`client.create_sales_order`). Product ids come from the per-process cache."""
        skus = [line.sku for line in order.lines if line.sku]
        product_ids = await self._order_product_ids(skus)
        try:
            if first_attempt:
                order_id, made = await self.client.post_sales_order(
                    order, int(customer_id), pair.brightpearl, product_ids=product_ids
                )
            else:
                existing = await self.client.find_order_by_reference(order.number)
                order_id = await self.client.create_sales_order(
                    order, int(customer_id), pair.brightpearl, product_ids=product_ids
                )
                made = existing is None
        except ValidationFailed:
            # A product renumbered or removed since it was cached: the next try looks again.
            self._order_products.forget(skus)
            raise
        return ErpOrderHandle(id=str(order_id), number=str(order_id)), made

    async def cancel_order(self, handle: ErpOrderHandle, pair: PairConfig) -> None:
        await self.client.cancel_order(int(handle.id), lookups=pair.brightpearl)

    async def remove_order_twins(
        self, keep: ErpOrderHandle, store_order_number: str, pair: PairConfig
    ) -> list[str]:
        """None can exist: a sales order is created in one request, and Brightpearl keeps
        `externalRef` + `installedIntegrationInstanceId` unique (docs/systems/brightpearl.md
        §6), so a create that lands after its retry is refused. Nothing to look up."""
        return []

    async def record_payment(
        self,
        handle: ErpOrderHandle,
        payment: Payment,
        customer_id: str,
        pair: PairConfig,
        *,
        first_on_new_order: bool = False,
    ) -> str:
        """Always written first: `transactionRef` + `paymentMethodCode` is unique, and a
        refusal answers with the payment holding it (client.py `_post_payment`)."""
        return str(await self.client.record_payment(int(handle.id), payment, pair.brightpearl))

    async def reverse_payment(
        self, handle: ErpOrderHandle, payment_id: str, pair: PairConfig
    ) -> None:
        for payment in await self.client.get_payments(int(handle.id)):
            if payment.origin is not None and payment.origin.external_id == payment_id:
                await self.client.reverse_payment(int(handle.id), payment, pair.brightpearl)
                return

    async def get_shipments(self, handle: ErpOrderHandle, pair: PairConfig) -> list[Shipment]:
        return await self.client.get_shipments(int(handle.id), pair.brightpearl)

    async def orders_for_shipment_event(
        self, ids: list[str], rows: list[dict[str, Any]], pair: PairConfig
    ) -> list[str]:
        """Goods-out note ids -> the ids of the orders they ship."""
        orders: list[str] = []
        for note_id in ids:
            try:
                shipment = await self.client.get_note_shipment(int(note_id), pair.brightpearl)
            except NotFound:
                continue
            if shipment.order_ref and shipment.order_ref not in orders:
                orders.append(shipment.order_ref)
        return orders

    # ---- catalog ----------------------------------------------------------------

    async def get_product(self, sku: str, pair: PairConfig, product_id: str = "") -> Product | None:
        """By the webhook's product id when it still carries this SKU (no search), else
        by a SKU search; the price comes from the pair's price list."""
        if product_id.isdigit():
            try:
                product = await self.client.get_product(int(product_id), pair.brightpearl)
            except NotFound:
                product = None
            if product is not None and product.sku == sku:
                return product
        found = await self.client.find_products_by_sku([sku])
        if sku not in found:
            return None
        try:
            return await self.client.get_product(found[sku], pair.brightpearl)
        except NotFound:
            return None

    async def product_skus(self, product_ids: list[str], pair: PairConfig) -> dict[str, str]:
        """One `product/{ID-SET}` call per 200 ids; ids that do not exist are left out."""
        ids = sorted({int(each) for each in product_ids if each.strip().isdigit()})
        skus: dict[str, str] = {}
        for native in await self.client._get_by_ids("product-service/product", ids):
            sku = str((native.get("identity") or {}).get("sku") or "")
            if sku:
                skus[str(native["id"])] = sku
        return skus

    async def changed_products(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[Product]]:
        page: list[Product] = []
        async for product in self.client.iter_products_changed_since(since, pair.brightpearl):
            page.append(product)
            if len(page) >= page_size:
                yield page
                page = []
        if page:
            yield page

    # ---- inventory ----------------------------------------------------------------

    def _learn(self, product_id: str, sku: str) -> None:
        old_sku = self._sku_of.get(product_id)
        if old_sku is not None and old_sku != sku:
            self._id_of.pop(old_sku, None)
        self._sku_of[product_id], self._id_of[sku] = sku, product_id

    async def stock_skus(self, erp_ids: list[str], pair: PairConfig) -> dict[str, str]:
        """Product ids -> SKUs: from the index, the misses read with one
        `product/{ID-SET}` call per 200 ids."""
        missing = [each for each in dict.fromkeys(erp_ids) if each not in self._sku_of]
        if missing:
            for product_id, sku in (await self.product_skus(missing, pair)).items():
                self._learn(product_id, sku)
        return {each: self._sku_of[each] for each in erp_ids if each in self._sku_of}

    async def read_stock(self, skus: list[str], pair: PairConfig) -> list[Availability]:
        """One `product-availability/{ID-SET}` call for the batch (totals over all
        warehouses: `onHand` is what is in stock and not allocated to an order).
        SKUs missing from the index are looked up first (a search per SKU when few,
        else one listing of every product's id and SKU)."""
        missing = [sku for sku in dict.fromkeys(skus) if sku not in self._id_of]
        if missing:
            for sku, product_id in (await self.client.find_products_by_sku(missing)).items():
                self._learn(str(product_id), sku)
        ids = {int(self._id_of[sku]): sku for sku in skus if sku in self._id_of}
        if not ids:
            return []
        levels = await self.client.get_availability(ids, batch_size=len(ids))
        return [
            Availability(sku=level.sku, available=level.available, as_of=level.as_of)
            for level in levels
        ]

    async def stock_changed_since(self, since: datetime | None, pair: PairConfig) -> StockChanges:
        """Products updated after `since` (`product-search` on `updatedOn`, 500 a page);
        every product when None. Stock corrections and goods movements update a
        product's `updatedOn`; allocations do not, their webhook covers them."""
        params: dict[str, str] = {"columns": "productId,SKU,updatedOn", "sort": "productId.ASC"}
        if since is not None:
            # The PERIOD filter includes its start: start a millisecond after the cursor.
            params["updatedOn"] = f"{bp_datetime(since + timedelta(milliseconds=1))}/"
        skus: list[str] = []
        cursor = since
        async for row in self.client._search("product-service/product-search", params):
            sku = str(row.get("SKU") or "")
            if not sku:
                continue
            self._learn(str(row["productId"]), sku)
            skus.append(sku)
            updated = parse_datetime(row.get("updatedOn"))
            if updated is not None and (cursor is None or updated > cursor):
                cursor = updated
        return StockChanges(skus=list(dict.fromkeys(skus)), cursor=cursor)

    # ---- returns ----------------------------------------------------------------
    # A return is a sales credit (`SC`, `reference` = the return's reference, parent = the
    # sales order). Goods go back on hand by a goods-in note on the credit, found again by
    # the credit (so a retry after a lost answer does not receive twice) and undone by
    # deleting it. Runs that restocked before used stock corrections recorded in the
    # credit's notes (RESTOCK_NOTE; corrections cannot be searched, so a lost answer could
    # correct twice); their undo still works. The refund is a `PAYMENT` on the credit
    # (`transactionRef` = the reference), undone by a `VOID` (`{ref}-void`).

    async def _credit_ids(self, parent_id: int, pair: PairConfig) -> dict[str, int]:
        """reference -> id of the parent's live (not cancelled) sales credits (the lowest
        id where a lost answer made two)."""
        cancelled = {pair.brightpearl.order_status_ids.get("cancelled", 5)}
        found: dict[str, int] = {}
        for row in await self.client.sales_credits_of(parent_id):
            if int(row.get("orderStatusId") or 0) in cancelled:
                continue
            found.setdefault(self.client.credit_reference(row), int(row["orderId"]))
        return found

    async def _paid_net(self, order_id: int) -> Decimal:
        total = Decimal("0")
        async for row in self.client._search(
            "accounting-service/customer-payment-search",
            {"orderId": order_id, "sort": "paymentId.ASC"},
        ):
            value = Decimal(str(row.get("amountPaid") or "0"))
            if row.get("paymentType") == "PAYMENT":
                total += value
            elif row.get("paymentType") == "VOID":
                total -= value
        return total

    async def prior_returns(
        self, handle: ErpOrderHandle, pair: PairConfig, exclude: str = ""
    ) -> PriorReturns:
        credits = await self._credit_ids(int(handle.id), pair)
        credits.pop(exclude, None)
        result = PriorReturns(references=sorted(credits))
        natives = await self.client._get_by_ids("order-service/order", sorted(credits.values()))
        for native in natives:
            for row in (native.get("orderRows") or {}).values():
                sku = str(row.get("productSku") or "")
                if not sku or not row.get("productId"):
                    continue
                quantity = int(Decimal(str((row.get("quantity") or {}).get("magnitude") or 0)))
                result.quantities[sku] = result.quantities.get(sku, 0) + quantity
            result.refunded += await self._paid_net(int(native["id"]))
        return result

    async def _credit_id(
        self, handle: ErpOrderHandle, reference: str, pair: PairConfig
    ) -> int | None:
        return (await self._credit_ids(int(handle.id), pair)).get(reference)

    async def create_credit(
        self, handle: ErpOrderHandle, lines: list[OrderLine], reference: str, pair: PairConfig
    ) -> str:
        credit_id = await self.client.create_sales_credit(
            int(handle.id), lines, reference=reference, lookups=pair.brightpearl
        )
        return str(credit_id)

    async def cancel_credit(self, handle: ErpOrderHandle, reference: str, pair: PairConfig) -> None:
        credit_id = await self._credit_id(handle, reference, pair)
        if credit_id is not None:
            await self.client.cancel_sales_credit(credit_id, pair.brightpearl)

    async def _notes(self, credit_id: int) -> list[str]:
        try:
            notes = await self.client._request("GET", f"order-service/order/{credit_id}/note")
        except NotFound:
            return []
        rows = notes if isinstance(notes, list) else list((notes or {}).values())
        return [str(note.get("text") or "") for note in rows if isinstance(note, dict)]

    async def _correct(
        self, credit_id: int, lines: list[ReturnLine], sign: int, note: str, pair: PairConfig
    ) -> str:
        if note in await self._notes(credit_id):
            return note
        corrected: list[int] = []
        for line in lines:
            corrected += await self.client.correct_stock(
                line.sku, sign * line.quantity, note, lookups=pair.brightpearl
            )
        await self.client.add_order_note(credit_id, note)
        return ",".join(str(each) for each in corrected) or note

    async def restock(
        self, credit_id: str, lines: list[ReturnLine], reference: str, pair: PairConfig
    ) -> str:
        legacy = f"{RESTOCK_NOTE} {reference}"
        if legacy in await self._notes(int(credit_id)):
            return legacy  # restocked by corrections before goods-in notes were used
        credit = await self.client._get_native_order(int(credit_id))
        by_sku: dict[str, tuple[int, int]] = {}
        unit_values: dict[int, Decimal] = {}
        for row_id, row in (credit.get("orderRows") or {}).items():
            if not row.get("productId") or not row.get("productSku"):
                continue
            by_sku[str(row["productSku"])] = (int(row_id), int(row["productId"]))
            quantity = Decimal(str((row.get("quantity") or {}).get("magnitude") or 0))
            net = Decimal(str(((row.get("rowValue") or {}).get("rowNet") or {}).get("value") or 0))
            if quantity:
                unit_values[int(row_id)] = net / quantity
        rows: dict[int, tuple[int, int]] = {}
        for line in lines:
            if line.sku not in by_sku:
                raise ValidationFailed(
                    "brightpearl", f"{line.sku} is not on sales credit {credit_id}", field="lines"
                )
            row_id, product_id = by_sku[line.sku]
            rows[row_id] = (product_id, rows.get(row_id, (product_id, 0))[1] + line.quantity)
        currency = (credit.get("currency") or {}).get("orderCurrencyCode")
        note_id = await self.client.receive_goods(
            int(credit_id),
            rows,
            pair.brightpearl,
            unit_values=unit_values,
            currency=str(currency) if currency else None,
        )
        return str(note_id)

    async def reverse_restock(self, credit_id: str, reference: str, pair: PairConfig) -> None:
        for note_id in await self.client.get_goods_in_notes(int(credit_id)):
            await self.client.delete_goods_in_note(note_id)
        notes = await self._notes(int(credit_id))
        if f"{RESTOCK_NOTE} {reference}" not in notes:
            return
        credit = await self.client._get_native_order(int(credit_id))
        lines = [
            ReturnLine(
                sku=str(row.get("productSku")),
                quantity=int(Decimal(str((row.get("quantity") or {}).get("magnitude") or 0))),
            )
            for row in (credit.get("orderRows") or {}).values()
            if row.get("productId") and row.get("productSku")
        ]
        await self._correct(int(credit_id), lines, -1, f"{UNSTOCK_NOTE} {reference}", pair)

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
        payment = Payment(method=method, reference=reference, amount=amount, currency=currency)
        return str(await self.client.refund(int(credit_id), payment, pair.brightpearl))

    async def reverse_refund(self, credit_id: str, reference: str, pair: PairConfig) -> None:
        for payment in await self.client.get_payments(int(credit_id), pair.brightpearl):
            if payment.reference == reference:
                await self.client.reverse_payment(int(credit_id), payment, pair.brightpearl)
                return

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
        - a sales credit: nothing is unique on its reference (§13), so a create that lands
          after its retry's search makes a second credit under the order; the ones other
          than the run's are cancelled;
        - a goods-in note: received only when the credit has none, but a late one lands
          after that look; the ones other than the run's are deleted (their goods leave
          stock again);
        - the refund needs no check: `transactionRef` + `paymentMethodCode` is unique, so a
          late second refund is refused (§10)."""
        removed: list[str] = []
        cancelled = {pair.brightpearl.order_status_ids.get("cancelled", 5)}
        for row in await self.client.sales_credits_of(int(handle.id)):
            twin = int(row["orderId"])
            if (
                self.client.credit_reference(row) != reference
                or str(twin) == credit_id
                or int(row.get("orderStatusId") or 0) in cancelled
            ):
                continue
            await self.client.cancel_sales_credit(twin, pair.brightpearl)
            removed.append(f"credit {twin}")
        if restock_id.isdigit():
            for note_id in await self.client.get_goods_in_notes(int(credit_id)):
                if str(note_id) != restock_id:
                    await self.client.delete_goods_in_note(note_id)
                    removed.append(f"restock {note_id}")
        return removed

    def observe_responses(self, hook: ResponseHook) -> None:
        self.client.observe_responses(hook)

    def observe_requests(self, hook: RequestHook) -> None:
        self.client.observe_requests(hook)

    async def aclose(self) -> None:
        await self.client.aclose()


def create_erp_port(settings: Settings) -> BrightpearlErpPort:
    return BrightpearlErpPort(settings.brightpearl, timeout_s=settings.http_timeout_s)
