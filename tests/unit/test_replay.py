"""Recorded histories of real runs replay against today's workflow code.

A change to a workflow that running executions would replay differently fails here
until it is guarded with `workflow.patched`. The histories were recorded from the
embedded default with tests/histories/record.py (one per scenario and pair).
"""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from commerce_sync import workflows
from commerce_sync.contracts.orders import ORDER_RUN_PATCH_LEVEL
from commerce_sync.worker import WORKFLOWS
from commerce_sync.workflows.order_sync import PATCH_LEVELS

HISTORIES = sorted((Path(__file__).parents[1] / "histories").glob("*.json"))
WORKFLOW_SOURCES = sorted(Path(workflows.__file__).parent.glob("*.py"))


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
    for pair in ("kentico-brightpearl", "xcart-acumatica"):
        # An approval wait that escalated, recorded before and after it moved into
        # PairSaga._wait_for_decision; a SKU's letter resolved by a later push.
        assert f"OrderSync-{pair}-approved-escalated" in names
        assert f"OrderSync-{pair}-approved-escalated-v2" in names
        assert f"InventoryPush-{pair}-rejected-resolved-1" in names


def patched_ids(source: Path) -> set[str]:
    """The ids a workflow module passes to `workflow.patched`, literally or as a constant."""
    tree = ast.parse(source.read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    # A helper that asks `workflow.patched` for its caller (`OrderSyncWorkflow._patched`)
    # passes on a parameter: its callers name the ids.
    parameters = {
        argument.arg
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for argument in node.args.args
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("patched", "_patched", "_has")
            and node.args
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            else:
                assert isinstance(arg, ast.Name), f"{source.name}: patch id {ast.unparse(arg)}"
                if arg.id not in constants and arg.id in parameters:
                    continue
                found.add(constants[arg.id])
    return found


def recorded_patch_ids(path: Path) -> set[str]:
    found: set[str] = set()
    for event in json.loads(path.read_text())["events"]:
        marker = event.get("markerRecordedEventAttributes")
        if marker is None or marker.get("markerName") != "core_patch":
            continue
        for detail in marker["details"].values():  # "patch-data": {"id": ..., "deprecated": ...}
            for payload in detail["payloads"]:
                found.add(json.loads(base64.b64decode(payload["data"]))["id"])
    return found


def test_every_patch_has_a_history_that_takes_it() -> None:
    """Old histories show the old branch still replays; this shows the new one does too
    (a history recorded after the change, e.g. `*-v2.json`)."""
    declared = set().union(*(patched_ids(source) for source in WORKFLOW_SOURCES))
    assert "customer-email-search-value" in declared  # the scan finds them at all
    recorded = set().union(*(recorded_patch_ids(path) for path in HISTORIES))
    assert declared - recorded == set(), "re-record with tests/histories/record*.py"


def started_input(path: Path) -> dict[str, Any]:
    """The first input of a recorded run (recorded without the payload codec)."""
    started = json.loads(path.read_text())["events"][0]["workflowExecutionStartedEventAttributes"]
    found: dict[str, Any] = json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))
    return found


def test_patch_levels_are_counted_and_a_history_takes_them_all_without_asking() -> None:
    """A run started with today's `patch_level` takes every levelled patch without a
    marker; a recorded one shows that branch replays (the older ones, the markers')."""
    assert sorted(PATCH_LEVELS.values()) == list(range(1, ORDER_RUN_PATCH_LEVEL + 1))
    levels = [
        started_input(path).get("patch_level", 0)
        for path in HISTORIES
        if path.stem.startswith("OrderSync-")
    ]
    assert ORDER_RUN_PATCH_LEVEL in levels
    assert 0 in levels


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


@pytest.mark.parametrize("history", [load(p) for p in HISTORIES], ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(history: WorkflowHistory) -> None:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{history.workflow_id}: {result.replay_failure}"
