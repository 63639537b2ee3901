"""Input of the ERP event router: what an ERP webhook said changed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErpEventInput(BaseModel):
    erp: Literal["brightpearl", "acumatica"]
    kind: Literal["shipment"]
    pairs: list[str]
    ids: list[str] = Field(default_factory=list, description="resource ids the event names")
    rows: list[dict[str, Any]] = Field(default_factory=list, description="rows the event carried")
