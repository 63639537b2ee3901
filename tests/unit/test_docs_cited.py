"""Comments and docs cite only what a clone of the repository has.

Code cites the maintainer reference as `docs/<page>.md`, optionally with a numbered
section (`docs/systems/brightpearl.md §6.1`). Every cited page must exist, every cited
section must be a numbered heading of that page, and no file may point at the design and
contract notes that lived outside the repository.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCANNED_SUFFIXES = frozenset(
    {".py", ".toml", ".yml", ".yaml", ".md", ".cfg", ".ini", ".sh", ".txt", ".mako"}
)
SCANNED_NAMES = frozenset({"Makefile", "Dockerfile"})
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
        ".data",
        "build",
        "dist",
        "node_modules",
    }
)

# Built from parts, so that this file does not mention them itself.
OUTSIDE_NOTES = tuple(
    stem + ".md" for stem in ("DESIGN", "SYSTEMS", "PROJECT-CONTRACTS", "TEMPORAL-NOTES")
)
OUTSIDE_PATHS = ("../" + "shared", "work/" + "shared")

# A page under `docs/` ending in `.md`, not part of a longer path or host name
# (`xcart-docs/...`, `api-docs.example`), then any number of `§N.M` section references.
CITATION = re.compile(
    r"(?<![\w./-])(?P<page>docs/(?:[\w-]+/)*[\w-]+\.md)"
    r"(?P<sections>(?:\s*(?:,|and|or)?\s*§\s?\d+(?:\.\d+)*)*)"
)
SECTION = re.compile(r"§\s?(\d+(?:\.\d+)*)")
NUMBERED_HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)


def scanned_files() -> Iterator[Path]:
    """Every source, config and documentation file of the repository."""
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in relative.parts):
            continue
        if not path.is_file():
            continue
        if (
            path.suffix in SCANNED_SUFFIXES
            or path.name in SCANNED_NAMES
            or path.name.startswith("README")
        ):
            yield path


def citations() -> Iterator[tuple[Path, int, str, list[str]]]:
    """(file, line, cited page, cited sections) for every citation of a docs page."""
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in CITATION.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            sections = SECTION.findall(match.group("sections"))
            yield path, line, match.group("page"), sections


def headings(page: Path) -> set[str]:
    return set(NUMBERED_HEADING.findall(page.read_text(encoding="utf-8")))


def test_the_scan_sees_the_repository() -> None:
    files = {path.relative_to(ROOT).as_posix() for path in scanned_files()}
    assert {"pyproject.toml", "Makefile", "Dockerfile", "docker-compose.yml"} <= files
    assert "tests/unit/test_docs_cited.py" in files
    assert any(name.startswith("commerce_sync/") for name in files)
    assert any(name.startswith("docs/") for name in files)
    assert not any(name.startswith(".venv/") for name in files)


def test_code_cites_the_docs() -> None:
    """The scan finds citations, with sections; an empty scan would prove nothing."""
    found = list(citations())
    assert len(found) >= 20, found
    assert any(sections for *_, sections in found)


def test_every_cited_page_and_section_exists() -> None:
    problems: list[str] = []
    for path, line, page, sections in citations():
        where = f"{path.relative_to(ROOT)}:{line}"
        target = ROOT / page
        if not target.is_file():
            problems.append(f"{where}: {page} does not exist")
            continue
        missing = [s for s in sections if s not in headings(target)]
        if missing:
            problems.append(f"{where}: {page} has no section {', '.join(missing)}")
    assert not problems, "\n".join(problems)


def test_nothing_points_outside_the_repository() -> None:
    problems: list[str] = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for needle in (*OUTSIDE_NOTES, *OUTSIDE_PATHS):
            for match in re.finditer(re.escape(needle), text):
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{path.relative_to(ROOT)}:{line}: mentions {needle}")
    assert not problems, "\n".join(problems)
