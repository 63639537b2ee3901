"""Inputs and outputs of activities: plain pydantic models that workflows may import."""

from __future__ import annotations

from pydantic import BaseModel


class LinkInput(BaseModel):
    pair: str
    kind: str
    store_id: str
    erp_id: str
