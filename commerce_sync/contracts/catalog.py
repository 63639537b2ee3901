"""Messages of catalog sync: the workflow's input, signal and status, the ERP product
event router's input, and the inputs and outputs of the catalog activities.

Plain pydantic models (no I/O), so workflows, activities and the API share them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from commerce_sync.domain.models import Product


class CatalogState(StrEnum):
    STARTED = "started"
    SYNCING = "syncing"
    SYNCED = "synced"
    SKIPPED = "skipped"
    """The ERP has no product with this SKU (any more): nothing to do in the store."""
    COMPENSATING = "compensating"
    FAILED = "failed"
    """A step failed for good after a store write; what this run created was removed."""
    DEAD_LETTERED = "dead_lettered"
    """The ERP product cannot go to the store as it is (e.g. a price in another currency)."""


class CatalogAction(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class CatalogSyncInput(BaseModel):
    pair: str
    sku: str = Field(min_length=1)
    erp_product_id: str = Field(default="", description="the ERP's id, when a webhook named it")
    trigger: str = "webhook"


class ProductChanged(BaseModel):
    """Signal `product_changed`: the ERP product changed (again); read it and sync."""

    trigger: str = "webhook"
    erp_product_id: str = ""
    erp_event_id: str = ""


class CatalogStep(BaseModel):
    name: str
    at: datetime
    outcome: str
    detail: str = ""


class CatalogSyncStatus(BaseModel):
    """The answer of the `status` query."""

    pair: str
    sku: str
    state: CatalogState
    erp_product_id: str = ""
    store_product_id: str = ""
    action: CatalogAction | None = None
    created_by_this_run: bool = False
    passes: int = 0
    """How many times this run read the ERP product (a change during a pass adds one)."""
    steps: list[CatalogStep] = Field(default_factory=list)
    compensations: list[CatalogStep] = Field(default_factory=list)
    error: str = ""


class CatalogEventInput(BaseModel):
    """What an ERP product webhook named, for the router that finds the SKUs."""

    erp: Literal["brightpearl", "acumatica"]
    pairs: list[str]
    product_ids: list[str]


# ---- activity inputs and outputs --------------------------------------------------------


class ErpProductRef(BaseModel):
    pair: str
    sku: str
    erp_product_id: str = ""


class ErpProductIds(BaseModel):
    pair: str
    product_ids: list[str]


class StoreProductRef(BaseModel):
    pair: str
    sku: str


class StoreProductWrite(BaseModel):
    pair: str
    product: Product
    product_id: str = Field(default="", description="the store's id; empty to create")


class StoreProductCreated(BaseModel):
    product_id: str
    created: bool
    """False when the SKU was already in the store on the first attempt (someone else's)."""


class StoreProductTwinCheck(BaseModel):
    """The product a catalog run created (`keep`), for the look for a twin that a lost
    answer made under the same SKU."""

    pair: str
    sku: str
    keep: str


class StoreProductRemoval(BaseModel):
    """Undo a create: by the store id when known, else by the SKU (a create whose answer
    was lost)."""

    pair: str
    sku: str
    product_id: str = ""


class CatalogStart(BaseModel):
    pair: str
    sku: str
    erp_product_id: str = ""
    trigger: str = "webhook"
    erp_event_id: str = ""


class CatalogStarts(BaseModel):
    starts: list[CatalogStart]
