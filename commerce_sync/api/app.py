"""The FastAPI application: lifespan opens the database and the Temporal connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial

from fastapi import FastAPI
from sqlalchemy import Engine

from commerce_sync import __version__
from commerce_sync.api.routes import customers as customer_routes
from commerce_sync.api.routes import dead_letters, health, inventory, orders, webhooks
from commerce_sync.api.routes import feeds as feed_routes
from commerce_sync.api.routes import returns as returns_routes
from commerce_sync.api.routes import runs as run_routes
from commerce_sync.api.routes.codec import install_codec_server
from commerce_sync.api.routes.docs import install_docs
from commerce_sync.api.routes.metrics import install_observability
from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import Settings, get_settings
from commerce_sync.intake.links import DatabaseLink, TemporalLink
from commerce_sync.intake.relay import RelayBell, run_relay
from commerce_sync.ops.access_log import install_access_log_redaction
from commerce_sync.ops.alerts import Notifier
from commerce_sync.ops.codec import payload_codec
from commerce_sync.ops.redaction import install_log_redaction
from commerce_sync.ops.temporal_client import connect
from commerce_sync.store.db import make_engine
from commerce_sync.store.retention import ORDERS_SEEN_FOR, orders_seen_kept_for, prune

log = logging.getLogger(__name__)


async def run_pruner(
    engine: Engine,
    retention: timedelta,
    every_s: float = 3600.0,
    *,
    orders_seen_for: timedelta = ORDERS_SEEN_FOR,
) -> None:
    """Let go of what is past the retention, at start and then hourly (every API process
    does; the deletes are the same whoever runs them)."""
    while True:
        try:
            removed = await asyncio.to_thread(
                partial(prune, engine, retention, orders_seen_for=orders_seen_for)
            )
            if any(removed.values()):
                log.info("retention: removed %s", removed)
        except Exception:  # the database may be away for a while; try again next round
            log.exception("retention round failed")
        await asyncio.sleep(every_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    pairs = load_pairs(settings.pairs_file)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url)
        database = DatabaseLink(engine)
        temporal = TemporalLink(lambda: connect(settings))
        await asyncio.gather(database.start(wait_s=5.0), temporal.start(wait_s=3.0))
        app.state.settings = settings
        app.state.pairs = pairs
        app.state.engine = engine
        app.state.database = database
        app.state.temporal = temporal
        app.state.relay_bell = bell = RelayBell()
        notifier = Notifier(settings.alerts.urls)
        relay = asyncio.create_task(
            run_relay(engine, temporal, pairs, settings.task_queue, notifier=notifier, bell=bell)
        )
        pruner = asyncio.create_task(
            run_pruner(
                engine,
                timedelta(days=settings.retention_days),
                orders_seen_for=orders_seen_kept_for(pair.anomalies for pair in pairs.values()),
            )
        )
        try:
            yield
        finally:
            for task in (relay, pruner):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.gather(temporal.stop(), database.stop())
            engine.dispose()

    app = FastAPI(
        title="commerce-sync",
        version=__version__,
        description=(
            "Signed webhooks in, workflow starts and signals out; status, approvals, dead letters."
        ),
        lifespan=lifespan,
        # Served from local assets (routes/docs.py); ReDoc would load its script from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    app.include_router(health.router)
    app.include_router(webhooks.router)
    app.include_router(orders.router)
    app.include_router(returns_routes.router)
    app.include_router(inventory.router)
    app.include_router(dead_letters.router)
    app.include_router(customer_routes.router)
    app.include_router(run_routes.router)
    app.include_router(feed_routes.router)
    install_observability(app, settings)
    install_codec_server(app, settings, payload_codec(settings))
    install_log_redaction()
    install_access_log_redaction()
    return app
