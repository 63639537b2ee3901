"""Workflow modules make no non-deterministic call (README, "Layout").

The worker runs workflows without the SDK's sandbox (`commerce_sync.worker.
workflow_runner`), so nothing refuses `datetime.now()` or `open()` while a run runs.
This reads the source instead: each workflow module imports only what a workflow may
use and calls nothing that reads the clock, randomness, the environment or files; and
no module a workflow can import calls a builtin the sandbox refused at run time, or
imports inside a function (such an import would run during a run, unchecked by the
import list). (Imports of I/O libraries are also refused by the default sandbox,
tests/integration/test_workflow_sandbox.py; which rooms a workflow may import,
tests/unit/test_layout.py.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "commerce_sync"
WORKFLOWS = PACKAGE / "workflows"
# The rooms a workflow module may import (tests/unit/test_layout.py): their code runs
# inside workflow runs.
IN_RUNS = ("workflows", "domain", "contracts")

ALLOWED_IMPORTS = {
    *("__future__", "asyncio", "collections", "dataclasses", "datetime", "decimal"),
    *("enum", "functools", "itertools", "math", "re", "typing"),
    *("temporalio", "commerce_sync"),
}
# `datetime.now()`, `date.today()` and the like: `workflow.now()` is the run's clock.
CLOCK_READS = {"now", "utcnow", "today"}
FORBIDDEN_CALLS = {"open", "input", "hash", "id", "eval", "exec", "breakpoint"}
WALL_CLOCK_HELPERS = {"utc_now"}  # domain/models.py: for activities and the API only
# What the SDK's sandbox refused while a run ran (`open`, `input`, `breakpoint`), and
# code made from text.
REFUSED_IN_RUNS = {"open", "input", "breakpoint", "eval", "exec"}


def offences(source: str) -> list[str]:
    """What in this source a workflow must not do, one line each."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] not in ALLOWED_IMPORTS:
                    found.append(f"line {node.lineno}: imports {name}")
        if (
            isinstance(node, ast.Attribute)
            and node.attr in CLOCK_READS
            and ast.unparse(node.value) != "workflow"
        ):
            found.append(f"line {node.lineno}: reads the clock ({ast.unparse(node)})")
        helper = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
        if isinstance(node, ast.Name | ast.Attribute) and helper in WALL_CLOCK_HELPERS:
            found.append(f"line {node.lineno}: reads the clock ({ast.unparse(node)})")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FORBIDDEN_CALLS
        ):
            found.append(f"line {node.lineno}: calls {node.func.id}()")
    return found


def run_time_offences(source: str) -> list[str]:
    """What in a module whose code runs inside workflow runs must not be there."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in REFUSED_IN_RUNS
        ):
            found.append(f"line {node.lineno}: calls {node.func.id}()")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    found.append(f"line {inner.lineno}: imports inside a function")
    return found


@pytest.mark.parametrize(
    "module",
    sorted(str(p.relative_to(PACKAGE)) for room in IN_RUNS for p in (PACKAGE / room).rglob("*.py")),
)
def test_code_that_runs_in_workflow_runs_opens_nothing_and_imports_nothing_late(
    module: str,
) -> None:
    assert run_time_offences((PACKAGE / module).read_text(encoding="utf-8")) == []


def test_what_code_in_runs_may_write() -> None:
    source = "import math\n\ndef share(total, parts):\n    return math.floor(total / parts)\n"
    assert run_time_offences(source) == []


@pytest.mark.parametrize("module", sorted(p.name for p in WORKFLOWS.glob("*.py")))
def test_a_workflow_module_makes_no_non_deterministic_call(module: str) -> None:
    source = (WORKFLOWS / module).read_text(encoding="utf-8")
    assert offences(source) == []


CHECKS = {"module": offences, "run": run_time_offences}


@pytest.mark.parametrize(
    ("check", "source", "offence"),
    [
        ("module", "from datetime import datetime\nstarted = datetime.now()", "reads the clock"),
        ("module", "import datetime\nday = datetime.date.today()", "reads the clock"),
        ("module", "import random", "imports random"),
        ("module", "import httpx", "imports httpx"),
        ("module", "from uuid import uuid4", "imports uuid"),
        ("module", "text = open('rules.toml').read()", "calls open()"),
        ("module", "bucket = hash('sku') % 4", "calls hash()"),
        ("module", "from commerce_sync.domain.models import utc_now\nutc_now()", "reads the clock"),
        ("module", "from commerce_sync.domain import models\nmodels.utc_now()", "reads the clock"),
        ("run", "rules = open('pairs.toml').read()", "calls open()"),
        ("run", "answer = input('approve? ')", "calls input()"),
        ("run", "def check():\n    breakpoint()", "calls breakpoint()"),
        ("run", "total = eval('1 + 2')", "calls eval()"),
        ("run", "def now():\n    import time", "imports inside a function"),
        ("run", "async def read():\n    from pathlib import Path", "imports inside a function"),
    ],
)
def test_what_each_check_refuses(check: str, source: str, offence: str) -> None:
    assert [line for line in CHECKS[check](source) if offence in line]


def test_what_a_workflow_may_write() -> None:
    source = (
        "from datetime import timedelta\n"
        "from temporalio import workflow\n"
        "now = workflow.now()\n"
        "later = now + timedelta(minutes=5)\n"
    )
    assert offences(source) == []
