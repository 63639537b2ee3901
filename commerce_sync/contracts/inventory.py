"""Messages of the inventory push (`inventory:{pair}`): input, signals, the status query,
what it carries over a continue-as-new, and the inputs and outputs of its activities.

Plain pydantic models: the workflow, the activities, the API, the CLI and benchmarks
all import them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from commerce_sync.contracts.stock import OrderReservation, OrderStamp
from commerce_sync.domain.stock_echo import LinkedOrder, StockBase

# ---- what starts and feeds a push ---------------------------------------------------


class PushMode(StrEnum):
    SKUS = "skus"
    """The SKUs the request lists."""
    ALL = "all"
    """Every stock SKU of the ERP: the full reconciliation (nightly, `resync inventory`)."""
    INCREMENTAL = "incremental"
    """SKUs changed in the ERP since the workflow's cursor (every few minutes)."""
    CHANGED = "changed"
    """SKUs changed in the ERP since the request's `since` (the cursor stays as it is)."""


class PushRequest(BaseModel):
    """Signal `push`: push these SKUs (or all, or the changed ones) as soon as possible."""

    request_id: str = Field(min_length=1, max_length=300)
    mode: PushMode = PushMode.SKUS
    skus: list[str] = Field(default_factory=list)
    since: datetime | None = None
    requested_by: str = ""


class StockChanged(BaseModel):
    """Signal `stock_changed`: an ERP stock webhook named these items; gathered for the
    pair's `inventory.gather_window` before one push."""

    erp: Literal["brightpearl", "acumatica"]
    skus: list[str] = Field(default_factory=list)
    erp_ids: list[str] = Field(default_factory=list, description="ERP item ids to look up")
    event_key: str = ""


class ScheduleTick(BaseModel):
    """Input of the run a Temporal Schedule starts: ask `inventory:{pair}` for a push."""

    pair: str
    mode: Literal[PushMode.INCREMENTAL, PushMode.ALL]


# ---- progress and status ------------------------------------------------------------


class PushCounts(BaseModel):
    read: int = 0
    """SKUs the ERP answered for."""
    written: int = 0
    unchanged: int = 0
    rejected: int = 0
    """Refused by the store for good: each one a dead letter."""
    not_in_erp: int = 0
    """Not known to the ERP: left alone in the store (never pushed as zero)."""
    read_failed: int = 0
    """The ERP read of their batch failed: nothing pushed, pushed again later."""
    write_failed: int = 0
    """The store write of their batch failed after its retries: pushed again later."""
    corrected: int = 0
    """Written again in the same cycle because a store order arrived during it."""
    echoes: int = 0
    """Changed in the ERP by exactly the orders linked since their last push: the store had
    counted those orders itself, so it was not asked (the ERP was read)."""

    def add(self, other: PushCounts) -> None:
        for name in PushCounts.model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class PushPhase(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class PushProgress(BaseModel):
    request_id: str
    mode: PushMode
    requested_by: str = ""
    phase: PushPhase = PushPhase.QUEUED
    total: int | None = Field(default=None, description="SKUs to push, once known")
    done: int = 0
    counts: PushCounts = Field(default_factory=PushCounts)
    queued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str = ""


class RequestState(BaseModel):
    """A push request inside the workflow: its progress and the SKUs still to push."""

    progress: PushProgress
    request: PushRequest
    expanded: bool = False
    remaining: list[str] = Field(default_factory=list)


class InventoryState(StrEnum):
    IDLE = "idle"
    GATHERING = "gathering"
    PUSHING = "pushing"


class CycleRecord(BaseModel):
    """One push cycle: reservations refreshed, batches read and written, then verified."""

    at: datetime
    skus: int
    counts: PushCounts
    reserved_orders: int
    note: str = ""


class InventoryStatus(BaseModel):
    """Query `status`."""

    pair: str
    state: InventoryState
    run: int = Field(description="how many times this workflow has continued as new")
    cursor: datetime | None = None
    pending: int = 0
    retrying: int = 0
    retry_at: datetime | None = None
    reserved: dict[str, int] = Field(
        default_factory=dict, description="SKU -> quantity held by store orders not in the ERP"
    )
    reserved_orders: list[str] = Field(default_factory=list)
    current: PushProgress | None = None
    queued: list[PushProgress] = Field(default_factory=list)
    recent: list[PushProgress] = Field(default_factory=list)
    totals: PushCounts = Field(default_factory=PushCounts)
    cycles: int = 0
    last_cycle: CycleRecord | None = None
    last_error: str = ""

    def request(self, request_id: str) -> PushProgress | None:
        """The request's progress, wherever it is (running, queued or recently done)."""
        candidates = [*([self.current] if self.current else []), *self.queued, *self.recent]
        return next((p for p in candidates if p.request_id == request_id), None)


class InventoryCarry(BaseModel):
    """Everything the workflow carries over a continue-as-new."""

    pending: list[str] = Field(default_factory=list)
    pending_ids: list[str] = Field(default_factory=list)
    gather_from: datetime | None = None
    retry: list[str] = Field(default_factory=list)
    retry_ids: list[str] = Field(default_factory=list)
    retry_at: datetime | None = None
    watch_at: datetime | None = None
    cursor: datetime | None = None
    orders_cursor: datetime | None = None
    reservations: list[OrderReservation] = Field(default_factory=list)
    queue: list[RequestState] = Field(default_factory=list)
    recent: list[PushProgress] = Field(default_factory=list)
    totals: PushCounts = Field(default_factory=PushCounts)
    cycles: int = 0
    run: int = 0
    last_cycle: CycleRecord | None = None
    last_error: str = ""
    troubles: dict[str, datetime] = Field(
        default_factory=dict, description="failure kinds alerted and not cleared since"
    )
    echo_bases: dict[str, StockBase] = Field(default_factory=dict)
    forced: list[str] = Field(
        default_factory=list, description="pending SKUs that need a full cycle, never a skip"
    )
    unheld: dict[str, datetime] = Field(
        default_factory=dict, description="store orders read as not open: order id -> placed"
    )


class InventoryPushInput(BaseModel):
    pair: str
    request: PushRequest | None = Field(
        default=None, description="a push to queue at once when this input starts the run"
    )
    carry: InventoryCarry | None = None


# ---- activities ---------------------------------------------------------------------


class ErpIdsInput(BaseModel):
    pair: str
    erp_ids: list[str]


class StockReadInput(BaseModel):
    pair: str
    skus: list[str]


class StockChangesInput(BaseModel):
    pair: str
    since: datetime | None = None


class StockWriteInput(BaseModel):
    pair: str
    quantities: dict[str, int]


class OrderListingInput(BaseModel):
    pair: str
    since: datetime


class OrderListing(BaseModel):
    stamps: list[OrderStamp] = Field(default_factory=list)
    listed_at: datetime = Field(description="the worker's clock when the listing began")


class ReservationsInput(BaseModel):
    pair: str
    order_ids: list[str]


class LinkedOrdersInput(BaseModel):
    pair: str
    order_ids: list[str]


class LinkedOrders(BaseModel):
    """Which of some store orders are linked to an ERP order, and the mark they were
    asked at: the highest order link id then (0 with none)."""

    linked: list[str] = Field(default_factory=list)
    mark: int = 0


class LinkedSinceInput(BaseModel):
    pair: str
    mark: int
    skus: list[str] = Field(description="only orders taking one of these are answered")


class LinkedSince(BaseModel):
    """The orders linked after a mark that take one of some SKUs (or whose quantities are
    unknown), oldest first; the mark now; and from which mark on the answer is whole."""

    orders: list[LinkedOrder] = Field(default_factory=list)
    mark: int = Field(description="the highest order link id now")
    whole_after: int = Field(
        description="every such order linked after this mark is answered: the asked mark,"
        " or a later one when more were linked since than one answer looks at"
    )


class StockRejection(BaseModel):
    sku: str
    quantity: int
    error: str


class StockRejections(BaseModel):
    pair: str
    store: str
    rejections: list[StockRejection]


class LandedSkus(BaseModel):
    """SKUs a push wrote (or found right) in the store: their dead letters are resolved."""

    pair: str
    skus: list[str]


class PushSignalInput(BaseModel):
    pair: str
    request: PushRequest
