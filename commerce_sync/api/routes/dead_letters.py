"""Dead letters: list and show what failed for good, and replay it (optionally edited).

Letters are never deleted: a replay adds to the letter's history and marks it
`replayed`; the fresh run that succeeds marks it `resolved`. Reading needs the `read`
scope, replaying the `operate` scope.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from commerce_sync.api.deps import EngineDep, SettingsDep, TemporalDep
from commerce_sync.api.security import OperateKey, ReadKey
from commerce_sync.commands.dead_letter_replay import ReplayError, replay_dead_letter
from commerce_sync.store.dead_letters import get_dead_letter, list_dead_letters
from commerce_sync.store.models import DeadLetter, LetterProcess
from commerce_sync.store.stamps import stored_utc

router = APIRouter(prefix="/dead-letters", tags=["dead letters"])

Status = Literal["open", "replayed", "resolved"]
MAX_PAGE = 200


# The spec promises RFC 3339 date-times (with an offset).
UtcDateTime = Annotated[datetime, AfterValidator(stored_utc)]
# Letter ids and offsets are 64-bit database integers: a larger one is a 422, not a 500.
DB_INT_MAX = 2**63 - 1
LetterId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="the letter's id")]


class DeadLetterView(BaseModel):
    id: int
    pair: str
    process: str
    business_key: str = Field(
        description="the workflow id of the failed run; inventory: `inventory:{pair}:{sku}`"
    )
    reason: str
    error: str
    payload: dict[str, Any]
    attempts: int
    status: str
    history: list[dict[str, Any]]
    created_at: UtcDateTime
    updated_at: UtcDateTime
    resolved_at: UtcDateTime | None

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterView:
        return cls.model_validate(letter.model_dump())


class DeadLetterPage(BaseModel):
    items: list[DeadLetterView]
    total: int = Field(description="letters matching the filters, on every page")
    limit: int
    offset: int
    next_offset: int | None = Field(description="the offset of the next page; null on the last")


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] | None = Field(
        default=None,
        description="the edited payload (see GET /dead-letters/{id}); the letter's own when left out",
    )
    by: str = Field(
        default="api", min_length=1, max_length=100, description="who replays (history)"
    )


@router.get("", response_model=DeadLetterPage)
async def list_letters(
    engine: EngineDep,
    _: ReadKey,
    pair: str | None = None,
    process: LetterProcess | None = None,
    reason: str | None = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
) -> DeadLetterPage:
    """Dead letters, newest first, filtered by pair, process, reason and status."""
    letters, total = await asyncio.to_thread(
        list_dead_letters,
        engine,
        pair=pair,
        process=process,
        reason=reason,
        status=status,
        limit=limit,
        offset=offset,
    )
    following = offset + len(letters)
    return DeadLetterPage(
        items=[DeadLetterView.of(letter) for letter in letters],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=following if following < total else None,
    )


@router.get("/{letter_id}", response_model=DeadLetterView, responses={404: {}})
async def show_letter(letter_id: LetterId, engine: EngineDep, _: ReadKey) -> DeadLetterView:
    """One letter with its payload, error, attempts and history."""
    letter = await asyncio.to_thread(get_dead_letter, engine, letter_id)
    if letter is None:
        raise HTTPException(status_code=404, detail=f"no dead letter {letter_id}")
    return DeadLetterView.of(letter)


@router.post(
    "/{letter_id}/replay",
    status_code=202,
    response_model=DeadLetterView,
    responses={
        404: {"description": "no such letter"},
        409: {"description": "the letter is resolved, or its run is still going"},
        422: {"description": "the edited payload is invalid; nothing was started"},
        503: {"description": "Temporal unreachable"},
    },
)
async def replay_letter(
    letter_id: LetterId,
    engine: EngineDep,
    client: TemporalDep,
    settings: SettingsDep,
    _: OperateKey,
    body: Annotated[ReplayBody | None, Body()] = None,
) -> DeadLetterView:
    """Start a fresh run for the letter (same workflow id), with the edited payload if
    given; the letter is resolved when that run succeeds."""
    request = body or ReplayBody()
    try:
        letter = await replay_dead_letter(
            engine,
            client,
            settings.task_queue,
            letter_id,
            edited=request.payload,
            by=request.by,
        )
    except ReplayError as exc:
        if exc.status == 422:
            detail: Any = [{**error, "loc": ["body", *error["loc"]]} for error in exc.errors]
        else:
            detail = exc.message
        raise HTTPException(status_code=exc.status, detail=detail) from None
    return DeadLetterView.of(letter)
