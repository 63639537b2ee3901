"""The API's connections to Temporal and the database, which may come and go.

The API must accept webhooks while Temporal is down (they are recorded and relayed
later), so it starts without a client and keeps trying to connect in the background.
Likewise a database that is not up yet (a Postgres still starting) does not stop the
API from starting: `/readyz` says so until the migrations have been applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import Engine, text
from temporalio.client import Client

from commerce_sync.store.db import migrate

log = logging.getLogger(__name__)


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


class DatabaseLink:
    """Applies the migrations (retrying until they succeed) and checks the database."""

    def __init__(self, engine: Engine, retry_every_s: float = 2.0) -> None:
        self.engine = engine
        self._retry_every_s = retry_every_s
        self.migrated = False
        self.last_error = "not migrated yet"
        self._task: asyncio.Task[None] | None = None

    async def start(self, wait_s: float = 5.0) -> None:
        self._task = asyncio.create_task(self._keep_migrating())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), timeout=wait_s)

    async def _keep_migrating(self) -> None:
        while not self.migrated:
            try:
                await asyncio.to_thread(migrate, self.engine)
                self.migrated, self.last_error = True, ""
            except Exception as exc:  # keep trying; /readyz reports it
                self.last_error = _one_line(exc)
                log.warning("database not ready: %s", self.last_error)
                await asyncio.sleep(self._retry_every_s)

    def _select_one(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    async def healthy(self) -> tuple[bool, str]:
        if not self.migrated:
            return False, self.last_error
        try:
            await asyncio.wait_for(asyncio.to_thread(self._select_one), timeout=5.0)
        except Exception as exc:
            return False, _one_line(exc)
        return True, "ok"

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class TemporalLink:
    def __init__(
        self, connect: Callable[[], Awaitable[Client]], retry_every_s: float = 2.0
    ) -> None:
        self._connect = connect
        self._retry_every_s = retry_every_s
        self.client: Client | None = None
        self.last_error: str = "not connected yet"
        self._task: asyncio.Task[None] | None = None

    async def start(self, wait_s: float = 5.0) -> None:
        """Try to connect for up to `wait_s`, then go on connecting in the background."""
        self._task = asyncio.create_task(self._keep_connecting())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), timeout=wait_s)

    async def _keep_connecting(self) -> None:
        while self.client is None:
            try:
                self.client = await self._connect()
                self.last_error = ""
                log.info("connected to Temporal")
            except Exception as exc:  # any failure: keep trying, report it on /readyz
                self.last_error = _one_line(exc)
                await asyncio.sleep(self._retry_every_s)

    async def healthy(self) -> tuple[bool, str]:
        if self.client is None:
            return False, self.last_error
        try:
            await asyncio.wait_for(self.client.service_client.check_health(), timeout=3.0)
        except Exception as exc:
            return False, _one_line(exc)
        return True, "ok"

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
