"""Every outside system's connector, each drawing on its system's shared call budget:
the worker's `Ports` are these, and so are the connectors of the commands that call the
systems themselves (`resync orders`, `resync catalog`, `check`).

A command run from the CLI is one more process of the deployment: its calls count
against the same budgets as the workers' (`systems/budget.py`, kept in the app
database), so a resync listing or a check cannot push a system past its budget while the
workers are busy. Outside an activity a call has the default priority and is a newcomer
(no run): it waits behind the runs already waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import Engine

from commerce_sync.config.settings import CallBudgetSettings, Settings
from commerce_sync.ops.metrics import API_BUDGET, BUDGETS, api_call_counter
from commerce_sync.store.budgets import BucketShape, SharedBucket
from commerce_sync.store.db import make_engine, migrate
from commerce_sync.systems.budget import CallBudget
from commerce_sync.systems.ports import ErpPort, StorePort
from commerce_sync.systems.registry import ERPS, STORES, create_erp_port, create_store_port


def system_budgets(settings: Settings) -> dict[str, CallBudgetSettings]:
    """Each system's API budget in calls, shared by every process of the deployment."""
    return {
        "kentico": settings.kentico,
        "xcart": settings.xcart,
        "brightpearl": settings.brightpearl,
        "acumatica": settings.acumatica,
    }


class Connectors:
    """One pooled connector per outside system for the whole process.

    Every request a connector sends waits for its system's call budget kept in the
    `engine`'s database (`systems/budget.py`), shared with every other process of the
    deployment. The engine is required: nothing builds its connectors past the budget a
    deployment runs with.
    """

    def __init__(self, settings: Settings, *, engine: Engine) -> None:
        self.stores: dict[str, StorePort] = {s: create_store_port(s, settings) for s in STORES}
        self.erps: dict[str, ErpPort] = {s: create_erp_port(s, settings) for s in ERPS}
        self.budgets: dict[str, CallBudget] = {}
        self._engine = engine
        # Every answer counted per system and outcome, against each system's budget.
        ports: dict[str, StorePort | ErpPort] = {**self.stores, **self.erps}
        budgets = system_budgets(settings)
        for system, port in ports.items():
            shape = BucketShape(budgets[system].call_interval_s, budgets[system].burst)
            budget = CallBudget(system, SharedBucket(engine, system, shape))
            port.observe_requests(budget.before_request)
            port.observe_responses(budget.after_response)
            self.budgets[system] = budget
            BUDGETS.watch(system, budget.counts)
            port.observe_responses(api_call_counter(system))
        for system, budget_settings in budgets.items():
            API_BUDGET.labels(system=system).set(budget_settings.rate_per_second)

    async def aclose(self) -> None:
        for budget in self.budgets.values():
            await budget.aclose()
        for store in self.stores.values():
            await store.aclose()
        for erp in self.erps.values():
            await erp.aclose()


def _open(settings: Settings) -> tuple[Engine, Connectors]:
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate(engine)  # idempotent: the budgets' tables, should no worker have run yet
        return engine, Connectors(settings, engine=engine)
    except BaseException:
        engine.dispose()
        raise


@contextlib.asynccontextmanager
async def budgeted_connectors(settings: Settings) -> AsyncIterator[Connectors]:
    """A command's connectors, on the deployment's app database (`DATABASE_URL`) and so
    its call budgets, built as the worker builds its own."""
    engine, connectors = await asyncio.to_thread(_open, settings)
    try:
        yield connectors
    finally:
        await connectors.aclose()
        engine.dispose()
