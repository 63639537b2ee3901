"""Brightpearl as the `ErpPort` of `systems/ports.py`: one pooled connector for the worker.

Order ids are Brightpearl order ids; the number people see is the same id. Brightpearl
has no contact delete in its API, so undoing a contact this run created marks it
inactive (contact status 2) instead; it no longer takes orders and keeps its history.
"""

from __future__ import annotations

from typing import Any

from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import BrightpearlSettings, Settings
from commerce_sync.domain.models import Customer, Order, Payment, Shipment
from commerce_sync.systems.brightpearl.client import BrightpearlClient
from commerce_sync.systems.errors import NotFound
from commerce_sync.systems.ports import ErpOrderHandle


class BrightpearlErpPort:
    system = "brightpearl"

    def __init__(self, settings: BrightpearlSettings, *, timeout_s: float = 15.0) -> None:
        self.client = BrightpearlClient(settings, timeout_s=timeout_s)

    async def unknown_skus(self, skus: list[str], pair: PairConfig) -> list[str]:
        found = await self.client.find_products_by_sku(skus)
        return [sku for sku in skus if sku not in found]

    async def find_customer_by_email(self, email: str, pair: PairConfig) -> str | None:
        contact_id = await self.client.find_contact_by_email(email)
        return None if contact_id is None else str(contact_id)

    async def create_customer(self, customer: Customer, pair: PairConfig) -> str:
        return str(await self.client.create_contact(customer, pair.brightpearl))

    async def delete_customer(self, customer_id: str, pair: PairConfig) -> None:
        try:
            contact = await self.client.get_contact(int(customer_id))
        except NotFound:
            return
        if contact.active:
            await self.client.update_contact(int(customer_id), contact.model_copy(update={"active": False}))

    async def find_order(self, store_order_number: str, pair: PairConfig) -> ErpOrderHandle | None:
        order_id = await self.client.find_order_by_reference(store_order_number)
        return None if order_id is None else ErpOrderHandle(id=str(order_id), number=str(order_id))

    async def create_order(self, order: Order, customer_id: str, pair: PairConfig) -> ErpOrderHandle:
        order_id = await self.client.create_sales_order(order, int(customer_id), pair.brightpearl)
        return ErpOrderHandle(id=str(order_id), number=str(order_id))

    async def cancel_order(self, handle: ErpOrderHandle, pair: PairConfig) -> None:
        await self.client.cancel_order(int(handle.id), lookups=pair.brightpearl)

    async def record_payment(
        self, handle: ErpOrderHandle, payment: Payment, customer_id: str, pair: PairConfig
    ) -> str:
        return str(await self.client.record_payment(int(handle.id), payment, pair.brightpearl))

    async def reverse_payment(self, handle: ErpOrderHandle, payment_id: str, pair: PairConfig) -> None:
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

    async def aclose(self) -> None:
        await self.client.aclose()


def create_erp_port(settings: Settings) -> BrightpearlErpPort:
    return BrightpearlErpPort(settings.brightpearl, timeout_s=settings.http_timeout_s)
