"""Activities that read and write the application database (the workflow task queue)."""

from __future__ import annotations

from sqlalchemy import Engine
from temporalio import activity

from commerce_sync.activities.messages import LinkInput
from commerce_sync.store.links import upsert_link


class DatabaseActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name="db.record_link")
    def record_link(self, link: LinkInput) -> int:
        """Record (pair, kind, store id) <-> ERP id; repeating it changes nothing."""
        row = upsert_link(self._engine, link.pair, link.kind, link.store_id, link.erp_id)
        assert row.id is not None
        return row.id
