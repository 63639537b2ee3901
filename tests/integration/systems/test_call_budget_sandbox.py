"""Two worker processes' connectors (two `Ports` on one database) burst at the Brightpearl
sandbox, whose throttle counts as Brightpearl does (a rolling window, 503 when spent),
and are never throttled: the shared call budget keeps them under it together.

The window is 2 s instead of a minute (the sandbox's test-only `window_s`) so the burst
overruns two whole windows in seconds; the budget settings follow it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import BrightpearlSettings, Settings
from commerce_sync.store.db import make_engine, migrate
from commerce_sync.worker import Ports

WINDOW_S = 2.0
PER_WINDOW = 20
CALLS_PER_PROCESS = 24  # 48 together: more than twice what one window allows


async def test_a_burst_bigger_than_the_budget_is_never_throttled(
    settings: Settings, sandboxes: httpx.AsyncClient, tmp_path: Path
) -> None:
    throttle = {"requests_per_minute": PER_WINDOW, "window_s": WINDOW_S}
    (await sandboxes.post("/brightpearl/_sandbox/throttle", json=throttle)).raise_for_status()
    bp = BrightpearlSettings(
        base_url=settings.brightpearl.base_url,
        rate_per_second=PER_WINDOW / WINDOW_S,
        budget_window_s=WINDOW_S,
        burst=3,
        margin=2,
    )
    budgeted = settings.model_copy(update={"brightpearl": bp})
    engine = make_engine(f"sqlite:///{tmp_path / 'shared.db'}")
    migrate(engine)
    processes = [Ports(budgeted, engine=engine), Ports(budgeted, engine=engine)]
    pair = load_pairs(None)["kentico-brightpearl"]
    try:
        (await sandboxes.delete("/brightpearl/_sandbox/requests")).raise_for_status()
        await asyncio.gather(
            *(
                ports.erps["brightpearl"].find_customer_by_email(f"burst-{p}-{i}@example.com", pair)
                for p, ports in enumerate(processes)
                for i in range(CALLS_PER_PROCESS)
            )
        )
        log = (await sandboxes.get("/brightpearl/_sandbox/requests")).json()["requests"]
    finally:
        for ports in processes:
            await ports.aclose()
        engine.dispose()
        (await sandboxes.post("/brightpearl/_sandbox/reset")).raise_for_status()
    assert [r for r in log if r["status"] == 503] == []
    granted = sum(ports.budgets["brightpearl"].counts.granted for ports in processes)
    assert granted == len(log) >= 2 * CALLS_PER_PROCESS  # every request went through it
    assert all(ports.budgets["brightpearl"].counts.queued > 0 for ports in processes)
