"""Alerts raised, recorded for operators (notification channels send them on)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from commerce_sync.store.db import session_scope
from commerce_sync.store.models import Alert


def record_alert(engine: Engine, *, dedupe_key: str, kind: str, key: str, message: str) -> bool:
    """True when this alert is new; a retried activity records it once."""
    try:
        with session_scope(engine) as session:
            session.add(Alert(dedupe_key=dedupe_key, kind=kind, key=key, message=message))
    except IntegrityError:
        return False
    return True
