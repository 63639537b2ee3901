"""The OData v3 `$filter` subset the sandbox evaluates (docs/systems/acumatica.md §7).

Comparisons `eq ne gt ge lt le`, `and`, `or`, `not`, parentheses, the functions
`substringof('x', F)`, `startswith(F, 'x')`, `endswith(F, 'x')`, linked paths such as
`MainContact/Email`, and literals: `'text'` (quotes doubled), numbers, `true`/`false`,
`null`, `datetimeoffset'...'`, `datetime'...'`, `guid'...'`. Text compares without case,
as SQL Server's default collation does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from commerce_sync.systems.acumatica.schema import parse_datetime

Getter = Callable[[tuple[str, ...]], Any]
Predicate = Callable[[Getter], bool]


class FilterError(ValueError):
    """The `$filter` expression cannot be parsed or names something unsupported."""


_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<typed>(?:datetimeoffset|datetime|guid)'[^']*')"
    r"|(?P<string>'(?:[^']|'')*')"
    r"|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<punct>[(),])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_./]*)"
    r")"
)

_COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")


@dataclass
class _Token:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterError(f"Unexpected character at position {pos} in $filter.")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def _literal(token: _Token) -> Any:
    if token.kind == "string":
        return token.text[1:-1].replace("''", "'")
    if token.kind == "number":
        return Decimal(token.text)
    if token.kind == "typed":
        prefix, _, rest = token.text.partition("'")
        raw = rest[:-1]
        if prefix in ("datetimeoffset", "datetime"):
            try:
                return parse_datetime(raw)
            except ValueError:
                raise FilterError(f"Invalid {prefix} literal {raw!r}.") from None
        return raw.lower()
    if token.kind == "word" and token.text in ("true", "false"):
        return token.text == "true"
    if token.kind == "word" and token.text == "null":
        return None
    raise FilterError(f"Expected a literal, found {token.text!r}.")


def _norm(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, str):
        return value.casefold()
    return value


def compare(left: Any, op: str, right: Any) -> bool:
    left, right = _norm(left), _norm(right)
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    if isinstance(left, datetime) != isinstance(right, datetime):
        return False
    try:
        if op == "gt":
            return bool(left > right)
        if op == "ge":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


class _Parser:
    def __init__(self, tokens: list[_Token], allowed: Callable[[tuple[str, ...]], bool]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.allowed = allowed
        self.paths: list[tuple[str, ...]] = []
        self.text_equalities: list[tuple[tuple[str, ...], str]] = []

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise FilterError("Unexpected end of $filter.")
        self.pos += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise FilterError(f"Expected {text!r}, found {token.text!r}.")

    def parse(self) -> Predicate:
        predicate = self.parse_or()
        if self.peek() is not None:
            raise FilterError(f"Unexpected {self.peek().text!r} in $filter.")  # type: ignore[union-attr]
        return predicate

    def parse_or(self) -> Predicate:
        left = self.parse_and()
        while (token := self.peek()) is not None and token.text == "or":
            self.take()
            right = self.parse_and()
            left = (lambda a, b: lambda get: a(get) or b(get))(left, right)
        return left

    def parse_and(self) -> Predicate:
        left = self.parse_unary()
        while (token := self.peek()) is not None and token.text == "and":
            self.take()
            right = self.parse_unary()
            left = (lambda a, b: lambda get: a(get) and b(get))(left, right)
        return left

    def parse_unary(self) -> Predicate:
        token = self.peek()
        if token is not None and token.text == "not":
            self.take()
            inner = self.parse_unary()
            return lambda get: not inner(get)
        if token is not None and token.text == "(":
            self.take()
            inner = self.parse_or()
            self.expect(")")
            return inner
        if token is not None and token.text in ("substringof", "startswith", "endswith"):
            return self.parse_function()
        return self.parse_comparison()

    def field_path(self, token: _Token) -> tuple[str, ...]:
        if token.kind != "word" or token.text in ("true", "false", "null"):
            raise FilterError(f"Expected a field name, found {token.text!r}.")
        path = tuple(token.text.split("/"))
        if not self.allowed(path):
            raise FilterError(f"Filtering by {token.text} is not supported.")
        self.paths.append(path)
        return path

    def parse_function(self) -> Predicate:
        name = self.take().text
        self.expect("(")
        first = self.take()
        self.expect(",")
        second = self.take()
        self.expect(")")
        if name == "substringof":
            needle, path = _literal(first), self.field_path(second)
        else:
            path, needle = self.field_path(first), _literal(second)
        if not isinstance(needle, str):
            raise FilterError(f"{name} needs a text argument.")
        needle = needle.casefold()

        def run(get: Getter) -> bool:
            value = get(path)
            if not isinstance(value, str):
                return False
            hay = value.casefold()
            if name == "substringof":
                return needle in hay
            if name == "startswith":
                return hay.startswith(needle)
            return hay.endswith(needle)

        return run

    def parse_comparison(self) -> Predicate:
        path = self.field_path(self.take())
        op = self.take().text
        if op not in _COMPARISONS:
            raise FilterError(f"Unknown operator {op!r}.")
        literal = _literal(self.take())
        if op == "eq" and isinstance(literal, str):
            self.text_equalities.append((path, literal.casefold()))
        return lambda get: compare(get(path), op, literal)


@dataclass(frozen=True)
class ParsedFilter:
    """A compiled `$filter` and the field paths it reads."""

    predicate: Predicate
    paths: tuple[tuple[str, ...], ...]
    equalities: tuple[tuple[tuple[str, ...], str], ...] = ()
    """Terms `path eq 'text'` every match satisfies (the filter joins its terms with `and`
    alone), as (path, the text casefolded): a record matches one only when the value at
    its path is text that casefolds to it (`compare`)."""


def compile_filter(
    text: str, allowed: Callable[[tuple[str, ...]], bool] = lambda _path: True
) -> ParsedFilter:
    """Compile `$filter` text into a predicate over a field getter, with the paths it
    reads (`allowed` refuses a path with a `FilterError`)."""
    tokens = _tokenize(text)
    if not tokens:
        return ParsedFilter(lambda _get: True, ())
    parser = _Parser(tokens, allowed)
    predicate = parser.parse()
    # Without `or` and `not`, every comparison must hold for a record to match.
    conjunction = not any(t.kind == "word" and t.text in ("or", "not") for t in tokens)
    equalities = tuple(parser.text_equalities) if conjunction else ()
    return ParsedFilter(predicate, tuple(parser.paths), equalities)
