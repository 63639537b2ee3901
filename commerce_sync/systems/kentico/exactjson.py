"""JSON with exact decimals, shared by the Kentico connector and sandbox.

Kentico's REST service writes money columns (`SKUPrice`, `OrderGrandTotal`, ...) as JSON
numbers. Python's `json` would turn a `Decimal` into a binary float on the way out and
read numbers back as floats; these helpers keep every digit: `dumps` writes a `Decimal`
as the JSON number with exactly its digits, `loads` reads non-integer numbers as `Decimal`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

_MARK = "\u0000dec:"
_MARKED = re.compile(r'"\\u0000dec:([-0-9.Ee+]+)"')


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as JSON")
        return f"{_MARK}{value}"
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """JSON text; decimals become numbers with their exact digits, datetimes ISO-8601."""
    text = json.dumps(value, default=_default, ensure_ascii=True)
    return _MARKED.sub(lambda match: match.group(1), text)


def loads(text: str | bytes) -> Any:
    """Parse JSON; numbers with a fraction or exponent become `Decimal`."""
    return json.loads(text, parse_float=Decimal)
