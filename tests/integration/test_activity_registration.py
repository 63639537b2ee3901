"""The worker registers every declared activity, from its definition: each reference in
`contracts/activities.py` is implemented on the task queues the worker serves, once per
queue, and nothing is registered that no workflow can reference."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from temporalio.client import Client

from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import Settings
from commerce_sync.contracts.activities import ActivityRef, implemented_ref
from commerce_sync.ops.alerts import Notifier
from commerce_sync.worker import Ports, workflow_queue_activities


def _names(activities: list[Callable[..., Any]] | tuple[Callable[..., Any], ...]) -> list[str]:
    names = []
    for method in activities:
        ref = implemented_ref(method)
        assert ref is not None, f"{method} is registered without a reference"
        names.append(ref.name)
    return names


async def test_every_declared_activity_is_registered_once_per_queue(
    temporal_client: Client, settings: Settings, engine: Engine
) -> None:
    pairs = load_pairs(settings.pairs_file)
    ports = Ports(settings, engine=engine)
    try:
        queues = {
            settings.task_queue: _names(
                workflow_queue_activities(
                    temporal_client, settings, engine, pairs, Notifier([]), ports
                )
            ),
            **{system: _names(list(found)) for system, found in ports.activities(pairs).items()},
        }
    finally:
        await ports.aclose()

    for queue, names in queues.items():
        assert len(names) == len(set(names)), f"{queue}: registered twice: {names}"
    registered = {name for names in queues.values() for name in names}
    assert registered == set(ActivityRef.declared)
    # Every store queue serves every store.* step, every ERP queue every erp.* step.
    for store in ("kentico", "xcart"):
        assert {n for n in ActivityRef.declared if n.startswith("store.")} <= set(queues[store])
    for erp in ("brightpearl", "acumatica"):
        assert {n for n in ActivityRef.declared if n.startswith("erp.")} <= set(queues[erp])


async def test_each_implementation_takes_and_returns_what_its_reference_declares(
    settings: Settings, engine: Engine
) -> None:
    """mypy checks this statically; this checks the run-time types the data converter
    decodes with (`ActivityRef.result_type`) against the implementations' annotations."""
    pairs = load_pairs(settings.pairs_file)
    ports = Ports(settings, engine=engine)
    try:
        found_by_queue = ports.activities(pairs)
    finally:
        await ports.aclose()
    checked = set()
    for found in found_by_queue.values():
        for method in found:
            ref = implemented_ref(method)
            assert ref is not None
            hints = typing.get_type_hints(method)
            declared_output = ref.result_type if ref.result_type is not None else type(None)
            assert [h for k, h in hints.items() if k != "return"] == [ref.input_type], ref
            assert hints["return"] == declared_output or issubclass(
                hints["return"], declared_output
            ), ref
            checked.add(ref.name)
    assert len(checked) > 40
