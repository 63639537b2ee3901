"""Inbound webhook bodies (docs/project-contracts.md §1), validated before anything starts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

StoreEventType = Literal[
    "order.created",
    "order.updated",
    "order.cancelled",
    "return.requested",
    "customer.created",
    "customer.updated",
]


class StoreEventData(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=200)
    store: Literal["kentico", "xcart"]


class StoreEvent(BaseModel):
    """A thin store event: ids, not records (the workflow reads the record itself)."""

    model_config = ConfigDict(extra="allow")

    type: StoreEventType
    timestamp: datetime
    data: StoreEventData


MAX_IDS = 1_000
"""The most ids one Brightpearl ID set may name: each becomes part of a workflow input or a
run of its own, so `1-300000` must be refused up front, not expanded."""


class BrightpearlEvent(BaseModel):
    """Brightpearl's documented webhook template body."""

    model_config = ConfigDict(extra="allow")

    accountCode: str = Field(max_length=100)
    resourceType: str = Field(max_length=100)
    id: str = Field(
        min_length=1,
        max_length=10_000,
        description="a resource id or an ID set such as 12-15,18 (at most MAX_IDS ids)",
    )
    lifecycleEvent: str = Field(max_length=100)
    fullEvent: str = Field(default="", max_length=200)
    raisedOn: str = Field(default="", max_length=100)


class AcumaticaPush(BaseModel):
    """An Acumatica push notification: rows inserted and deleted from a query's result."""

    model_config = ConfigDict(extra="allow")

    Inserted: list[dict[str, Any]] = Field(default_factory=list)
    Deleted: list[dict[str, Any]] = Field(default_factory=list)
    Query: str = Field(min_length=1, max_length=100)
    CompanyId: str = Field(default="", max_length=100)
    # A GUID in practice; it becomes part of the event key and of workflow ids.
    Id: str = Field(min_length=1, max_length=100)
    TimeStamp: int = Field(ge=0, le=2**63 - 1)


WebhookBody = StoreEvent | BrightpearlEvent | AcumaticaPush
"""A validated inbound body, of whichever source."""
