"""The run list's pure parts: the visibility query built from filters, and sealed page tokens."""

from __future__ import annotations

import pytest

from commerce_sync.commands.run_list import (
    PROCESS_STATES,
    WORKFLOW_TYPES,
    RunFilterError,
    RunFilters,
    open_token,
    seal_token,
)
from commerce_sync.config.settings import Settings
from commerce_sync.ops.metrics import PROCESSES

PAIRS = {"kentico-brightpearl": object()}


def test_query_quotes_every_value_and_joins_the_filters() -> None:
    assert RunFilters().query() == ""
    filters = RunFilters(
        process="order",
        state="awaiting_shipment",
        pair="kentico-brightpearl",
        running=False,
        task_queue="commerce-sync",
    )
    filters.check(PAIRS)
    assert filters.query() == (
        'WorkflowType = "OrderSync" AND IntegrationPair = "kentico-brightpearl"'
        ' AND SyncState = "awaiting_shipment" AND ExecutionStatus != "Running"'
        ' AND TaskQueue = "commerce-sync"'
    )
    assert RunFilters(running=True).query() == 'ExecutionStatus = "Running"'
    # Every process label maps back to its workflow type; every stateful process is one.
    assert {WORKFLOW_TYPES[label]: label for label in WORKFLOW_TYPES} == PROCESSES
    assert set(PROCESS_STATES) <= set(WORKFLOW_TYPES)


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        (RunFilters(process="Order"), "process"),
        (RunFilters(state="awaiting_shipment", process="catalog"), "state"),
        (RunFilters(state="synced", process="customer-merge"), "state"),
        (RunFilters(pair="kentico-brightpearl "), "pair"),
        (RunFilters(task_queue='a" OR "b'), "task_queue"),
        (RunFilters(task_queue="a\\b"), "task_queue"),
        (RunFilters(task_queue="a\nb"), "task_queue"),
        (RunFilters(task_queue="x" * 1001), "task_queue"),
    ],
)
def test_a_filter_that_names_nothing_is_refused_by_field(filters: RunFilters, field: str) -> None:
    with pytest.raises(RunFilterError) as refused:
        filters.check(PAIRS)
    assert refused.value.field == field


def test_a_page_token_opens_only_for_the_query_and_keys_it_was_sealed_with() -> None:
    settings = Settings(_env_file=None, api_keys={"k1": ["read"]})
    raw = b'{"CloseTime":"9999-12-31T23:59:59Z","RunID":"r"}'
    token = seal_token(settings, 'WorkflowType = "OrderSync"', raw)
    assert open_token(settings, 'WorkflowType = "OrderSync"', token) == raw
    rotated = Settings(_env_file=None, api_keys={"k2": ["read"]})
    for settings_, query, sealed in (
        (settings, "", token),
        (rotated, 'WorkflowType = "OrderSync"', token),
        (settings, 'WorkflowType = "OrderSync"', token[:-1]),
        (settings, 'WorkflowType = "OrderSync"', "%%%"),
        (settings, 'WorkflowType = "OrderSync"', ""),
    ):
        with pytest.raises(RunFilterError) as refused:
            open_token(settings_, query, sealed)
        assert refused.value.field == "page_token"
