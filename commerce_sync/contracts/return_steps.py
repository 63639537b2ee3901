"""Inputs of the return activities: plain pydantic models that workflows may import."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel

from commerce_sync.contracts.documents import ErpOrderHandle
from commerce_sync.domain.models import OrderLine, ReturnLine, ReturnStatus


class StoreReturnRef(BaseModel):
    pair: str
    return_id: str


class ReturnStatusUpdate(BaseModel):
    pair: str
    return_id: str
    status: ReturnStatus
    note: str | None = None


class PriorReturnsLookup(BaseModel):
    pair: str
    handle: ErpOrderHandle
    exclude: str = ""


class CreditCreate(BaseModel):
    pair: str
    handle: ErpOrderHandle
    lines: list[OrderLine]
    reference: str


class CreditRef(BaseModel):
    pair: str
    handle: ErpOrderHandle
    reference: str


class RestockRequest(BaseModel):
    pair: str
    credit_id: str
    lines: list[ReturnLine]
    reference: str


class ReturnDocRef(BaseModel):
    """A document of the return (the restock, the refund), named by the credit and the
    return's reference."""

    pair: str
    credit_id: str
    reference: str


class RefundRequest(BaseModel):
    pair: str
    handle: ErpOrderHandle
    credit_id: str
    amount: Decimal
    currency: str
    method: str
    reference: str


class ReturnTwinCheck(BaseModel):
    """What a return run made, for the look for twins that lost answers made: the
    documents it recorded are kept, any other live one of the same return is removed."""

    pair: str
    handle: ErpOrderHandle
    reference: str
    credit_id: str
    restock_id: str
    refund_id: str
