"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from commerce_sync.api.deps import DatabaseLinkDep, TemporalLinkDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is down"}})
async def readyz(database: DatabaseLinkDep, temporal: TemporalLinkDep) -> JSONResponse:
    """Ready when Temporal and the database answer; a 503 names what is down."""
    (temporal_ok, temporal_detail), (db_ok, db_detail) = await asyncio.gather(
        temporal.healthy(), database.healthy()
    )
    checks = {
        "temporal": {"ok": temporal_ok, "detail": temporal_detail},
        "database": {"ok": db_ok, "detail": db_detail},
    }
    down = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "ready" if not down else "unavailable", "down": down, "checks": checks}
    return JSONResponse(body, status_code=200 if not down else 503)
