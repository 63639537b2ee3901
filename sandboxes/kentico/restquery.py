"""The sandbox's reading of the REST service's `where` and `orderby` parameters.

Kentico hands `where` to SQL Server as a WHERE fragment. The sandbox understands the
part of that language a connector uses: `Column op literal` with `= <> != > >= < <=`,
`Column IS [NOT] NULL`, `Column [NOT] IN (literal, ...)`, `LIKE` with `%`/`_`, joined by
`AND` / `OR` (AND binds tighter), `NOT` and parentheses. Literals are `'text'` (a quote
doubled inside), `N'text'`, numbers, and `NULL`. Columns may be written `[Column]`.
Comparison follows SQL Server's default collation: text case-insensitively; a
comparison with NULL is never true. Anything else is a `QueryError` (HTTP 400).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from commerce_sync.systems.kentico.schema import BOOL, DATETIME, DECIMAL, GUID, INT, TEXT

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]


class QueryError(ValueError):
    """The `where`/`orderby`/`columns` text is not understood; the message says why."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>N?'(?:[^']|'')*')
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><>|!=|>=|<=|=|>|<)
      | (?P<paren>[(),])
      | (?P<ident>\[[^\]]+\]|[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise QueryError(f"Incorrect syntax near '{text[pos : pos + 20].strip()}'.")
        kind = match.lastgroup or ""
        tokens.append(_Tok(kind, match.group(kind)))
        pos = match.end()
    return tokens


def coerce(value: Any, kind: str, column: str) -> Any:
    """A literal or a written value as the column's type; ValueError says which column."""
    if value is None:
        return None
    try:
        if kind == INT:
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, int):
                return value
            if isinstance(value, Decimal) and value == value.to_integral_value():
                return int(value)
            if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
                return int(value)
        elif kind == DECIMAL:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int | Decimal):
                return Decimal(value)
            if isinstance(value, str):
                parsed = Decimal(value.strip())
                if parsed.is_finite():
                    return parsed
        elif kind == BOOL:
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
                return value.strip().lower() in ("true", "1")
        elif kind == DATETIME:
            if isinstance(value, datetime):
                parsed_dt = value
            elif isinstance(value, str):
                parsed_dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            else:
                raise ValueError
            if parsed_dt.tzinfo is None:  # the site's time zone is UTC
                parsed_dt = parsed_dt.replace(tzinfo=UTC)
            return parsed_dt.astimezone(UTC)
        elif kind in (TEXT, GUID):
            if isinstance(value, str):
                return value
            if isinstance(value, int | Decimal) and not isinstance(value, bool):
                return str(value)
    except (ValueError, InvalidOperation):
        pass
    raise ValueError(f"Invalid value for field '{column}'.")


def _norm(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _like(pattern: str) -> re.Pattern[str]:
    out = []
    for char in pattern:
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


class _Parser:
    def __init__(self, text: str, columns: Mapping[str, str]) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.columns = {name.lower(): (name, kind) for name, kind in columns.items()}

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def keyword(self, *words: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "ident" and tok.text.upper() in words:
            self.pos += 1
            return True
        return False

    def expect(self, kind: str, text: str | None = None) -> _Tok:
        tok = self.peek()
        if tok is None or tok.kind != kind or (text is not None and tok.text != text):
            near = tok.text if tok else "end of input"
            raise QueryError(f"Incorrect syntax near '{near}'.")
        self.pos += 1
        return tok

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise QueryError(f"Incorrect syntax near '{self.tokens[self.pos].text}'.")
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.keyword("OR"):
            parts.append(self.conjunction())
        if len(parts) == 1:
            return parts[0]
        return lambda row: any(part(row) for part in parts)

    def conjunction(self) -> Predicate:
        parts = [self.factor()]
        while self.keyword("AND"):
            parts.append(self.factor())
        if len(parts) == 1:
            return parts[0]
        return lambda row: all(part(row) for part in parts)

    def factor(self) -> Predicate:
        if self.keyword("NOT"):
            inner = self.factor()
            return lambda row: not inner(row)
        tok = self.peek()
        if tok is not None and tok.kind == "paren" and tok.text == "(":
            self.pos += 1
            inner = self.disjunction()
            self.expect("paren", ")")
            return inner
        return self.comparison()

    def literal(self, column: str, kind: str) -> Any:
        tok = self.peek()
        if tok is None:
            raise QueryError("Incorrect syntax near 'end of input'.")
        self.pos += 1
        if tok.kind == "string":
            raw = tok.text[2:-1] if tok.text.startswith("N") else tok.text[1:-1]
            value: Any = raw.replace("''", "'")
        elif tok.kind == "number":
            value = Decimal(tok.text) if "." in tok.text else int(tok.text)
        elif tok.kind == "ident" and tok.text.upper() == "NULL":
            return None
        else:
            raise QueryError(f"Incorrect syntax near '{tok.text}'.")
        try:
            return coerce(value, kind, column)
        except ValueError:
            raise QueryError(
                f"Conversion failed for value '{value}' of column '{column}'."
            ) from None

    def comparison(self) -> Predicate:
        tok = self.expect("ident")
        key = tok.text.strip("[]").lower()
        if key not in self.columns:
            raise QueryError(f"Invalid column name '{tok.text.strip('[]')}'.")
        column, kind = self.columns[key]
        if self.keyword("IS"):
            negate = self.keyword("NOT")
            if not self.keyword("NULL"):
                raise QueryError("Incorrect syntax near 'IS'.")
            return lambda row: (row.get(column) is None) != negate
        negate = self.keyword("NOT")
        if self.keyword("IN"):
            self.expect("paren", "(")
            values = {_norm(self.literal(column, kind))}
            while self.peek() is not None and self.peek() == _Tok("paren", ","):
                self.pos += 1
                values.add(_norm(self.literal(column, kind)))
            self.expect("paren", ")")
            return lambda row: (
                row.get(column) is not None and (_norm(row[column]) in values) != negate
            )
        if self.keyword("LIKE"):
            pattern = self.expect("string").text
            regex = _like(pattern[2:-1] if pattern.startswith("N") else pattern[1:-1])
            return lambda row: (
                row.get(column) is not None and bool(regex.fullmatch(str(row[column]))) != negate
            )
        if negate:
            raise QueryError("Incorrect syntax near 'NOT'.")
        op = self.expect("op").text
        want = _norm(self.literal(column, kind))
        compare = _COMPARE[op]

        def predicate(row: Row) -> bool:
            have = row.get(column)
            if have is None or want is None:
                return False
            return compare(_norm(have), want)

        return predicate


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "<>": lambda a, b: bool(a != b),
    "!=": lambda a, b: bool(a != b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
}


def parse_where(text: str, columns: Mapping[str, str]) -> Predicate:
    """A predicate over rows for a `where` fragment; `columns` maps name -> type."""
    if not text.strip():
        return lambda row: True
    return _Parser(text, columns).parse()


def parse_orderby(text: str, columns: Mapping[str, str]) -> list[tuple[str, bool]]:
    """`Col [ASC|DESC], ...` -> [(column, descending)]."""
    lowered = {name.lower(): name for name in columns}
    out: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise QueryError(f"Incorrect syntax near '{part.strip()}'.")
        name = words[0].strip("[]")
        if name.lower() not in lowered:
            raise QueryError(f"Invalid column name '{name}'.")
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise QueryError(f"Incorrect syntax near '{words[1]}'.")
        out.append((lowered[name.lower()], direction == "DESC"))
    return out


def sort_rows(rows: list[dict[str, Any]], order: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Stable multi-key sort; NULLs first ascending (as SQL Server sorts them)."""
    result = list(rows)
    for column, descending in reversed(order):
        result.sort(
            key=lambda row: (
                (row.get(column) is not None, _norm(row.get(column)))
                if row.get(column) is not None
                else (False, 0)
            ),
            reverse=descending,
        )
    return result
