"""Heartbeats for every activity while it runs, so Temporal notices a dead worker quickly.

Without heartbeats the server only learns that a worker died in the middle of an activity
at the activity's start-to-close timeout (60 s for a step), and only then retries it on
another worker. An activity scheduled with a `heartbeat_timeout` is retried that long
after its worker's last heartbeat instead. The activities themselves do not heartbeat:
this worker interceptor does, from the worker's event loop, for as long as the activity
runs, a third of its heartbeat timeout apart. An activity scheduled without a heartbeat
timeout is left alone (nobody would check its heartbeats).

Both kinds of activity are covered, because the interceptor always runs on the event loop:
- async activities (the outside systems' calls, through httpx) run on that loop too: one
  that blocked the loop would starve its own heartbeats; none does;
- sync activities (the database, in the worker's thread pool) are awaited on the loop
  while a thread runs them. The beat goes through the outbound interceptor's `heartbeat`,
  which is safe on the loop; `activity.heartbeat()` is not used: for a sync activity the
  SDK swaps it for a thread-to-loop bridge that would block the loop if called from it.

A heartbeat says the worker is alive, not that the call is getting anywhere: a call that
hangs on a live worker is still stopped by its start-to-close timeout, as before.
"""

from __future__ import annotations

import asyncio
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


class _HeartbeatInbound(ActivityInboundInterceptor):
    _outbound: ActivityOutboundInterceptor | None = None

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        self._outbound = outbound
        super().init(outbound)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        outbound = self._outbound
        timeout = outbound.info().heartbeat_timeout if outbound is not None else None
        if outbound is None or not timeout:
            return await super().execute_activity(input)
        beating = asyncio.create_task(
            _beat(outbound, timeout.total_seconds() / BEATS_PER_TIMEOUT),
            name=f"heartbeat {outbound.info().activity_type}",
        )
        try:
            return await super().execute_activity(input)
        finally:
            # Cancelled at its sleep: no heartbeat goes out once the activity is over.
            beating.cancel()


async def _beat(outbound: ActivityOutboundInterceptor, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        outbound.heartbeat()
