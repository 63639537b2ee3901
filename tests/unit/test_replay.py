"""Recorded histories of real runs replay against today's workflow code.

A change to a workflow that running executions would replay differently fails here
until it is guarded with `workflow.patched`. The histories were recorded from the
embedded default with tests/histories/record.py (one per scenario and pair).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from commerce_sync.worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parents[1] / "histories").glob("*.json"))


def test_histories_cover_every_workflow_and_scenario() -> None:
    names = {path.stem for path in HISTORIES}
    for pair in ("kentico-brightpearl", "xcart-acumatica"):
        for scenario in (
            "shipped",
            "approved",
            "rejected",
            "cancelled",
            "payment-failed",
            "dead-lettered",
        ):
            assert f"OrderSync-{pair}-{scenario}" in names
    assert {"ErpEventRouter-brightpearl", "ErpEventRouter-acumatica"} <= names
    for pair in ("kentico-brightpearl", "xcart-acumatica"):
        for customer_run in (
            "CustomerMerge-{}-merged",
            "CustomerMerge-{}-compensated",
            "CustomerSync-{}-store-change",
            "CustomerSync-{}-echo",
            "CustomerSync-{}-failed",
            "CustomerSync-{}-merged-duplicate",
        ):
            assert customer_run.format(pair) in names


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


@pytest.mark.parametrize("history", [load(p) for p in HISTORIES], ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(history: WorkflowHistory) -> None:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{history.workflow_id}: {result.replay_failure}"
