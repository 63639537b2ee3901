"""The recorded inventory histories (tests/histories/record_inventory.py) that
tests/unit/test_replay.py replays cover every scenario of both pairs."""

from __future__ import annotations

from pathlib import Path

from tests.integration.inventory.inventory_stack import PAIRS

HISTORIES = Path(__file__).parents[2] / "histories"
SCENARIOS = ("pushed", "rejected", "read-failed", "held-back")


def test_every_inventory_scenario_has_a_recorded_history() -> None:
    names = {path.stem for path in HISTORIES.glob("*.json")}
    for pair in PAIRS:
        for scenario in SCENARIOS:
            name = f"InventoryPush-{pair}-{scenario}"
            assert name in names or f"{name}-1" in names, name
    # a run that continued as new, the run after it, and a schedule's tick
    assert {
        "InventoryPush-kentico-brightpearl-continued-1",
        "InventoryPush-kentico-brightpearl-continued-2",
        "InventoryScheduleTick",
    } <= names
