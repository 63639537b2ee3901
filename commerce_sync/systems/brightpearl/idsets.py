"""Brightpearl ID sets: `7`, `1-5`, `1,3,9` and mixes such as `1-5,7,12` (ranges ascending)."""

from __future__ import annotations

from collections.abc import Iterable


class IdSetError(ValueError):
    """The text is not a valid ID set."""


def parse_id_set(text: str, *, max_size: int | None = None) -> list[int]:
    """The ids of an ID set, in the order given, without duplicates.

    `*` is not an ID set of ids; callers that accept it check for it first.
    """
    ids: list[int] = []
    seen: set[int] = set()
    text = text.strip()
    if not text:
        raise IdSetError("empty ID set")
    for part in text.split(","):
        part = part.strip()
        low_text, dash, high_text = part.partition("-")
        if not low_text.isdigit() or (dash and not high_text.isdigit()):
            raise IdSetError(f"invalid ID set element {part!r}")
        low = int(low_text)
        high = int(high_text) if dash else low
        if high < low:
            raise IdSetError(f"range {part!r} is not ascending")
        if max_size is not None and len(ids) + (high - low + 1) > max_size:
            raise IdSetError(f"ID set larger than {max_size}")
        for value in range(low, high + 1):
            if value not in seen:
                seen.add(value)
                ids.append(value)
    return ids


def format_id_set(ids: Iterable[int]) -> str:
    """The shortest ascending ID set for `ids` (consecutive runs of three or more as ranges)."""
    ordered = sorted(set(ids))
    if not ordered:
        raise IdSetError("empty ID set")
    parts: list[str] = []
    start = prev = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        if prev - start >= 2:
            parts.append(f"{start}-{prev}")
        else:
            parts.extend(str(v) for v in range(start, prev + 1))
        if value is not None:
            start = prev = value
    return ",".join(parts)


def chunks(ids: Iterable[int], size: int) -> list[list[int]]:
    """`ids` split into lists of at most `size` (order kept, duplicates dropped)."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    unique = list(dict.fromkeys(ids))
    return [unique[i : i + size] for i in range(0, len(unique), size)]
