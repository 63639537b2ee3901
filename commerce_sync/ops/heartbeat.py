"""Heartbeats for every activity while it runs, so Temporal notices a dead worker quickly.

Without heartbeats the server only learns that a worker died in the middle of an activity
at the activity's start-to-close timeout (60 s for a step), and only then retries it on
another worker. An activity scheduled with a `heartbeat_timeout` is retried that long
after its worker's last heartbeat instead. The activities themselves do not heartbeat:
this worker interceptor does, from the worker's event loop, for as long as the activity
runs, a third of its heartbeat timeout apart. An activity scheduled without a heartbeat
timeout gets no regular beats (nobody would check them).

Both kinds of activity are covered, because the interceptor always runs on the event loop:
- async activities (the outside systems' calls, through httpx) run on that loop too: one
  that blocked the loop would starve its own heartbeats; none does;
- sync activities (the database, in the worker's thread pool) are awaited on the loop
  while a thread runs them. The beat goes through the outbound interceptor's `heartbeat`,
  which is safe on the loop; `activity.heartbeat()` is not used: for a sync activity the
  SDK swaps it for a thread-to-loop bridge that would block the loop if called from it.

A heartbeat says the worker is alive, not that the call is getting anywhere: a call that
hangs on a live worker is still stopped by its start-to-close timeout, as before.

Heartbeats also carry what an attempt made on the way (`remember(key, value)`, read back
with `remembered(key)`; `HEARTBEAT_MEMORY` is the same as `systems/attempts.py`'s
`AttemptMemory` for the connectors): Temporal keeps an activity's last heartbeat details
and hands them to its next attempt (`activity.info().heartbeat_details`), so a retry can
reuse what an earlier attempt made instead of making it again. Each activity execution
holds its record (a `dict[str, str]`, started from the details its attempt was handed)
in a context variable set by this interceptor; `remember` adds to it and beats it at
once, and the regular beats resend it, so they never overwrite a record with nothing.
The SDK throttles heartbeats (the first at once, then one per 0.8 x the heartbeat
timeout, the newest kept) and sends the newest details with an attempt's failure, so a
failed attempt's record reaches its retry; a worker that dies loses what it had not sent.
Sync activities may `remember` too (from their thread: the beat is handed to the loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

BEATS_PER_TIMEOUT = 3
"""Heartbeats sent per heartbeat timeout: one lost or throttled beat is not a timeout."""


class HeartbeatInterceptor(Interceptor):
    """Install on every worker (`interceptors=[...]`): its activities heartbeat by themselves."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _HeartbeatInbound(next)


class _Progress:
    """What one activity execution has recorded, and how to beat it (on the worker's loop)."""

    def __init__(
        self,
        outbound: ActivityOutboundInterceptor,
        recorded: dict[str, str],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.outbound = outbound
        self.recorded = recorded
        self.loop = loop

    def details(self) -> tuple[Any, ...]:
        """The heartbeat details: the record, or none before anything was recorded."""
        recorded = self.recorded
        return (dict(recorded),) if recorded else ()

    def record(self, key: str, value: str) -> None:
        # A new dict, not a change in place: a beat reading the old one meanwhile (from
        # the loop, when a sync activity records from its thread) sees a whole record.
        self.recorded = {**self.recorded, key: value}
        self.beat()

    def beat(self) -> None:
        details = self.details()
        try:
            on_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self.outbound.heartbeat(*details)
        else:
            self.loop.call_soon_threadsafe(lambda: self.outbound.heartbeat(*details))


_progress: ContextVar[_Progress | None] = ContextVar("commerce_sync_attempt_progress", default=None)


def _handed_down(details: Sequence[Any]) -> dict[str, str]:
    """The record in the details an attempt was handed (the first detail, a mapping)."""
    first = details[0] if details else None
    if not isinstance(first, Mapping):
        return {}
    return {str(key): str(value) for key, value in first.items() if value is not None}


def remembered(key: str) -> str | None:
    """What this activity's attempts recorded under `key` so far (None outside an activity
    run by a worker with the interceptor)."""
    progress = _progress.get()
    return None if progress is None else progress.recorded.get(key)


def remember(key: str, value: str) -> None:
    """Record `value` under `key` for this attempt and its retries, and heartbeat it now.
    Outside an activity run by a worker with the interceptor there is nowhere to keep it."""
    progress = _progress.get()
    if progress is not None:
        progress.record(key, value)


class HeartbeatMemory:
    """`systems/attempts.py`'s `AttemptMemory` over the running activity's heartbeats."""

    def get(self, key: str) -> str | None:
        return remembered(key)

    def put(self, key: str, value: str) -> None:
        remember(key, value)


HEARTBEAT_MEMORY = HeartbeatMemory()


class _HeartbeatInbound(ActivityInboundInterceptor):
    _outbound: ActivityOutboundInterceptor | None = None

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        self._outbound = outbound
        super().init(outbound)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        outbound = self._outbound
        if outbound is None:
            return await super().execute_activity(input)
        info = outbound.info()
        progress = _Progress(
            outbound, _handed_down(info.heartbeat_details), asyncio.get_running_loop()
        )
        # Each activity runs in its own task (a sync one in a copy of its context), so the
        # variable is this execution's alone.
        token = _progress.set(progress)
        beating = (
            asyncio.create_task(
                _beat(progress, info.heartbeat_timeout.total_seconds() / BEATS_PER_TIMEOUT),
                name=f"heartbeat {info.activity_type}",
            )
            if info.heartbeat_timeout
            else None
        )
        try:
            return await super().execute_activity(input)
        finally:
            # Cancelled at its sleep: no heartbeat goes out once the activity is over.
            if beating is not None:
                beating.cancel()
            _progress.reset(token)


async def _beat(progress: _Progress, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        progress.beat()
