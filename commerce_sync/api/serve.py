"""`commerce-sync api`: the API served by `api_workers` processes on one port.

uvicorn's supervisor binds the port, starts the workers (each builds its own app, with
its own database engine, Temporal connection and relay), restarts one that dies and
stops them all on SIGTERM. A worker dies with the supervisor even when that is killed
outright (PR_SET_PDEATHSIG), so a restarted API never finds its port held by orphans.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from fastapi import FastAPI

from commerce_sync.config.settings import Settings

APP_FACTORY = "commerce_sync.api.serve:worker_app"
SUPERVISOR_PID = "COMMERCE_SYNC_API_SUPERVISOR_PID"
PR_SET_PDEATHSIG = 1
KEEP_ALIVE_S = 75
"""Longer than the senders' idle pools keep a connection (httpx: 5 s), so a sender
never writes to a connection the API is just closing."""

_settings: Settings | None = None
"""The settings `serve` was given, for a worker in the same process (one worker)."""


def _die_with_supervisor() -> None:
    """In a worker process: SIGTERM when the supervisor goes, and leave at once if it
    went before this could be set."""
    supervisor = os.environ.get(SUPERVISOR_PID)
    if supervisor is None or int(supervisor) == os.getpid() or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(supervisor):
        os._exit(0)


def worker_app() -> FastAPI:
    """The app of one worker (uvicorn calls this in each worker process)."""
    from commerce_sync.api.app import create_app
    from commerce_sync.ops.access_log import queue_access_log
    from commerce_sync.ops.codec import with_generated_keys

    _die_with_supervisor()
    settings = _settings or with_generated_keys(Settings())
    queue_access_log()  # uvicorn has set its loggers up by now
    return create_app(settings)


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    import uvicorn

    global _settings
    _settings = settings
    os.environ[SUPERVISOR_PID] = str(os.getpid())
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=settings.api_access_log,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
