"""The subset of the `Default/24.200.001` contract the sandbox and the connector share.

Written out by hand from the official OpenAPI definition (entity names, key fields,
detail arrays and their row keys, action names); nothing reads the definition at run
time. Field values travel wrapped (`{"value": ...}`); these helpers wrap and unwrap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

ENDPOINT = "Default"
VERSION = "24.200.001"

# The text Acumatica answers a license limit with (HTTP 429).
LICENSE_LIMIT_TEXT = "The number of requests has exceeded the limit imposed by the license"
LOGIN_LIMIT_TEXT = "API Login Limit"


@dataclass(frozen=True)
class EntitySpec:
    """Key fields (in URL order), detail arrays with their row keys, linked objects, and
    the entity's creation stamp and `NoteID` members when it has them."""

    keys: tuple[str, ...]
    details: dict[str, tuple[str, ...]] = field(default_factory=dict)
    linked: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    inquiry: bool = False
    last_modified: str = "LastModifiedDateTime"
    created: str | None = None
    note_id: bool = False


ENTITIES: dict[str, EntitySpec] = {
    "SalesOrder": EntitySpec(
        keys=("OrderType", "OrderNbr"),
        details={
            "Details": ("LineNbr",),
            "Payments": ("DocType", "ReferenceNbr"),
            "Shipments": ("ShipmentType", "ShipmentNbr"),
            "TaxDetails": ("TaxID",),
            "DiscountDetails": ("DiscountCode",),
        },
        linked=(
            "BillToAddress",
            "ShipToAddress",
            "BillToContact",
            "ShipToContact",
            "Totals",
            "FinancialSettings",
            "ShippingSettings",
        ),
        actions=(
            "CancelSalesOrder",
            "SalesOrderCreateShipment",
            "SalesOrderCreateReceipt",
            "OpenSalesOrder",
            "ReopenSalesOrder",
        ),
        last_modified="LastModified",
        created="CreatedDate",
        note_id=True,
    ),
    "Customer": EntitySpec(
        keys=("CustomerID",),
        details={"Contacts": ("ContactID",), "Attributes": ("AttributeID",)},
        linked=("MainContact", "BillingContact", "ShippingContact", "PrimaryContact"),
        created="CreatedDateTime",
        note_id=True,
    ),
    "StockItem": EntitySpec(
        keys=("InventoryID",),
        details={"WarehouseDetails": ("WarehouseID",), "CrossReferences": ("AlternateID",)},
        note_id=True,
    ),
    "InventoryQuantityAvailable": EntitySpec(
        keys=("InventoryID",), details={"Results": ("InventoryID",)}, inquiry=True
    ),
    "InventorySummaryInquiry": EntitySpec(
        keys=("InventoryID",), details={"Results": ("WarehouseID", "LocationID")}, inquiry=True
    ),
    "InventoryReceipt": EntitySpec(
        keys=("ReferenceNbr",),
        details={"Details": ("LineNumber",)},
        actions=("ReleaseInventoryReceipt",),
    ),
    "InventoryAdjustment": EntitySpec(
        keys=("ReferenceNbr",),
        details={"Details": ()},
        actions=("ReleaseAdjustment",),
    ),
    "Shipment": EntitySpec(
        keys=("ShipmentNbr",),
        details={
            "Details": ("LineNbr",),
            "Orders": ("OrderType", "OrderNbr"),
            "Packages": ("LineNbr",),
        },
        actions=("ConfirmShipment", "CorrectShipment", "PrepareInvoice", "UpdateIN"),
        created="CreatedDateTime",
        note_id=True,
    ),
    "Payment": EntitySpec(
        keys=("Type", "ReferenceNbr"),
        details={
            "OrdersToApply": ("OrderType", "OrderNbr"),
            "DocumentsToApply": ("DocType", "ReferenceNbr"),
            "ApplicationHistory": ("AdjustedDocType", "AdjustedRefNbr"),
        },
        actions=("ReleasePayment", "VoidPayment"),
        note_id=True,
    ),
    "SalesInvoice": EntitySpec(
        keys=("Type", "ReferenceNbr"),
        details={"Details": ("LineNbr",)},
        linked=("BillToAddress", "BillToContact"),
        actions=("ReleaseSalesInvoice",),
        created="CreatedDate",
    ),
}

# Members that hold a date or a date-time; their string values are parsed on the way in.
DATE_FIELDS = frozenset(
    {
        "Date",
        "RequestedOn",
        "ShipOn",
        "ShipmentDate",
        "ApplicationDate",
        "LastModified",
        "LastModifiedDateTime",
        "CreatedDate",
        "CreatedDateTime",
        "DueDate",
        "EffectiveDate",
    }
)

SYSTEM_FIELDS = frozenset(
    {"id", "rowNumber", "note", "custom", "_links", "files", "error", "delete"}
)


class WrapError(ValueError):
    """A member in a request body is not in the contract's wrapped shape."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"The value of {path} is not in the expected format.")


def parse_datetime(value: str) -> datetime:
    """ISO-8601 as Acumatica sends it; a value without an offset is taken as UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def format_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def unwrap(obj: dict[str, Any], path: str = "") -> dict[str, Any]:
    """`{"F": {"value": x}, "Rows": [...], "Linked": {...}}` -> plain values (dates parsed)."""
    out: dict[str, Any] = {}
    for key, raw in obj.items():
        where = f"{path}{key}"
        if key == "id":
            if raw is not None:
                out["id"] = str(raw)
            continue
        if key == "delete":
            out["delete"] = bool(raw)
            continue
        if key == "note":
            out["note"] = raw.get("value") if isinstance(raw, dict) else raw
            continue
        if key in SYSTEM_FIELDS:
            continue
        if isinstance(raw, dict) and "value" in raw:
            value = raw["value"]
            if key in DATE_FIELDS and isinstance(value, str):
                try:
                    value = parse_datetime(value)
                except ValueError:
                    raise WrapError(where) from None
            out[key] = value
        elif isinstance(raw, dict):
            out[key] = unwrap(raw, f"{where}/")
        elif isinstance(raw, list):
            rows = []
            for index, row in enumerate(raw):
                if not isinstance(row, dict):
                    raise WrapError(f"{where}[{index}]")
                rows.append(unwrap(row, f"{where}[{index}]/"))
            out[key] = rows
        elif raw is None:
            continue
        else:
            raise WrapError(where)
    return out


def wrap_value(value: Any) -> dict[str, Any]:
    if isinstance(value, datetime):
        return {"value": format_datetime(value)}
    return {"value": value}


def wrap(obj: dict[str, Any]) -> dict[str, Any]:
    """Plain values -> the wire shape (every field in `{"value": ...}`), for request bodies."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in ("id", "delete"):
            out[key] = value
        elif isinstance(value, dict):
            out[key] = wrap(value)
        elif isinstance(value, list):
            out[key] = [wrap(row) for row in value]
        else:
            out[key] = wrap_value(value)
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Money and quantities here have few digits; the float's repr is the exact decimal.
        return (
            int(value)
            if value == value.to_integral_value() and abs(value) < 2**53
            else float(value)
        )
    if isinstance(value, datetime):
        return format_datetime(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(obj: Any) -> bytes:
    """JSON with `Decimal` as numbers and datetimes as ISO-8601 with offset."""
    return json.dumps(obj, default=_json_default, separators=(",", ":")).encode()


def loads(data: bytes | str) -> Any:
    """JSON with every non-integer number as `Decimal`, so money stays exact."""
    return json.loads(data, parse_float=Decimal)


def value_of(obj: dict[str, Any] | None, *path: str) -> Any:
    """The unwrapped value at `path` in a wrapped entity (None when absent)."""
    current: Any = obj
    for part in path:
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    if isinstance(current, dict) and "value" in current:
        return current["value"]
    return None


def odata_string(value: str) -> str:
    """A string literal for `$filter`: quoted, with quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def odata_datetime(value: datetime) -> str:
    return f"datetimeoffset'{format_datetime(value)}'"
