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
    """The inventory push (`inventory:{pair}`): what is sellable and how it is pushed."""

    safety_stock: int = Field(default=0, ge=0)
    batch_size: int = Field(default=100, ge=1, le=500)
    gather_window: timedelta = Field(
        default=timedelta(seconds=5),
        description="ERP stock webhooks gather this long before one push (0: push at once)",
    )
    incremental_every: timedelta = timedelta(minutes=5)
    nightly_full_at_hour_utc: int = Field(default=3, ge=0, le=23)
    order_lookback: timedelta = Field(
        default=timedelta(hours=48),
        description="a store order not yet in the ERP keeps its quantities reserved this long",
    )
    order_overlap: timedelta = Field(
        default=timedelta(seconds=60),
        description="store order listings reach back this far (store clock skew)",
    )
    attempts: int = Field(
        default=5, ge=1, le=50, description="tries of one ERP read or store write"
    )
    retry_after: timedelta = Field(
        default=timedelta(minutes=1),
        description="SKUs whose read or write failed are pushed again after this",
    )
    cycles_per_run: int = Field(
        default=200, ge=1, description="push cycles before the workflow continues as new"
    )

    @model_validator(mode="after")
    def _durations(self) -> InventoryRules:
        if not timedelta(0) <= self.gather_window <= timedelta(minutes=10):
            raise ValueError("gather_window must be between 0 and 10 minutes")
        if self.incremental_every < timedelta(minutes=1):
            raise ValueError("incremental_every must be at least a minute")
        for name in ("order_lookback", "retry_after"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.order_overlap < timedelta(0):
            raise ValueError("order_overlap must not be negative")
        return self


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

    @model_validator(mode="after")
    def _inventory_fits_the_pair(self) -> PairConfig:
        if self.erp == "brightpearl" and self.inventory.batch_size > 200:
            # product-availability takes at most 200 ids: a bigger batch costs more reads.
            raise ValueError("inventory.batch_size must be at most 200 with Brightpearl")
        if self.inventory.order_lookback < self.approval.reject_after:
            # An order waiting for approval has left the store's stock, not yet the ERP's.
            raise ValueError("inventory.order_lookback must be at least approval.reject_after")
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
