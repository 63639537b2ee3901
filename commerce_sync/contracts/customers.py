"""Messages of the customer merge and customer sync workflows and of their activities."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from commerce_sync.domain.models import Customer, SystemName

Side = Literal["store", "erp"]
EchoVerdict = Literal["echo", "pending", "new"]
"""`echo`: what commerce-sync wrote; `pending`: a write of ours not yet read back; `new`."""


class CustomerRecordRef(BaseModel):
    pair: str
    customer_id: str


class CustomerEmailLookup(BaseModel):
    pair: str
    email: str


class CustomerWriteInput(BaseModel):
    pair: str
    customer_id: str
    customer: Customer


class CustomerActiveInput(BaseModel):
    pair: str
    customer_id: str
    active: bool


class OrderCustomerInput(BaseModel):
    pair: str
    order_id: str
    customer_id: str


class WriteMemo(BaseModel):
    """A record's fingerprint as commerce-sync wrote it (or as an event found it)."""

    system: str
    customer_id: str
    fingerprint: str


class LinkRepoint(BaseModel):
    pair: str
    side: Side
    old_keys: list[str]
    new_key: str


class LinkRow(BaseModel):
    id: int
    store_id: str
    erp_id: str


class CustomerLinkLookup(BaseModel):
    pair: str
    store_id: str = ""
    erp_id: str = ""


class StepRecord(BaseModel):
    name: str
    at: datetime
    outcome: str = "ok"
    detail: str = ""


class MergeState(StrEnum):
    STARTED = "started"
    MERGING = "merging"
    MERGED = "merged"
    COMPENSATING = "compensating"
    FAILED = "failed"


class CustomerMergeInput(BaseModel):
    system: SystemName
    pair: str
    survivor: str
    duplicates: list[str] = Field(min_length=1)
    trigger: str = "api"


class CustomerMergeStatus(BaseModel):
    system: str
    survivor: str
    duplicates: list[str]
    state: MergeState = MergeState.STARTED
    fields_changed: list[str] = Field(default_factory=list)
    orders_repointed: dict[str, str] = Field(
        default_factory=dict, description="order id -> the duplicate it belonged to"
    )
    steps: list[StepRecord] = Field(default_factory=list)
    compensations: list[StepRecord] = Field(default_factory=list)
    error: str = ""


class CustomerSyncInput(BaseModel):
    pair: str
    side: Side = Field(description="where the change happened")
    customer_id: str = Field(description="the customer's id in that system")
    trigger: str = "webhook"


class CustomerChanged(BaseModel):
    """A later change event for the same customer: the run reads the record again."""

    event_key: str = ""


class CustomerSyncStatus(BaseModel):
    pair: str
    side: Side
    customer_id: str
    changes_seen: int = 0
    writes: int = 0
    echoes_dropped: int = 0
    merges: list[str] = Field(default_factory=list)
    steps: list[StepRecord] = Field(default_factory=list)
    error: str = ""
