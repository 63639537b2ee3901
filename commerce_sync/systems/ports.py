"""What the business processes need from a store and from an ERP.

Each system's connector is adapted to one of these (`systems/<name>/port.py`), so the
activities and workflows are written once for every pair. Per-pair lookups come in as
the `PairConfig`; a port holds one pooled connector for the whole worker.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel

from commerce_sync.config.pairs import PairConfig
from commerce_sync.domain.models import Customer, Order, OrderStatus, Payment, Shipment


class ErpOrderHandle(BaseModel):
    """An ERP sales order: `id` to address it by API, `number` for people."""

    id: str
    number: str


class StorePort(Protocol):
    system: str

    async def get_order(self, order_id: str, pair: PairConfig) -> Order: ...

    async def set_order_status(
        self,
        order_id: str,
        status: OrderStatus,
        pair: PairConfig,
        erp_ref: str | None = None,
        note: str | None = None,
    ) -> None: ...

    async def set_tracking(
        self, order_id: str, tracking_numbers: list[str], carrier: str, pair: PairConfig
    ) -> None: ...

    async def aclose(self) -> None: ...


class ErpPort(Protocol):
    system: str

    async def unknown_skus(self, skus: list[str], pair: PairConfig) -> list[str]: ...

    async def find_customer_by_email(self, email: str, pair: PairConfig) -> str | None: ...

    async def create_customer(self, customer: Customer, pair: PairConfig) -> str: ...

    async def delete_customer(self, customer_id: str, pair: PairConfig) -> None: ...

    async def find_order(
        self, store_order_number: str, pair: PairConfig
    ) -> ErpOrderHandle | None: ...

    async def create_order(
        self, order: Order, customer_id: str, pair: PairConfig
    ) -> ErpOrderHandle: ...

    async def cancel_order(self, handle: ErpOrderHandle, pair: PairConfig) -> None: ...

    async def record_payment(
        self, handle: ErpOrderHandle, payment: Payment, customer_id: str, pair: PairConfig
    ) -> str: ...

    async def reverse_payment(
        self, handle: ErpOrderHandle, payment_id: str, pair: PairConfig
    ) -> None: ...

    async def get_shipments(self, handle: ErpOrderHandle, pair: PairConfig) -> list[Shipment]: ...

    async def orders_for_shipment_event(
        self, ids: list[str], rows: list[dict[str, Any]], pair: PairConfig
    ) -> list[str]:
        """ERP order ids (as `ErpOrderHandle.id`) behind the shipments a webhook named."""
        ...

    async def aclose(self) -> None: ...
