"""The Kentico sandbox's `where` / `orderby` reader (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commerce_sync.systems.kentico.formats import where_datetime, where_text
from commerce_sync.systems.kentico.schema import BOOL, DATETIME, DECIMAL, INT, TEXT
from sandboxes.kentico.restquery import (
    QueryError,
    parse_orderby,
    parse_where,
    sort_rows,
)

COLUMNS = {"ID": INT, "Name": TEXT, "Price": DECIMAL, "Enabled": BOOL, "Modified": DATETIME}
ROWS: list[dict[str, Any]] = [
    {
        "ID": 1,
        "Name": "Widget",
        "Price": Decimal("9.99"),
        "Enabled": True,
        "Modified": datetime(2026, 1, 1, tzinfo=UTC),
    },
    {
        "ID": 2,
        "Name": "O'Brien",
        "Price": Decimal("20"),
        "Enabled": False,
        "Modified": datetime(2026, 1, 2, tzinfo=UTC),
    },
    {
        "ID": 3,
        "Name": None,
        "Price": None,
        "Enabled": True,
        "Modified": datetime(2026, 1, 3, tzinfo=UTC),
    },
]


def ids(where: str) -> list[int]:
    predicate = parse_where(where, COLUMNS)
    return [row["ID"] for row in ROWS if predicate(row)]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("", [1, 2, 3]),
        ("ID > 1", [2, 3]),
        ("ID >= 2 AND ID <= 2", [2]),
        ("ID <> 2", [1, 3]),
        ("ID != 2", [1, 3]),
        ("Name = 'widget'", [1]),  # case-insensitive, like SQL Server's default collation
        ("Name = N'O''Brien'", [2]),
        ("Name IS NULL", [3]),
        ("Name IS NOT NULL", [1, 2]),
        ("Price > 10", [2]),  # NULL never compares true
        ("Price < 10.5", [1]),
        ("Enabled = 1", [1, 3]),
        ("Enabled = 'false'", [2]),
        ("Modified > '2026-01-01T12:00:00'", [2, 3]),
        ("ID IN (1, 3)", [1, 3]),
        ("ID NOT IN (1, 3)", [2]),
        ("Name LIKE 'w%'", [1]),
        ("ID = 1 OR ID = 2 AND Enabled = 0", [1, 2]),  # AND binds tighter
        ("(ID = 1 OR ID = 2) AND Enabled = 0", [2]),
        ("NOT ID = 1", [2, 3]),
        ("[ID] = 3", [3]),
    ],
)
def test_where(where: str, expected: list[int]) -> None:
    assert ids(where) == expected


@pytest.mark.parametrize(
    "where",
    [
        "Nope = 1",
        "ID = ",
        "ID == 1",
        "ID = 'x'",
        "ID = 1 AND",
        "(ID = 1",
        "ID = 1; DROP TABLE x",
        "Modified > 'soon'",
    ],
)
def test_bad_where_is_a_query_error(where: str) -> None:
    with pytest.raises(QueryError):
        parse_where(where, COLUMNS)


def test_orderby_and_sort() -> None:
    order = parse_orderby("Price DESC, ID", COLUMNS)
    assert order == [("Price", True), ("ID", False)]
    assert [r["ID"] for r in sort_rows(ROWS, order)] == [2, 1, 3]
    assert [r["ID"] for r in sort_rows(ROWS, parse_orderby("Name", COLUMNS))] == [3, 2, 1]
    with pytest.raises(QueryError):
        parse_orderby("Nope", COLUMNS)
    with pytest.raises(QueryError):
        parse_orderby("ID SIDEWAYS", COLUMNS)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=30))
def test_any_text_literal_matches_itself(value: str) -> None:
    """What the connector writes with `where_text` finds exactly that value (no injection)."""
    predicate = parse_where(f"Name = {where_text(value)}", COLUMNS)
    assert predicate({"Name": value})
    assert not predicate({"Name": value + "x"})


@settings(max_examples=50, deadline=None)
@given(st.datetimes(timezones=st.just(UTC)), st.datetimes(timezones=st.just(UTC)))
def test_datetime_literals_compare_like_datetimes(since: datetime, modified: datetime) -> None:
    predicate = parse_where(f"Modified > '{where_datetime(since)}'", COLUMNS)
    assert predicate({"Modified": modified}) == (modified > since)
