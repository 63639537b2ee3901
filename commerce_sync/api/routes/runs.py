"""The run list: `GET /runs`, from Temporal visibility, filtered and paged (see run_list.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from commerce_sync.api.deps import SettingsDep, TemporalDep
from commerce_sync.api.security import ReadKey
from commerce_sync.commands.run_list import (
    ALL_STATES,
    MAX_LIMIT,
    WORKFLOW_TYPES,
    RunFilterError,
    RunFilters,
    RunPage,
    TemporalUnanswered,
    list_page,
)
from commerce_sync.config.pairs import PairConfig

router = APIRouter(prefix="/runs", tags=["runs"])


def _unprocessable(error: RunFilterError) -> HTTPException:
    detail: list[dict[str, Any]] = [
        {"loc": ["query", error.field], "msg": error.reason, "type": "value_error"}
    ]
    return HTTPException(status_code=422, detail=detail)


@router.get(
    "",
    response_model=RunPage,
    responses={503: {"description": "Temporal cannot answer now"}},
)
async def list_runs(
    request: Request,
    client: TemporalDep,
    settings: SettingsDep,
    _: ReadKey,
    process: Annotated[
        str | None,
        Query(description="the process", json_schema_extra={"enum": list(WORKFLOW_TYPES)}),
    ] = None,
    state: Annotated[
        str | None,
        Query(
            description="the SyncState the run is in (one of the process's states)",
            json_schema_extra={"enum": list(ALL_STATES)},
        ),
    ] = None,
    pair: Annotated[str | None, Query(description="a configured integration pair")] = None,
    running: Annotated[
        bool | None, Query(description="true: running runs only; false: closed runs only")
    ] = None,
    task_queue: Annotated[
        str | None, Query(description="runs started on this workflow task queue")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="runs per page")] = 50,
    page_token: Annotated[
        str | None, Query(description="the `next_page_token` of the page before")
    ] = None,
) -> RunPage:
    """Runs newest first with their process, pair, state and Temporal status, one page at a
    time: follow `next_page_token` (with the same filters) until it is null."""
    pairs: dict[str, PairConfig] = request.app.state.pairs
    filters = RunFilters(
        process=process, state=state, pair=pair, running=running, task_queue=task_queue
    )
    try:
        filters.check(pairs)
        return await list_page(client, settings, filters, limit=limit, page_token=page_token)
    except RunFilterError as error:
        raise _unprocessable(error) from None
    except TemporalUnanswered as exc:
        raise HTTPException(status_code=503, detail=f"Temporal: {exc}") from None
