"""Every activity, as a typed reference: its registered name, its input and its output.

Workflows call activities through these (`PairSaga._act(Erp.create_order, ...)`), and
each implementation is defined through the same reference (`@implements(Erp.create_order)`),
so mypy checks both ends against one declaration: a renamed or retyped activity fails
type-checking instead of failing at run time. The names are the activity types recorded
in every history: they never change.

The worker registers every method an activities object defines with `implements`
(`implementations`), so a method is registered by being defined, never by being listed;
`tests/unit/test_activity_refs.py` checks that every reference has exactly one
implementation on the worker and every implementation a reference.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Generic, TypeVar

from temporalio import activity

from commerce_sync.contracts.catalog import (
    CatalogStarts,
    ErpProductIds,
    ErpProductRef,
    StoreProductCreated,
    StoreProductRef,
    StoreProductRemoval,
    StoreProductTwinCheck,
    StoreProductWrite,
)
from commerce_sync.contracts.customers import (
    CustomerActiveInput,
    CustomerEmailLookup,
    CustomerLinkLookup,
    CustomerRecordRef,
    CustomerWriteInput,
    EchoVerdict,
    LinkRepoint,
    LinkRow,
    OrderCustomerInput,
    WriteMemo,
)
from commerce_sync.contracts.documents import ErpOrderHandle, PriorReturns, StoreReturn
from commerce_sync.contracts.feeds import FeedPoll, FeedRead
from commerce_sync.contracts.inventory import (
    ErpIdsInput,
    LandedSkus,
    LinkedOrders,
    LinkedOrdersInput,
    LinkedSince,
    LinkedSinceInput,
    OrderListing,
    OrderListingInput,
    PushSignalInput,
    ReservationsInput,
    StockChangesInput,
    StockReadInput,
    StockRejections,
    StockWriteInput,
)
from commerce_sync.contracts.orders import (
    OrderAssessment,
    OrderAssessmentInput,
    OrderCleansing,
    PreparedOrder,
)
from commerce_sync.contracts.return_steps import (
    CreditCreate,
    CreditRef,
    PriorReturnsLookup,
    RefundRequest,
    RestockRequest,
    ReturnDocRef,
    ReturnStatusUpdate,
    ReturnTwinCheck,
    StoreReturnRef,
)
from commerce_sync.contracts.steps import (
    AlertInput,
    CustomerCreate,
    CustomerCreated,
    CustomerLookup,
    CustomerRef,
    DeadLetterInput,
    ErpOrderCreate,
    ErpOrderCreated,
    ErpOrderLookup,
    ErpOrderRefInput,
    LinkInput,
    LinkLookup,
    OrderErpCheck,
    OrderErpFacts,
    OrderSeen,
    OrderTwinCheck,
    PaymentRecord,
    PaymentReversal,
    ResolveDeadLetters,
    ShipmentEventRef,
    SkuCheck,
    StoreOrderRef,
    StoreStatusUpdate,
    TrackingUpdate,
)
from commerce_sync.contracts.stock import (
    Availability,
    OrderReservation,
    StockChanges,
    StockWriteResult,
)
from commerce_sync.domain.cleansing import CleansedOrder
from commerce_sync.domain.models import Customer, Order, Product, Shipment
from commerce_sync.domain.pair_rules import PairRules

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")
OwnerT = TypeVar("OwnerT")
# A reference's output is covariant: a step that returns `list[str]` may be awaited where
# any `Iterable[str]` will do. Its input stays invariant, so a call's argument is checked
# against exactly the declared type.
_Output_co = TypeVar("_Output_co", covariant=True)

_IMPLEMENTS = "__commerce_sync_implements__"


class ActivityRef(Generic[InputT, _Output_co]):
    """One activity: declared as `ActivityRef[Input, Output]("name")`, so the types exist
    for mypy and, through the subscripted class, at run time for the data converter."""

    declared: ClassVar[dict[str, ActivityRef[Any, Any]]] = {}

    def __init__(self, name: str) -> None:
        if name in ActivityRef.declared:
            raise ValueError(f"activity {name!r} is declared twice")
        self.name = name
        ActivityRef.declared[name] = self

    def _type_args(self) -> tuple[Any, ...]:
        alias = getattr(self, "__orig_class__", None)
        if alias is None:
            raise TypeError(f"declare {self.name!r} as ActivityRef[Input, Output](name)")
        return typing.get_args(alias)

    @property
    def input_type(self) -> Any:
        return self._type_args()[0]

    @property
    def result_type(self) -> Any:
        """The output type for the data converter; None when the activity returns nothing."""
        output = self._type_args()[1]
        return None if output is type(None) else output

    def __repr__(self) -> str:
        return f"ActivityRef({self.name!r})"


def implements(
    ref: ActivityRef[InputT, OutputT],
) -> Callable[
    [Callable[[OwnerT, InputT], Awaitable[OutputT]]],
    Callable[[OwnerT, InputT], Awaitable[OutputT]],
]:
    """Define an async activity method as the implementation of `ref`."""

    def define(
        method: Callable[[OwnerT, InputT], Awaitable[OutputT]],
    ) -> Callable[[OwnerT, InputT], Awaitable[OutputT]]:
        setattr(method, _IMPLEMENTS, ref)
        return activity.defn(name=ref.name)(method)

    return define


def implements_sync(
    ref: ActivityRef[InputT, OutputT],
) -> Callable[[Callable[[OwnerT, InputT], OutputT]], Callable[[OwnerT, InputT], OutputT]]:
    """Define a synchronous activity method (run on the worker's thread pool) as the
    implementation of `ref`."""

    def define(method: Callable[[OwnerT, InputT], OutputT]) -> Callable[[OwnerT, InputT], OutputT]:
        setattr(method, _IMPLEMENTS, ref)
        return activity.defn(name=ref.name)(method)

    return define


def implemented_ref(method: object) -> ActivityRef[Any, Any] | None:
    """The reference a method was defined to implement, if any."""
    ref = getattr(method, _IMPLEMENTS, None)
    return ref if isinstance(ref, ActivityRef) else None


def implementations(*owners: object) -> list[Callable[..., Any]]:
    """Every activity method the owners define with `implements`, bound to its owner."""
    found: list[Callable[..., Any]] = []
    for owner in owners:
        for name in dir(type(owner)):
            if implemented_ref(getattr(type(owner), name, None)) is not None:
                found.append(getattr(owner, name))
    return found


class Config:
    """Configuration, on the workflows' task queue."""

    pair = ActivityRef[str, PairRules]("config.pair")


class Database:
    """The application database, on the workflows' task queue."""

    record_link = ActivityRef[LinkInput, int]("db.record_link")
    find_store_id = ActivityRef[LinkLookup, str | None]("db.find_store_id")
    note_order = ActivityRef[OrderSeen, int]("db.note_order")
    assess_order = ActivityRef[OrderAssessmentInput, OrderAssessment]("db.assess_order")
    record_dead_letter = ActivityRef[DeadLetterInput, int]("db.record_dead_letter")
    resolve_dead_letters = ActivityRef[ResolveDeadLetters, int]("db.resolve_dead_letters")
    remember_customer_intent = ActivityRef[WriteMemo, None]("db.remember_customer_intent")
    abandon_customer_intent = ActivityRef[WriteMemo, None]("db.abandon_customer_intent")
    remember_customer_write = ActivityRef[WriteMemo, None]("db.remember_customer_write")
    customer_echo = ActivityRef[WriteMemo, EchoVerdict]("db.customer_echo")
    customer_links_to_move = ActivityRef[LinkRepoint, list[LinkRow]]("db.customer_links_to_move")
    repoint_customer_links = ActivityRef[LinkRepoint, list[LinkRow]]("db.repoint_customer_links")
    restore_customer_links = ActivityRef[list[LinkRow], None]("db.restore_customer_links")
    find_customer_link = ActivityRef[CustomerLinkLookup, str | None]("db.find_customer_link")


class Ops:
    """Operators' alerts, on the workflows' task queue."""

    alert = ActivityRef[AlertInput, bool]("ops.alert")


class Feeds:
    """The change feeds' reads, on the workflows' task queue."""

    read_orders = ActivityRef[FeedPoll, FeedRead]("feed.read_orders")
    read_returns = ActivityRef[FeedPoll, FeedRead]("feed.read_returns")
    read_customers = ActivityRef[FeedPoll, FeedRead]("feed.read_customers")
    read_products = ActivityRef[FeedPoll, FeedRead]("feed.read_products")


class Checks:
    """Order checks that call no outside system, on the workflows' task queue: their
    results are recorded in the run's history, so a library upgrade cannot change a
    decision a running order already took."""

    cleanse_order = ActivityRef[OrderCleansing, CleansedOrder]("checks.cleanse_order")
    prepare_order = ActivityRef[OrderCleansing, PreparedOrder]("checks.prepare_order")


class Codec:
    """The payload codec's keyed search values, on the workflows' task queue."""

    email_search_value = ActivityRef[str, str]("codec.email_search_value")


class Store:
    """On the store's own task queue (`kentico`, `xcart`)."""

    get_return = ActivityRef[StoreReturnRef, StoreReturn]("store.get_return")
    set_return_status = ActivityRef[ReturnStatusUpdate, None]("store.set_return_status")
    find_product = ActivityRef[StoreProductRef, Product | None]("store.find_product")
    create_product = ActivityRef[StoreProductWrite, StoreProductCreated]("store.create_product")
    update_product = ActivityRef[StoreProductWrite, None]("store.update_product")
    delete_product = ActivityRef[StoreProductRemoval, bool]("store.delete_product")
    remove_product_twins = ActivityRef[StoreProductTwinCheck, list[str]](
        "store.remove_product_twins"
    )
    get_order = ActivityRef[StoreOrderRef, Order]("store.get_order")
    # Both answer the store's notes field as the write left it (`Order.store_notes`), or
    # None when it did not write it: the next write of the run starts from that.
    set_order_status = ActivityRef[StoreStatusUpdate, str | None]("store.set_order_status")
    set_tracking = ActivityRef[TrackingUpdate, str | None]("store.set_tracking")


class Erp:
    """On the ERP's own task queue (`brightpearl`, `acumatica`)."""

    prior_returns = ActivityRef[PriorReturnsLookup, PriorReturns]("erp.prior_returns")
    create_credit = ActivityRef[CreditCreate, str]("erp.create_credit")
    cancel_credit = ActivityRef[CreditRef, None]("erp.cancel_credit")
    restock = ActivityRef[RestockRequest, str]("erp.restock")
    reverse_restock = ActivityRef[ReturnDocRef, None]("erp.reverse_restock")
    refund = ActivityRef[RefundRequest, str]("erp.refund")
    reverse_refund = ActivityRef[ReturnDocRef, None]("erp.reverse_refund")
    remove_return_twins = ActivityRef[ReturnTwinCheck, list[str]]("erp.remove_return_twins")
    unknown_skus = ActivityRef[SkuCheck, list[str]]("erp.unknown_skus")
    find_customer = ActivityRef[CustomerLookup, str | None]("erp.find_customer")
    check_order = ActivityRef[OrderErpCheck, OrderErpFacts]("erp.check_order")
    # `str`: the customer id alone, as results recorded before `CustomerCreated` hold it.
    create_customer = ActivityRef[CustomerCreate, CustomerCreated | str]("erp.create_customer")
    delete_customer = ActivityRef[CustomerRef, None]("erp.delete_customer")
    find_order = ActivityRef[ErpOrderLookup, ErpOrderHandle | None]("erp.find_order")
    create_order = ActivityRef[ErpOrderCreate, ErpOrderCreated]("erp.create_order")
    cancel_order = ActivityRef[ErpOrderRefInput, None]("erp.cancel_order")
    remove_order_twins = ActivityRef[OrderTwinCheck, list[str]]("erp.remove_order_twins")
    record_payment = ActivityRef[PaymentRecord, str]("erp.record_payment")
    reverse_payment = ActivityRef[PaymentReversal, None]("erp.reverse_payment")
    get_shipments = ActivityRef[ErpOrderRefInput, list[Shipment]]("erp.get_shipments")
    orders_for_shipments = ActivityRef[ShipmentEventRef, list[str]]("erp.orders_for_shipments")
    get_product = ActivityRef[ErpProductRef, Product | None]("erp.get_product")
    product_skus = ActivityRef[ErpProductIds, dict[str, str]]("erp.product_skus")


class Catalog:
    """Catalog runs started from a router, on the workflows' task queue."""

    start_runs = ActivityRef[CatalogStarts, list[str]]("catalog.start_runs")


class Inventory:
    """The inventory push: stock reads and writes on the systems' queues, its bookkeeping on the workflows' queue."""

    stock_skus = ActivityRef[ErpIdsInput, dict[str, str]]("inventory.stock_skus")
    read_stock = ActivityRef[StockReadInput, list[Availability]]("inventory.read_stock")
    stock_changed_since = ActivityRef[StockChangesInput, StockChanges](
        "inventory.stock_changed_since"
    )
    set_stock = ActivityRef[StockWriteInput, StockWriteResult]("inventory.set_stock")
    store_orders = ActivityRef[OrderListingInput, OrderListing]("inventory.store_orders")
    order_reservations = ActivityRef[ReservationsInput, list[OrderReservation]](
        "inventory.order_reservations"
    )
    linked_orders = ActivityRef[LinkedOrdersInput, list[str]]("inventory.linked_orders")
    linked_orders_marked = ActivityRef[LinkedOrdersInput, LinkedOrders](
        "inventory.linked_orders_marked"
    )
    linked_since = ActivityRef[LinkedSinceInput, LinkedSince]("inventory.linked_since")
    record_rejections = ActivityRef[StockRejections, int]("inventory.record_rejections")
    lettered_skus = ActivityRef[str, list[str]]("inventory.lettered_skus")
    resolve_letters = ActivityRef[LandedSkus, int]("inventory.resolve_letters")
    request_push = ActivityRef[PushSignalInput, str]("inventory.request_push")


class Customers:
    """Customer records in any of the four systems, on that system's own task queue."""

    get = ActivityRef[CustomerRecordRef, Customer | None]("customers.get")
    by_email = ActivityRef[CustomerEmailLookup, list[Customer]]("customers.by_email")
    same_person = ActivityRef[CustomerEmailLookup, list[Customer]]("customers.same_person")
    write = ActivityRef[CustomerWriteInput, Customer]("customers.write")
    set_active = ActivityRef[CustomerActiveInput, Customer]("customers.set_active")
    open_orders = ActivityRef[CustomerRecordRef, list[str]]("customers.open_orders")
    set_order_customer = ActivityRef[OrderCustomerInput, None]("customers.set_order_customer")
