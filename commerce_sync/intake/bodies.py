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


class BrightpearlEvent(BaseModel):
    """Brightpearl's documented webhook template body."""

    model_config = ConfigDict(extra="allow")

    accountCode: str
    resourceType: str
    id: str = Field(min_length=1, description="a resource id or an ID set such as 12-15,18")
    lifecycleEvent: str
    fullEvent: str = ""
    raisedOn: str = ""


class AcumaticaPush(BaseModel):
    """An Acumatica push notification: rows inserted and deleted from a query's result."""

    model_config = ConfigDict(extra="allow")

    Inserted: list[dict[str, Any]] = Field(default_factory=list)
    Deleted: list[dict[str, Any]] = Field(default_factory=list)
    Query: str = Field(min_length=1)
    CompanyId: str = ""
    Id: str = Field(min_length=1)
    TimeStamp: int
