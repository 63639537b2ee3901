"""What the probe tests of the call budget share (tests/integration/ops/test_budget_*.py):
attempts short enough that hand-backs come in seconds, a budget held until the test frees
it, and the wait for the hand-backs before it does."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import Engine, update

from commerce_sync.store.budgets import TABLE
from commerce_sync.systems.budget import DEADLINE_MARGIN_S, CallBudget
from tests.integration.orders.order_stack import eventually

ATTEMPT = timedelta(seconds=DEADLINE_MARGIN_S + 1)
"""Each attempt may wait one second for the budget before it hands its place back."""
HELD = time.time() + 10 * 365 * 24 * 3600  # until the test frees the budget itself


async def free_after_hand_backs(
    budget: CallBudget, engine: Engine, count: int, timeout_s: float = 60
) -> None:
    """Wait until `count` attempts handed their place back, then free the held budget."""

    async def handed_back() -> bool:
        return budget.counts.gave_up >= count

    await eventually(handed_back, timeout_s, f"{count} attempts to hand their place back")
    with engine.begin() as conn:
        conn.execute(update(TABLE).where(TABLE.c.system == budget.system).values(ready_at=0.0))
