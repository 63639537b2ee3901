"""Acumatica push notifications (SM302000) as commerce-sync receives them.

Acumatica signs nothing: the notification carries the static header configured on it
(`X-Commerce-Sync-Token: <secret>`, docs/project-contracts.md §1.4). `verify_push` checks that
header in constant time and parses the body; `Id` is the dedupe key and `TimeStamp`
orders notifications.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from commerce_sync.intake.proofs import ACUMATICA_TOKEN_HEADER, verify_token

QUERY_SHIPMENTS = "CS-Shipments"
QUERY_STOCK = "CS-StockChanges"
QUERY_CUSTOMERS = "CS-Customers"
QUERY_STOCK_ITEMS = "CS-StockItems"


class PushNotification(BaseModel):
    """The body Acumatica POSTs: changed rows of one query's results."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    inserted: list[dict[str, Any]] = Field(default_factory=list, alias="Inserted")
    deleted: list[dict[str, Any]] = Field(default_factory=list, alias="Deleted")
    query: str = Field(alias="Query", min_length=1)
    company_id: str = Field(default="", alias="CompanyId")
    id: str = Field(alias="Id", min_length=1)
    timestamp: int = Field(alias="TimeStamp")
    additional_info: dict[str, Any] = Field(default_factory=dict, alias="AdditionalInfo")


class PushBodyError(ValueError):
    """The body is not a push notification; `field` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def parse_push(body: bytes) -> PushNotification:
    try:
        raw = json.loads(body)
    except ValueError:
        raise PushBodyError("body", "not JSON") from None
    try:
        return PushNotification.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise PushBodyError(
            ".".join(str(p) for p in error["loc"]) or "body", error["msg"]
        ) from None


def verify_push(
    expected_token: str,
    headers: Mapping[str, str],
    body: bytes,
    header_name: str = ACUMATICA_TOKEN_HEADER,
) -> PushNotification:
    """Check the static header (raises `WebhookProofError`), then parse (`PushBodyError`)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    verify_token(expected_token, lowered.get(header_name.lower()))
    return parse_push(body)


def changed_rows(notification: PushNotification) -> list[dict[str, Any]]:
    """The rows as they are now (an update is a Deleted + Inserted pair: keep Inserted)."""
    return list(notification.inserted)
