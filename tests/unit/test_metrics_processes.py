"""Every workflow the worker runs has a process label of its own in the run metrics."""

from __future__ import annotations

from temporalio.workflow import _Definition

from commerce_sync.ops.metrics import PROCESSES
from commerce_sync.worker import WORKFLOWS


def test_every_workflow_has_a_distinct_process_label() -> None:
    names: set[str] = set()
    for cls in WORKFLOWS:
        name = _Definition.must_from_class(cls).name
        assert name is not None, f"{cls.__name__} is a dynamic workflow"
        names.add(name)
    assert names <= PROCESSES.keys(), f"no process label for {names - PROCESSES.keys()}"
    labels = [PROCESSES[name] for name in names]
    assert len(labels) == len(set(labels)), labels
