"""Tables of the application database. Temporal holds workflow state; these hold the rest.

- `webhook_events`: every accepted webhook, recorded before the 202 is sent. Unique on
  (source, event_id) so a redelivered event is recognised; `status` tells the relay
  which events still need their workflow started.
- `links`: ids of one business object in the store and in the ERP of a pair.
- `dead_letters`: items that failed for good, with payload, error and attempts; never
  deleted, resolved or replayed with their history kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, get_args

from sqlalchemy import JSON, Column, DateTime, Index, Numeric, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(**kwargs: Any) -> Any:
    return Field(default_factory=_now, sa_type=DateTime(timezone=True), **kwargs)


class EventStatus(StrEnum):
    RECEIVED = "received"
    STARTED = "started"
    FAILED = "failed"


class WebhookEvent(SQLModel, table=True):
    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("source", "event_id", name="uq_webhook_events_source_event"),
        Index("ix_webhook_events_status", "status"),
        Index("ix_webhook_events_workflow_id", "workflow_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    event_id: str = Field(max_length=200)
    event_type: str = Field(max_length=100)
    workflow_id: str = Field(max_length=300)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=EventStatus.RECEIVED, max_length=16)
    start_attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    received_at: datetime = _timestamp()
    started_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    next_attempt_at: datetime | None = Field(
        default=None,
        sa_type=DateTime(timezone=True),
        description="a start Temporal refused is tried again no sooner than this",
    )
    claim: str | None = Field(
        default=None,
        max_length=32,
        description="the relay round that last claimed the event (next_attempt_at is then "
        "the end of its lease)",
    )


class Link(SQLModel, table=True):
    """One object known in two systems: (pair, kind, store_id) <-> erp_id."""

    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("pair", "kind", "store_id", name="uq_links_store"),
        Index("ix_links_erp", "pair", "kind", "erp_id"),
        # The inventory push's mark (the highest order link id) and the links after it.
        Index("ix_links_kind_id", "pair", "kind", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pair: str = Field(max_length=64)
    kind: str = Field(max_length=32, description="order, customer, product, return, ...")
    store_id: str = Field(max_length=200)
    erp_id: str = Field(max_length=200)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
    # An order's quantities per SKU, as the ERP order took them from stock; null for
    # other kinds and for orders linked before 0010. The inventory push reads the order
    # links made after a point (`id` above a mark) to recognise the ERP's stock change as
    # the echo of orders the store has already counted (workflows/inventory_push.py).
    quantities: dict[str, int] | None = Field(default=None, sa_column=Column(JSON))


class DeadLetterStatus(StrEnum):
    OPEN = "open"
    REPLAYED = "replayed"
    RESOLVED = "resolved"


LetterProcess = Literal[
    "order", "catalog", "inventory", "return", "customer-merge", "customer-sync", "intake"
]
"""What a dead letter is about: a business process, or `intake` (a webhook event whose
start Temporal kept refusing)."""
LETTER_PROCESSES: tuple[str, ...] = get_args(LetterProcess)


class DeadLetter(SQLModel, table=True):
    __tablename__ = "dead_letters"
    __table_args__ = (
        Index("ix_dead_letters_status", "status"),
        Index("ix_dead_letters_key", "business_key"),
        UniqueConstraint("dedupe_key", name="uq_dead_letters_dedupe"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str | None = Field(
        default=None,
        max_length=300,
        description="one letter per failing run, however often retried",
    )
    pair: str = Field(max_length=64)
    process: str = Field(max_length=32)
    business_key: str = Field(max_length=300, description="the workflow id of the failed run")
    reason: str = Field(max_length=200)
    error: str = Field(sa_column=Column(Text, nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    attempts: int = 1
    status: str = Field(default=DeadLetterStatus.OPEN, max_length=16)
    history: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
    resolved_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class OrderSeen(SQLModel, table=True):
    """Store orders by a hash of the customer's e-mail, for the orders-per-email-per-hour
    risk rule: it only matches e-mails, so the e-mail itself is not kept."""

    __tablename__ = "orders_seen"
    __table_args__ = (
        UniqueConstraint("pair", "store_order_id", name="uq_orders_seen_order"),
        Index("ix_orders_seen_email_key", "pair", "email_key", "placed_at"),
        Index("ix_orders_seen_address_key", "pair", "address_key", "placed_at"),
        Index("ix_orders_seen_placed_at", "pair", "placed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pair: str = Field(max_length=64)
    store_order_id: str = Field(max_length=200)
    email_key: str = Field(max_length=80, description="ops.codec.email_match_value")
    placed_at: datetime = Field(sa_type=DateTime(timezone=True))
    # The facts the anomaly checks learn from (domain/anomalies.py); empty on rows
    # recorded before them, which the checks then skip.
    currency: str = Field(default="", max_length=3)
    total: Decimal | None = Field(default=None, sa_type=Numeric(18, 4))
    billing_country: str = Field(default="", max_length=2)
    shipping_country: str = Field(default="", max_length=2)
    address_key: str = Field(
        default="", max_length=80, index=False, description="ops.codec.address_match_value"
    )
    sku_quantities: dict[str, int] | None = Field(default=None, sa_column=Column(JSON))


class Alert(SQLModel, table=True):
    """Every alert raised, whether or not a notification channel is configured."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_alerts_dedupe"),
        Index("ix_alerts_created", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=300)
    kind: str = Field(max_length=64)
    key: str = Field(max_length=300)
    message: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _timestamp()


class CustomerWrite(SQLModel, table=True):
    """The last customer record commerce-sync wrote, per (system, id): its fingerprint as
    intended (stored before the write) and as read back (after it). The change event that
    write raises finds the record equal to one of them and is dropped (echo); one that
    arrives while the write is `pending` (not yet read back) waits for it."""

    __tablename__ = "customer_writes"
    __table_args__ = (UniqueConstraint("system", "customer_id", name="uq_customer_writes_record"),)

    id: int | None = Field(default=None, primary_key=True)
    system: str = Field(max_length=32)
    customer_id: str = Field(max_length=200)
    fingerprint: str = Field(default="", max_length=64)
    intended: str = Field(default="", max_length=64)
    pending: bool = False
    written_at: datetime = _timestamp()


class FeedMark(SQLModel, table=True):
    """Where a change feed has read up to (`store/feeds.py`), per pair and entity."""

    __tablename__ = "feed_marks"
    __table_args__ = (UniqueConstraint("pair", "entity", name="uq_feed_marks_feed"),)

    id: int | None = Field(default=None, primary_key=True)
    pair: str = Field(max_length=64)
    entity: str = Field(max_length=32)
    mark: datetime = Field(
        sa_type=DateTime(timezone=True),
        description="changes up to here were read; the next read starts here less the overlap",
    )
    last_success_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_seen: int = 0
    last_started: int = 0
    last_error: str = Field(default="", sa_type=Text)
    last_error_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ApiBudget(SQLModel, table=True):
    """One outside system's shared call budget: a token bucket kept as one row
    (`store/budgets.py`), so every worker process of the deployment draws on it."""

    __tablename__ = "api_budgets"

    system: str = Field(primary_key=True, max_length=32)
    ready_at: float = Field(
        default=0.0,
        description="the bucket's theoretical arrival time (GCRA), Unix seconds: a call is "
        "granted while ready_at - burst tolerance <= now, and moves it one interval on",
    )


class ApiBudgetWaiter(SQLModel, table=True):
    """The most urgent call one process is waiting to send to a system (`store/budgets.py`):
    a slot goes to no caller while a more urgent or older one waits in another process."""

    __tablename__ = "api_budget_waiters"

    system: str = Field(primary_key=True, max_length=32)
    holder: str = Field(primary_key=True, max_length=64, description="one process's budget")
    priority: int = Field(description="lower is more urgent (Temporal's priority keys)")
    since: float = Field(description="Unix seconds its run first waited (`api_budget_runs`)")
    expires_at: float = Field(
        description="renewed while the process waits; a dead process's claim lapses by itself"
    )


class ApiBudgetRun(SQLModel, table=True):
    """When a run first waited for a call budget, the same for every process: its place in
    every system's queue, on whichever worker its next step runs."""

    __tablename__ = "api_budget_runs"

    run: str = Field(primary_key=True, max_length=255)
    since: float = Field(index=True, description="Unix seconds")
