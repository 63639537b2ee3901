"""A run for a store order that does not exist fails at its first read like any other
failure: a dead letter naming the order id, an alert, and the run dead-lettered."""

from __future__ import annotations

import uuid

import pytest

from commerce_sync.intake.missing_runs import Outcome, start_missing_order
from tests.integration.orders.order_stack import PAIRS, Stack
from tests.integration.orders.sandbox_views import alerts, dead_letters


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_run_for_a_missing_store_order_is_dead_lettered_and_alerted(
    stack: Stack, pair: str
) -> None:
    missing = str(900_000_000 + uuid.uuid4().int % 10**8)
    outcome = await start_missing_order(stack.client, pair, missing, stack.settings.task_queue)
    assert outcome is Outcome.STARTED
    status = await stack.wait_state(pair, missing, "dead_lettered", run_status="FAILED")
    assert status["status"]["error"]

    workflow_id = f"order:{pair}:{missing}"
    letters = dead_letters(stack, workflow_id)
    assert [(letter.process, letter.payload) for letter in letters] == [
        ("order", {"pair": pair, "store_order_id": missing})
    ]
    assert [alert.kind for alert in alerts(stack, workflow_id)] == ["order_failed"]
