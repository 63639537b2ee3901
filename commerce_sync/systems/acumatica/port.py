"""Acumatica as the `ErpPort` of `systems/ports.py`: one pooled connector for the worker.

A sales order's handle id is `{OrderType}/{OrderNbr}` (e.g. `SO/000123`), the form the
links table keeps; its number is the `OrderNbr`. Customers are `CustomerID`s; payments
are `ReferenceNbr`s of AR payments applied to the order.
"""

from __future__ import annotations

from typing import Any

from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import AcumaticaSettings, Settings
from commerce_sync.domain.models import Customer, Order, Payment, Shipment
from commerce_sync.systems.acumatica.client import AcumaticaClient
from commerce_sync.systems.acumatica.mapping import order_ref, parse_order_ref
from commerce_sync.systems.ports import ErpOrderHandle


def _handle(order_type: str, order_nbr: str) -> ErpOrderHandle:
    return ErpOrderHandle(id=order_ref(order_type, order_nbr), number=order_nbr)


class AcumaticaErpPort:
    system = "acumatica"

    def __init__(self, settings: AcumaticaSettings, *, timeout_s: float = 15.0) -> None:
        self.client = AcumaticaClient(settings, timeout_s=timeout_s)

    async def unknown_skus(self, skus: list[str], pair: PairConfig) -> list[str]:
        known = {product.sku for product in await self.client.get_stock_items(skus)}
        return [sku for sku in skus if sku not in known]

    async def find_customer_by_email(self, email: str, pair: PairConfig) -> str | None:
        customer = await self.client.find_customer_by_email(email)
        if customer is None or customer.origin is None:
            return None
        return customer.origin.external_id

    async def create_customer(self, customer: Customer, pair: PairConfig) -> str:
        return await self.client.create_customer(customer, pair.acumatica)

    async def delete_customer(self, customer_id: str, pair: PairConfig) -> None:
        await self.client.delete_customer(customer_id)

    async def find_order(self, store_order_number: str, pair: PairConfig) -> ErpOrderHandle | None:
        found = await self.client.find_order_by_customer_order(
            store_order_number, pair.acumatica.order_type
        )
        return None if found is None else _handle(*found)

    async def create_order(self, order: Order, customer_id: str, pair: PairConfig) -> ErpOrderHandle:
        order_nbr = await self.client.create_sales_order(order, customer_id, pair.acumatica)
        return _handle(pair.acumatica.order_type, order_nbr)

    async def cancel_order(self, handle: ErpOrderHandle, pair: PairConfig) -> None:
        await self.client.cancel_order(*parse_order_ref(handle.id, pair.acumatica.order_type))

    async def record_payment(
        self, handle: ErpOrderHandle, payment: Payment, customer_id: str, pair: PairConfig
    ) -> str:
        order_type, order_nbr = parse_order_ref(handle.id, pair.acumatica.order_type)
        return await self.client.record_payment(
            order_type, order_nbr, payment, customer_id=customer_id, lookups=pair.acumatica
        )

    async def reverse_payment(self, handle: ErpOrderHandle, payment_id: str, pair: PairConfig) -> None:
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

    async def aclose(self) -> None:
        await self.client.aclose()


def create_erp_port(settings: Settings) -> AcumaticaErpPort:
    return AcumaticaErpPort(settings.acumatica, timeout_s=settings.http_timeout_s)
