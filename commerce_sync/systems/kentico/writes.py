"""What the connector checks itself before a POST or PUT, because Kentico will not.

"When inserting or updating data via the REST service, Xperience does not perform any
validation. You need to ensure validation on the side of the application sending the REST
requests" (KEN-REST, "Manipulating data using REST",
https://docs.kentico.com/13/integrating-3rd-party-systems/xperience-rest-service/manipulating-data-using-rest).
What the database does refuse comes back as WCF's generic 400 page, which names no field.
So a write body is checked here against `schema.py`: every column is one of the table's
(a misspelt column would otherwise be dropped without a word), every value fits the
column's type, and a create carries the table's `required` columns. The error names the
column.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from commerce_sync.systems.kentico.mapping import MappingError
from commerce_sync.systems.kentico.schema import BOOL, DATETIME, DECIMAL, GUID, INT, TEXT, Table


def _fits(kind: str, value: Any) -> bool:
    if value is None:  # JSON null empties a field (KEN-REST, "Setting fields to empty values")
        return True
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == DECIMAL:
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, Decimal) and value.is_finite())
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == DATETIME:
        return isinstance(value, datetime | str)
    if kind in (TEXT, GUID):
        return isinstance(value, str)
    return False


def check_write(table: Table, values: Mapping[str, Any], *, creating: bool) -> None:
    """Raises `MappingError` naming the first column that Kentico would store wrongly."""
    for column, value in values.items():
        kind = table.columns.get(column)
        if kind is None:
            raise MappingError(column, f"{table.class_name} has no column {column!r}")
        if not _fits(kind, value):
            raise MappingError(
                column, f"{table.class_name}.{column} takes a {kind} value, not {value!r}"
            )
    if creating:
        for column in table.required:
            value = values.get(column)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise MappingError(column, f"{table.class_name}.{column} is required")
