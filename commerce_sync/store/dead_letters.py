"""Dead letters: failed items kept with payload, error and attempts; never deleted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from commerce_sync.domain.models import utc_now
from commerce_sync.store.db import session_scope
from commerce_sync.store.models import DeadLetter, DeadLetterStatus


def record_dead_letter(
    engine: Engine,
    *,
    pair: str,
    process: str,
    business_key: str,
    reason: str,
    error: str,
    payload: dict[str, Any],
    attempts: int = 1,
    dedupe_key: str | None = None,
) -> int:
    """Store a dead letter; with a `dedupe_key`, repeating the call returns the same letter."""
    now = utc_now()
    try:
        with session_scope(engine) as session:
            letter = DeadLetter(
                dedupe_key=dedupe_key,
                pair=pair,
                process=process,
                business_key=business_key,
                reason=reason,
                error=error,
                payload=payload,
                attempts=attempts,
                history=[{"at": now.isoformat(), "event": "created", "reason": reason}],
            )
            session.add(letter)
            session.flush()
            assert letter.id is not None
            return letter.id
    except IntegrityError:
        with session_scope(engine) as session:
            existing = session.exec(
                select(DeadLetter).where(DeadLetter.dedupe_key == dedupe_key)
            ).one()
            assert existing.id is not None
            return existing.id


def resolve_dead_letters(engine: Engine, business_key: str, note: str) -> int:
    """Mark every open letter of `business_key` resolved (a later run succeeded)."""
    now = utc_now()
    with session_scope(engine) as session:
        letters = session.exec(
            select(DeadLetter).where(
                DeadLetter.business_key == business_key,
                DeadLetter.status != DeadLetterStatus.RESOLVED,
            )
        ).all()
        for letter in letters:
            letter.status = DeadLetterStatus.RESOLVED
            letter.resolved_at = letter.updated_at = now
            letter.history = [
                *letter.history,
                {"at": now.isoformat(), "event": "resolved", "note": note},
            ]
            session.add(letter)
        return len(letters)


def open_dead_letters(engine: Engine, business_key: str | None = None) -> list[DeadLetter]:
    with session_scope(engine) as session:
        statement = select(DeadLetter).where(DeadLetter.status == DeadLetterStatus.OPEN)
        if business_key is not None:
            statement = statement.where(DeadLetter.business_key == business_key)
        return list(session.exec(statement.order_by(col(DeadLetter.id))).all())
