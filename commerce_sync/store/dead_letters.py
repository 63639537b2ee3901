"""Dead letters: failed items kept with payload, error and attempts; never deleted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

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
    with session_scope(engine) as session:
        return resolve_dead_letters_in(session, business_key, note)


def resolve_dead_letters_in(session: Session, business_key: str, note: str) -> int:
    """`resolve_dead_letters` within the caller's transaction."""
    letters = session.exec(
        select(DeadLetter).where(
            DeadLetter.business_key == business_key,
            DeadLetter.status != DeadLetterStatus.RESOLVED,
        )
    ).all()
    _mark_resolved(session, letters, note)
    return len(letters)


def _mark_resolved(session: Session, letters: Sequence[DeadLetter], note: str) -> None:
    now = utc_now()
    for letter in letters:
        letter.status = DeadLetterStatus.RESOLVED
        letter.resolved_at = letter.updated_at = now
        letter.history = [
            *letter.history,
            {"at": now.isoformat(), "event": "resolved", "note": note},
        ]
        session.add(letter)


def open_dead_letters(engine: Engine, business_key: str | None = None) -> list[DeadLetter]:
    with session_scope(engine) as session:
        statement = select(DeadLetter).where(DeadLetter.status == DeadLetterStatus.OPEN)
        if business_key is not None:
            statement = statement.where(DeadLetter.business_key == business_key)
        return list(session.exec(statement.order_by(col(DeadLetter.id))).all())


def list_dead_letters(
    engine: Engine,
    *,
    pair: str | None = None,
    process: str | None = None,
    reason: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[DeadLetter], int]:
    """One page of letters, newest first, and how many match the filters in all."""
    conditions = [
        column == value
        for column, value in (
            (DeadLetter.pair, pair),
            (DeadLetter.process, process),
            (DeadLetter.reason, reason),
            (DeadLetter.status, status),
        )
        if value is not None
    ]
    with session_scope(engine) as session:
        total = session.exec(select(func.count()).select_from(DeadLetter).where(*conditions)).one()
        page = session.exec(
            select(DeadLetter)
            .where(*conditions)
            .order_by(col(DeadLetter.id).desc())
            .offset(offset)
            .limit(limit)
        ).all()
        return list(page), int(total)


def get_dead_letter(engine: Engine, letter_id: int) -> DeadLetter | None:
    with session_scope(engine) as session:
        return session.get(DeadLetter, letter_id)


def note_replay(engine: Engine, letter_id: int, entry: dict[str, Any]) -> DeadLetter:
    """Mark the letter replayed and add `entry` (who, the new run, ...) to its history.

    A letter the fresh run has resolved already keeps its status; the replay still goes
    into its history. Raises KeyError when there is no such letter. The row is locked
    while it changes (on Postgres), so two replays at once both land in the history."""
    now = utc_now()
    with session_scope(engine) as session:
        letter = session.exec(
            select(DeadLetter).where(DeadLetter.id == letter_id).with_for_update()
        ).first()
        if letter is None:
            raise KeyError(letter_id)
        if letter.status != DeadLetterStatus.RESOLVED:
            letter.status = DeadLetterStatus.REPLAYED
        letter.updated_at = now
        letter.history = [*letter.history, {"at": now.isoformat(), "event": "replayed", **entry}]
        session.add(letter)
        session.flush()
        session.refresh(letter)
        return letter


# ---- inventory: one business key per SKU ---------------------------------------------------


def inventory_letter_key(pair: str, sku: str) -> str:
    """The business key of an inventory letter: the SKU on the pair, not the pair's push
    run (`inventory:{pair}`), so a later push that lands the SKU resolves just its letters.
    Letters recorded before carried the run's id; they are matched by their payload's SKU."""
    return f"inventory:{pair}:{sku}"


def _unresolved_inventory_letters(
    session: Session, pair: str, skus: list[str] | None
) -> list[DeadLetter]:
    legacy = f"inventory:{pair}"
    statement = select(DeadLetter).where(
        DeadLetter.process == "inventory",
        DeadLetter.pair == pair,
        DeadLetter.status != DeadLetterStatus.RESOLVED,
    )
    if skus is None:
        return list(session.exec(statement).all())
    letters: list[DeadLetter] = []
    wanted = set(skus)
    keys = [inventory_letter_key(pair, sku) for sku in dict.fromkeys(skus)]
    for start in range(0, len(keys), 400):
        chunk = keys[start : start + 400] + ([legacy] if start == 0 else [])
        found = session.exec(statement.where(col(DeadLetter.business_key).in_(chunk))).all()
        letters.extend(each for each in found if each.payload.get("sku") in wanted)
    return letters


def unresolved_inventory_skus(engine: Engine, pair: str) -> list[str]:
    """The SKUs of the pair with an open or replayed inventory letter, sorted."""
    with session_scope(engine) as session:
        letters = _unresolved_inventory_letters(session, pair, None)
        return sorted({str(each.payload.get("sku")) for each in letters if each.payload.get("sku")})


def resolve_inventory_letters(engine: Engine, pair: str, skus: list[str], note: str) -> int:
    """Resolve the open or replayed letters of these SKUs (a push wrote them); idempotent."""
    with session_scope(engine) as session:
        letters = _unresolved_inventory_letters(session, pair, skus)
        _mark_resolved(session, letters, note)
        return len(letters)
