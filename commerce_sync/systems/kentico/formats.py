"""Text formats inside Kentico columns: custom data XML, the payment result XML, datetimes.

- Custom data (`OrderCustomData`, `OrderItemCustomData`): Kentico's `ContainerCustomData`
  XML, `<CustomData><Key>value</Key>...</CustomData>`.
- Payment result (`OrderPaymentResult`): Kentico's `PaymentResultInfo` XML,
  `<result><item name="transactionid" header="..." value="ch_123" />...</result>`.
- Datetimes: the REST service writes ISO-8601; a value without an offset is in the
  site's time zone, which this project takes to be UTC (configure the Kentico server so).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# XML 1.0 cannot carry most control characters; Kentico would refuse them too.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

PAYMENT_RESULT_HEADERS = {
    "date": "{$PaymentGateway.Result.Date$}",
    "method": "{$PaymentGateway.Result.PaymentMethod$}",
    "transactionid": "{$PaymentGateway.Result.TransactionID$}",
    "completed": "{$PaymentGateway.Result.IsCompleted$}",
    "status": "{$PaymentGateway.Result.Status$}",
}


def _clean(value: str) -> str:
    return _XML_BAD.sub("", value)


def parse_custom_data(text: str | None) -> dict[str, str]:
    """`<CustomData><Key>value</Key></CustomData>` -> {"Key": "value"}; empty on no data."""
    if not text or not text.strip():
        return {}
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return {}
    return {child.tag: child.text or "" for child in root}


def dump_custom_data(values: Mapping[str, str]) -> str:
    """The XML for `values`; keys must be XML names; empty values are left out."""
    root = ET.Element("CustomData")
    for key, value in values.items():
        if not _KEY.match(key):
            raise ValueError(f"custom data key {key!r} is not an XML name")
        if value == "":
            continue
        ET.SubElement(root, key).text = _clean(value)
    return ET.tostring(root, encoding="unicode")


def merge_custom_data(text: str | None, updates: Mapping[str, str | None]) -> str:
    """Existing custom data with `updates` applied (None or "" removes a key)."""
    values = parse_custom_data(text)
    for key, value in updates.items():
        if value is None or value == "":
            values.pop(key, None)
        else:
            values[key] = value
    return dump_custom_data(values)


def parse_payment_result(text: str | None) -> dict[str, str]:
    """`<result><item name="x" value="y"/></result>` -> {"x": "y"}."""
    if not text or not text.strip():
        return {}
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return {}
    return {
        item.get("name", ""): item.get("value", "")
        for item in root.iter("item")
        if item.get("name")
    }


def dump_payment_result(values: Mapping[str, str]) -> str:
    root = ET.Element("result")
    for name, value in values.items():
        header = PAYMENT_RESULT_HEADERS.get(name, name)
        ET.SubElement(root, "item", {"name": name, "header": header, "value": _clean(value)})
    return ET.tostring(root, encoding="unicode")


def parse_datetime(value: object) -> datetime | None:
    """A REST datetime as aware UTC; naive values are the site's time zone (UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    else:
        raise ValueError(f"not a datetime: {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """An aware datetime as the REST service writes it (UTC, microseconds, offset)."""
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def where_datetime(value: datetime) -> str:
    """A datetime as a `where` literal: UTC, no offset (SQL Server `datetime2` text)."""
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def where_text(value: str) -> str:
    """A text literal for `where`: quoted, quotes doubled (no injection)."""
    return "N'" + value.replace("'", "''") + "'"
