"""Integration pairs: which store feeds which ERP, and the rules and lookups of each.

A pair is configuration, not code. `load_pairs` validates the whole file and refuses
to start on the first problem with the file, the key and the reason
(`PairsConfigError`), so a typo never becomes a silent default.
"""

from __future__ import annotations

import tomllib
from datetime import timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from commerce_sync.systems.acumatica.lookups import AcumaticaLookups
from commerce_sync.systems.brightpearl.lookups import BrightpearlLookups
from commerce_sync.systems.kentico.lookups import KenticoLookups
from commerce_sync.systems.xcart.lookups import XCartLookups

StoreName = Literal["kentico", "xcart"]
ErpName = Literal["brightpearl", "acumatica"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskRules(_Strict):
    """Each rule that matches sends the order to manual approval; unset rules are off."""

    total_over: Decimal | None = None
    countries_differ: bool = False
    new_customer_first_order_over: Decimal | None = None
    max_orders_per_email_per_hour: int | None = Field(default=None, ge=1)


class ApprovalRules(_Strict):
    escalate_after: timedelta = timedelta(hours=4)
    reject_after: timedelta = timedelta(hours=48)

    @model_validator(mode="after")
    def _escalate_before_reject(self) -> ApprovalRules:
        if self.escalate_after > self.reject_after:
            raise ValueError("escalate_after must not be later than reject_after")
        return self


class ReturnRules(_Strict):
    window_days: int = Field(default=30, ge=0)
    approval_over: Decimal | None = None


class InventoryRules(_Strict):
    safety_stock: int = Field(default=0, ge=0)
    batch_size: int = Field(default=100, ge=1, le=500)
    gather_window: timedelta = timedelta(seconds=5)
    incremental_every: timedelta = timedelta(minutes=5)
    nightly_full_at_hour_utc: int = Field(default=3, ge=0, le=23)


FieldOwner = Literal["store", "erp"]


def _default_field_owners() -> dict[str, FieldOwner]:
    return {
        "email": "store",
        "first_name": "store",
        "last_name": "store",
        "phone": "store",
        "billing_address": "store",
        "shipping_address": "store",
        "company": "erp",
    }


class CustomerRules(_Strict):
    """Which system owns each customer field (`store` or `erp`); others: newest non-empty."""

    plus_addressing_is_same_person: bool = True
    field_owner: dict[str, FieldOwner] = Field(default_factory=_default_field_owners)


class PairConfig(_Strict):
    id: str
    store: StoreName
    erp: ErpName
    currencies: list[str] = Field(min_length=1)
    risk: RiskRules = RiskRules()
    approval: ApprovalRules = ApprovalRules()
    returns: ReturnRules = ReturnRules()
    inventory: InventoryRules = InventoryRules()
    customers: CustomerRules = CustomerRules()
    kentico: KenticoLookups = KenticoLookups()
    xcart: XCartLookups = XCartLookups()
    brightpearl: BrightpearlLookups = BrightpearlLookups()
    acumatica: AcumaticaLookups = AcumaticaLookups()

    @model_validator(mode="after")
    def _currencies_are_iso(self) -> PairConfig:
        for code in self.currencies:
            if len(code) != 3 or not code.isalpha() or not code.isupper():
                raise ValueError(f"currency {code!r} is not an ISO-4217 code")
        return self


class PairsConfigError(Exception):
    """pairs.toml is unreadable or invalid; the message names the file, the key and why."""

    def __init__(self, path: Path | str, key: str, reason: str) -> None:
        self.path, self.key, self.reason = str(path), key, reason
        super().__init__(f"{path}: {key}: {reason}" if key else f"{path}: {reason}")


def default_pairs_path() -> Path:
    return Path(str(resources.files("commerce_sync.config").joinpath("pairs.toml")))


def load_pairs(path: Path | None = None) -> dict[str, PairConfig]:
    path = path or default_pairs_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PairsConfigError(path, "", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise PairsConfigError(path, "", f"not valid TOML: {exc}") from None
    unknown = set(raw) - {"pairs"}
    if unknown:
        raise PairsConfigError(
            path, sorted(unknown)[0], "unknown top-level key (expected [pairs.<id>])"
        )
    tables = raw.get("pairs")
    if not isinstance(tables, dict) or not tables:
        raise PairsConfigError(path, "pairs", "no pair defined")
    pairs: dict[str, PairConfig] = {}
    for pair_id, table in tables.items():
        if not isinstance(table, dict):
            raise PairsConfigError(path, f"pairs.{pair_id}", "must be a table")
        try:
            pairs[pair_id] = PairConfig.model_validate({"id": pair_id, **table})
        except ValidationError as exc:
            error = exc.errors()[0]
            key = ".".join(["pairs", pair_id, *(str(part) for part in error["loc"])])
            raise PairsConfigError(path, key, error["msg"]) from None
    return pairs
