"""The rules of an integration pair: which store feeds which ERP, and how risk,
approvals, returns, stock and customers are handled. Pure models; `config/pairs.py`
reads them from pairs.toml together with each system's lookups."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class CleansingRules(_Strict):
    """Addresses and contact details cleansed before anything is written to the ERP
    (`domain/cleansing.py`); what cannot be fixed is a validation problem naming the field."""

    enabled: bool = True
    usps_us_addresses: bool = Field(
        default=True, description="US street lines, city and state in USPS Publication 28 form"
    )
    invalid_phone: Literal["problem", "drop"] = Field(
        default="problem",
        description="a phone number that is not valid for its country: a validation "
        "problem, or dropped (recorded as a change)",
    )


class AnomalyRules(_Strict):
    """Flags learned from the merchant's own order history (`domain/anomalies.py`).

    Every check scores an order: 1.0 means "at this check's limit". An order waits for
    approval when its flags' scores add up to `approve_at`; flags scoring under
    `report_from` are left out. A limit set to None (`false` in pairs.toml) turns its
    check off."""

    enabled: bool = True
    approve_at: float = Field(default=1.0, gt=0)
    report_from: float = Field(default=0.5, ge=0)
    history_days: int = Field(default=180, ge=1, description="how far back history reaches")
    min_history: int = Field(
        default=20, ge=3, description="the pair's orders before the store-wide checks speak"
    )
    total_vs_store: float | None = Field(
        default=6.0, gt=0, description="robust z-score limit of the total against the store's"
    )
    total_vs_customer: float | None = Field(
        default=6.0, gt=0, description="robust z-score limit against the customer's own totals"
    )
    min_customer_orders: int = Field(default=3, ge=2)
    sku_quantity: float | None = Field(
        default=6.0, gt=0, description="robust z-score limit of a line's quantity for its SKU"
    )
    min_sku_orders: int = Field(default=10, ge=3)
    rare_route_share: float | None = Field(
        default=0.02,
        gt=0,
        lt=1,
        description="shipping abroad to a country under this share of the billing country's orders",
    )
    max_emails_per_address: int | None = Field(
        default=3, ge=1, description="different e-mails shipping to one address in the window"
    )
    address_window_days: int = Field(default=30, ge=1)
    first_order_express_over: Decimal | None = Field(
        default=None, description="a new customer's first order with express shipping over this"
    )
    express_methods: list[str] = Field(
        default_factory=lambda: ["express", "overnight", "next day", "next-day", "priority"],
        description="shipping methods containing any of these words (any case) are express",
    )

    @field_validator(
        "total_vs_store",
        "total_vs_customer",
        "sku_quantity",
        "rare_route_share",
        "max_emails_per_address",
        "first_order_express_over",
        mode="before",
    )
    @classmethod
    def _false_turns_off(cls, value: object) -> object:
        """TOML has no null: `limit = false` turns a check off."""
        return None if value is False else value


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


FeedEntity = Literal["orders", "returns", "customers", "catalog"]
FEED_ENTITIES: tuple[FeedEntity, ...] = ("orders", "returns", "customers", "catalog")


class FeedRules(_Strict):
    """The change feed: the store's changed orders read on a schedule and a run started
    for each that has none (`intake/missing_runs.py`). Without the store's webhooks it
    is the intake, every `every`; with them, a safety net, every `safety_net_every`."""

    enabled: bool = True
    entities: list[FeedEntity] = Field(
        default_factory=lambda: list(FEED_ENTITIES),
        description="what the feed reads: a schedule `feed-{entity}:{pair}` for each",
    )
    every: timedelta = Field(
        default=timedelta(minutes=1), description="the interval when the store sends no webhooks"
    )
    safety_net_every: timedelta = Field(
        default=timedelta(minutes=15), description="the interval when its webhooks are set up"
    )
    overlap: timedelta = Field(
        default=timedelta(minutes=5),
        description="each read reaches back this far before the last one (clock skew, "
        "orders saved late)",
    )
    first_window: timedelta = Field(
        default=timedelta(hours=24), description="how far back the very first read reaches"
    )

    @model_validator(mode="after")
    def _sane(self) -> FeedRules:
        for name in ("every", "safety_net_every"):
            if not timedelta(seconds=5) <= getattr(self, name) <= timedelta(days=1):
                raise ValueError(f"{name} must be between 5 seconds and a day")
        if not timedelta(0) <= self.overlap <= timedelta(days=1):
            raise ValueError("overlap must be between 0 and a day")
        if self.first_window <= timedelta(0):
            raise ValueError("first_window must be positive")
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


class PairRules(BaseModel):
    """What a workflow needs of its pair: the systems and the rules, without the systems'
    lookups (those stay with the activities that call the systems). A run reads it from
    the `config.pair` activity, whose result is the whole `PairConfig`: the lookups are
    ignored here, so runs recorded with either shape replay."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    store: StoreName
    erp: ErpName
    currencies: list[str] = Field(min_length=1)
    duplicate_check_after: timedelta = Field(
        default=timedelta(minutes=2),
        description="how long after its creates a run looks for records a lost answer "
        "made twice (a create whose answer was lost has landed by then)",
    )
    risk: RiskRules = RiskRules()
    cleansing: CleansingRules = CleansingRules()
    anomalies: AnomalyRules = AnomalyRules()
    approval: ApprovalRules = ApprovalRules()
    returns: ReturnRules = ReturnRules()
    inventory: InventoryRules = InventoryRules()
    customers: CustomerRules = CustomerRules()
    feed: FeedRules = FeedRules()

    @model_validator(mode="after")
    def _duplicate_check_in_range(self) -> PairRules:
        if not timedelta(seconds=1) <= self.duplicate_check_after <= timedelta(hours=1):
            raise ValueError("duplicate_check_after must be between 1 second and 1 hour")
        return self

    @model_validator(mode="after")
    def _currencies_are_iso(self) -> PairRules:
        for code in self.currencies:
            if len(code) != 3 or not code.isalpha() or not code.isupper():
                raise ValueError(f"currency {code!r} is not an ISO-4217 code")
        return self

    @model_validator(mode="after")
    def _inventory_fits_the_pair(self) -> PairRules:
        if self.erp == "brightpearl" and self.inventory.batch_size > 200:
            # product-availability takes at most 200 ids: a bigger batch costs more reads.
            raise ValueError("inventory.batch_size must be at most 200 with Brightpearl")
        if self.inventory.order_lookback < self.approval.reject_after:
            # An order waiting for approval has left the store's stock, not yet the ERP's.
            raise ValueError("inventory.order_lookback must be at least approval.reject_after")
        return self
