"""The recorded return histories (tests/histories/record_returns.py) that
tests/unit/test_replay.py replays cover every end state of both pairs."""

from __future__ import annotations

from pathlib import Path

from tests.integration.orders.order_stack import PAIRS

HISTORIES = Path(__file__).parents[2] / "histories"


def test_every_return_end_state_has_a_recorded_history() -> None:
    names = {path.stem for path in HISTORIES.glob("*.json")}
    for pair in PAIRS:
        for scenario in ("refunded", "approved", "rejected", "compensated"):
            assert f"ReturnSync-{pair}-{scenario}" in names
