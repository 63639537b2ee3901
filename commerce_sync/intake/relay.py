"""The relay: starts recorded webhook events whose workflow start did not go through.

Runs inside every API process. Two relays picking the same event are harmless: the
start is idempotent on the workflow id.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import Engine

from commerce_sync.config.pairs import PairConfig
from commerce_sync.intake.dispatch import routes_for, start_recorded
from commerce_sync.intake.links import TemporalLink
from commerce_sync.store.events import events_to_relay

log = logging.getLogger(__name__)


async def relay_once(
    engine: Engine, temporal: TemporalLink, pairs: dict[str, PairConfig], task_queue: str
) -> int:
    """Start what is pending; returns how many events were started."""
    if temporal.client is None:
        return 0
    pending = await asyncio.to_thread(events_to_relay, engine, timedelta(seconds=5))
    started = 0
    for event in pending:
        routes = routes_for(event.source, event.payload["body"], event.event_id, pairs)
        if await start_recorded(engine, temporal, event, routes, task_queue):
            started += 1
            log.info("relayed %s event %s to %s", event.source, event.event_id, event.workflow_id)
    return started


async def run_relay(
    engine: Engine,
    temporal: TemporalLink,
    pairs: dict[str, PairConfig],
    task_queue: str,
    every_s: float = 2.0,
) -> None:
    while True:
        try:
            await relay_once(engine, temporal, pairs, task_queue)
        except Exception:  # never let the relay die; the next round tries again
            log.exception("relay round failed")
        await asyncio.sleep(every_s)
