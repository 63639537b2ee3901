"""Store and ERP documents as the ports hand them to activities and workflows."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from commerce_sync.domain.models import ReturnRequest


class ErpOrderHandle(BaseModel):
    """An ERP sales order: `id` to address it by API, `number` for people."""

    id: str
    number: str


class StoreReturn(BaseModel):
    """A store's return request and the store id of the order it returns goods of."""

    request: ReturnRequest
    order_id: str
    status: str = Field(default="", description="the store's own status text, as it is now")


class PriorReturns(BaseModel):
    """What earlier returns of one order took back, as the ERP records them: live
    credits / return orders (cancelled ones do not count) and their refunds net of voids."""

    quantities: dict[str, int] = Field(default_factory=dict)
    refunded: Decimal = Decimal("0")
    references: list[str] = Field(default_factory=list)
