"""Times read back from the app database.

Every time is written in UTC, but SQLite hands timestamps back without their zone (a
naive datetime) where Postgres keeps it: what is read is made aware, in UTC, here.
"""

from __future__ import annotations

from datetime import UTC, datetime


def stored_utc(value: datetime) -> datetime:
    """A stored time, aware and in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def stored_utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else stored_utc(value)
