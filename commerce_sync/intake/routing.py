"""Which workflow an accepted webhook starts or signals. Pure: the receiver and the
relay compute the same routes from the same recorded body.

Store events go to the order workflow `order:{pair}:{store order id}`; ERP events
that name shipments go to an ERP event router, which finds the store orders behind
them and signals their workflows. ERP stock events signal the pair's inventory push
`inventory:{pair}` (signal-with-start), which gathers them before one push.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel

from commerce_sync.config.pairs import PairConfig, rules_of
from commerce_sync.contracts.catalog import (
    CatalogEventInput,
    CatalogSyncInput,
    ProductChanged,
)
from commerce_sync.contracts.customers import CustomerChanged, CustomerSyncInput
from commerce_sync.contracts.erp_events import ErpEventInput
from commerce_sync.contracts.ids import (
    catalog_workflow_id,
    customer_workflow_id,
    inventory_workflow_id,
    order_workflow_id,
    return_workflow_id,
)
from commerce_sync.contracts.inventory import (
    InventoryPushInput,
    PushRequest,
    StockChanged,
)
from commerce_sync.contracts.orders import (
    ORDER_RUN_PATCH_LEVEL,
    CancelRequest,
    OrderSyncInput,
    SyncState,
)
from commerce_sync.contracts.returns import ReturnSyncInput
from commerce_sync.domain.pair_rules import PairRules
from commerce_sync.intake.bodies import MAX_IDS, AcumaticaPush, BrightpearlEvent, StoreEvent
from commerce_sync.systems.brightpearl.idsets import IdSetError, parse_id_set

ACUMATICA_SHIPMENT_QUERIES = ("CS-Shipments",)


class RoutingError(ValueError):
    """The body is valid but cannot be routed (an ID set that does not parse, ...)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class Route:
    workflow: str
    workflow_id: str
    arg: BaseModel
    signal: str | None = None
    signal_arg: BaseModel | None = None
    search: dict[str, str] = field(default_factory=dict)
    rerun: bool = False
    """Start a fresh run when an earlier one completed (a later change must be applied
    again, as for a product); otherwise only a failed run may be started again."""
    announces_creation_of: tuple[str, str, str] | None = None
    """(system, customer id, e-mail) when the route only announces that the customer was
    created: dropped before anything starts when commerce-sync created it itself
    (`customer_writes.created_here`, checked where the route is dispatched)."""


def order_search(pair: str, store_order_id: str) -> dict[str, str]:
    """An order run's search attributes, set with its start: each one a run upserts
    itself is one more visibility write of the Temporal server (about 4 ms of its CPU)."""
    return {
        "IntegrationPair": pair,
        "StoreOrderId": store_order_id,
        "SyncState": SyncState.VALIDATING.value,
    }


def order_input(
    pair: str, store_order_id: str, trigger: str = "webhook", rules: PairRules | None = None
) -> OrderSyncInput:
    """An order run's input, started with `order_search`'s attributes."""
    return OrderSyncInput(
        pair=pair,
        store_order_id=store_order_id,
        trigger=trigger,
        rules=rules,
        searchable_at_start=True,
        patch_level=ORDER_RUN_PATCH_LEVEL,
    )


def order_start_route(
    pair: str, store_order_id: str, trigger: str = "webhook", rules: PairRules | None = None
) -> Route:
    """The start of an order's sync run: a store's `order.created`, and `resync orders`.
    With the pair's `rules` the run starts with them instead of reading them first."""
    arg = order_input(pair, store_order_id, trigger, rules)
    return Route(
        "OrderSync",
        order_workflow_id(pair, store_order_id),
        arg,
        search=order_search(pair, store_order_id),
    )


def order_cancel_route(
    pair: str, store_order_id: str, trigger: str = "webhook", rules: PairRules | None = None
) -> Route:
    """A store's `order.cancelled`: the run's `cancel` signal, or (signal-with-start) a
    run that ends cancelled at once when the order has none."""
    return Route(
        "OrderSync",
        order_workflow_id(pair, store_order_id),
        order_input(pair, store_order_id, trigger, rules),
        "cancel",
        CancelRequest(),
        order_search(pair, store_order_id),
    )


def return_start_route(pair: str, rma_id: str, trigger: str = "webhook") -> Route:
    """A store's `return.requested`: one run per return request; a repeated event finds
    the running run, or a completed one and starts nothing (dispatch's reuse policy)."""
    return Route(
        "ReturnSync",
        return_workflow_id(pair, rma_id),
        ReturnSyncInput(pair=pair, rma_id=rma_id, trigger=trigger),
        search={"IntegrationPair": pair},
    )


def store_routes(event: StoreEvent, pairs: dict[str, PairConfig]) -> list[Route]:
    routes: list[Route] = []
    for pair in pairs.values():
        if pair.store != event.data.store:
            continue
        order_id = event.data.id
        if event.type == "return.requested":
            routes.append(return_start_route(pair.id, event.data.id))
            continue
        if event.type in STORE_CUSTOMER_EVENTS:
            routes.append(customer_route(pair.id, "store", event.data.id))
            continue
        if not event.type.startswith("order."):
            continue  # customers have no process yet: recorded, not started
        rules = rules_of(pair)
        arg = order_input(pair.id, order_id, rules=rules)
        search = order_search(pair.id, order_id)
        workflow_id = order_workflow_id(pair.id, order_id)
        if event.type == "order.created":
            routes.append(order_start_route(pair.id, order_id, rules=rules))
        elif event.type == "order.updated":
            routes.append(Route("OrderSync", workflow_id, arg, "store_order_changed", None, search))
        elif event.type == "order.cancelled":
            routes.append(order_cancel_route(pair.id, order_id, rules=rules))
    return routes


def _erp_pairs(erp: str, pairs: dict[str, PairConfig]) -> list[str]:
    return [pair.id for pair in pairs.values() if pair.erp == erp]


def brightpearl_key(raw_body: bytes) -> str:
    """Brightpearl sends no event id: the same delivery repeated has the same bytes."""
    return hashlib.sha256(raw_body).hexdigest()[:40]


BRIGHTPEARL_SUBSCRIPTIONS = (
    "product.created",
    "product.modified",
    "contact.modified",
    "goods-out-note.modified.shipped",
)
"""The Brightpearl events `brightpearl_routes` acts on, as webhook `subscribeTo` names
(each also receives its more specific events: `product.modified.on-hand-modified`). A
merchant registers these (README); the embedded default asks its sandbox for just these,
so the API is not sent `sales-order.created` or `contact.created` to drop."""


def brightpearl_routes(
    event: BrightpearlEvent, key: str, pairs: dict[str, PairConfig]
) -> list[Route]:
    catalog = brightpearl_catalog_routes(event, key, pairs)
    if catalog:
        return catalog
    stock = brightpearl_stock_routes(event, key, pairs)
    if stock:
        return stock
    customers = brightpearl_customer_routes(event, key, pairs)
    if customers:
        return customers
    full = event.fullEvent or f"{event.resourceType}.{event.lifecycleEvent}"
    if not (event.resourceType == "goods-out-note" and full.endswith("shipped")):
        return []
    try:
        ids = [str(each) for each in parse_id_set(event.id, max_size=MAX_IDS)]
    except IdSetError as exc:
        raise RoutingError("id", str(exc)) from None
    arg = ErpEventInput(
        erp="brightpearl", kind="shipment", pairs=_erp_pairs("brightpearl", pairs), ids=ids
    )
    return [Route("ErpEventRouter", f"erp-event:brightpearl:{key}", arg)]


def acumatica_key(push: AcumaticaPush) -> str:
    """`Id` names the notification; with its `TimeStamp` it names this delivery."""
    return f"{push.Id}:{push.TimeStamp}"


def acumatica_routes(push: AcumaticaPush, pairs: dict[str, PairConfig]) -> list[Route]:
    catalog = acumatica_catalog_routes(push, pairs)
    if catalog:
        return catalog
    stock = acumatica_stock_routes(push, pairs)
    if stock:
        return stock
    customers = acumatica_customer_routes(push, pairs)
    if customers:
        return customers
    if push.Query not in ACUMATICA_SHIPMENT_QUERIES or not push.Inserted:
        return []
    rows: list[dict[str, Any]] = list(push.Inserted)
    arg = ErpEventInput(
        erp="acumatica", kind="shipment", pairs=_erp_pairs("acumatica", pairs), rows=rows
    )
    return [Route("ErpEventRouter", f"erp-event:acumatica:{acumatica_key(push)}", arg)]


# ---- catalog sync: ERP product created or changed -> `catalog:{pair}:{sku}` ------------

ACUMATICA_CATALOG_QUERIES = ("CS-StockItems",)
BRIGHTPEARL_STOCK_ONLY_EVENTS = ("product.modified.on-hand-modified",)


def catalog_route(
    pair: str,
    sku: str,
    *,
    erp_product_id: str = "",
    trigger: str = "webhook",
    erp_event_id: str = "",
) -> Route:
    """Signal-with-start of the SKU's catalog run: a running one reads the product again,
    and a completed one is started afresh (`rerun`), since every change must land."""
    return Route(
        "CatalogSync",
        catalog_workflow_id(pair, sku),
        CatalogSyncInput(pair=pair, sku=sku, erp_product_id=erp_product_id, trigger=trigger),
        "product_changed",
        ProductChanged(trigger=trigger, erp_product_id=erp_product_id, erp_event_id=erp_event_id),
        {"IntegrationPair": pair},
        rerun=True,
    )


def brightpearl_catalog_routes(
    event: BrightpearlEvent, key: str, pairs: dict[str, PairConfig]
) -> list[Route]:
    """`product.created` / `product.modified` name product ids (an ID set), not SKUs: a
    router run looks the SKUs up and starts their catalog runs. Stock-only events are
    the inventory push's."""
    full = event.fullEvent or f"{event.resourceType}.{event.lifecycleEvent}"
    if event.resourceType != "product" or event.lifecycleEvent not in ("created", "modified"):
        return []
    if full in BRIGHTPEARL_STOCK_ONLY_EVENTS:
        return []
    try:
        ids = [str(each) for each in parse_id_set(event.id, max_size=MAX_IDS)]
    except IdSetError as exc:
        raise RoutingError("id", str(exc)) from None
    erp_pairs = _erp_pairs("brightpearl", pairs)
    if not erp_pairs:
        return []
    arg = CatalogEventInput(erp="brightpearl", pairs=erp_pairs, product_ids=ids)
    return [Route("CatalogEventRouter", f"catalog-event:brightpearl:{key}", arg)]


def acumatica_catalog_routes(push: AcumaticaPush, pairs: dict[str, PairConfig]) -> list[Route]:
    """Rows of the stock items query carry the `InventoryID`, which is the SKU: each one
    starts (or signals) its catalog run directly. A row only in `Deleted` is not synced."""
    if push.Query not in ACUMATICA_CATALOG_QUERIES:
        return []
    skus: list[str] = []
    for row in push.Inserted:
        sku = str(row.get("InventoryID") or "").strip()
        if sku and sku not in skus:
            skus.append(sku)
    return [
        catalog_route(pair, sku, erp_product_id=sku, erp_event_id=acumatica_key(push))
        for pair in _erp_pairs("acumatica", pairs)
        for sku in skus
    ]


# ---- inventory push: ERP stock changed -> signal `inventory:{pair}` --------------------

BRIGHTPEARL_STOCK_EVENT = "product.modified.on-hand-modified"
ACUMATICA_STOCK_QUERY = "CS-StockChanges"


def _inventory_route(pair: str, signal: str, signal_arg: BaseModel) -> Route:
    """Signal-with-start of the pair's one inventory push run."""
    return Route(
        "InventoryPush",
        inventory_workflow_id(pair),
        InventoryPushInput(pair=pair),
        signal,
        signal_arg,
        {"IntegrationPair": pair},
    )


def inventory_push_route(pair: str, request: PushRequest) -> Route:
    """A push asked for by the API, the CLI, a schedule or a benchmark."""
    return _inventory_route(pair, "push", request)


def brightpearl_stock_routes(
    event: BrightpearlEvent, key: str, pairs: dict[str, PairConfig]
) -> list[Route]:
    """`product.modified.on-hand-modified` names product ids (an ID set when
    `idSetAccepted`): every Brightpearl pair's push gathers them."""
    full = event.fullEvent or f"{event.resourceType}.{event.lifecycleEvent}"
    if full != BRIGHTPEARL_STOCK_EVENT:
        return []
    try:
        ids = [str(each) for each in parse_id_set(event.id, max_size=MAX_IDS)]
    except IdSetError as exc:
        raise RoutingError("id", str(exc)) from None
    change = StockChanged(erp="brightpearl", erp_ids=ids, event_key=key)
    return [
        _inventory_route(pair, "stock_changed", change) for pair in _erp_pairs("brightpearl", pairs)
    ]


def acumatica_stock_routes(push: AcumaticaPush, pairs: dict[str, PairConfig]) -> list[Route]:
    """`CS-StockChanges` rows (an update is a Deleted + Inserted pair) carry the
    `InventoryID`, which is the SKU."""
    if push.Query != ACUMATICA_STOCK_QUERY:
        return []
    skus: list[str] = []
    for row in [*push.Inserted, *push.Deleted]:
        sku = str(row.get("InventoryID") or "").strip()
        if sku and sku not in skus:
            skus.append(sku)
    if not skus:
        return []
    change = StockChanged(erp="acumatica", skus=skus, event_key=acumatica_key(push))
    return [
        _inventory_route(pair, "stock_changed", change) for pair in _erp_pairs("acumatica", pairs)
    ]


# ---- customer sync: a customer changed in a store or an ERP -> `customer:{pair}:...` ---

STORE_CUSTOMER_EVENTS = ("customer.created", "customer.updated")
BRIGHTPEARL_CUSTOMER_EVENT = "contact.modified"
ACUMATICA_CUSTOMER_QUERY = "CS-Customers"


def customer_route(pair: str, side: str, customer_id: str, event_key: str = "") -> Route:
    """Signal-with-start: a running sync reads the record again; a completed one is
    started afresh (`rerun`), since every change must land."""
    return Route(
        "CustomerSync",
        customer_workflow_id(pair, side, customer_id),
        CustomerSyncInput(
            pair=pair, side="store" if side == "store" else "erp", customer_id=customer_id
        ),
        "customer_changed",
        CustomerChanged(event_key=event_key),
        {"IntegrationPair": pair},
        rerun=True,
    )


def brightpearl_customer_routes(
    event: BrightpearlEvent, key: str, pairs: dict[str, PairConfig]
) -> list[Route]:
    """`contact.modified` names contact ids (an ID set): one sync per contact and pair."""
    full = event.fullEvent or f"{event.resourceType}.{event.lifecycleEvent}"
    if event.resourceType != "contact" or not full.startswith(BRIGHTPEARL_CUSTOMER_EVENT):
        return []
    try:
        ids = [str(each) for each in parse_id_set(event.id, max_size=MAX_IDS)]
    except IdSetError as exc:
        raise RoutingError("id", str(exc)) from None
    return [
        customer_route(pair, "erp", contact_id, key)
        for pair in _erp_pairs("brightpearl", pairs)
        for contact_id in ids
    ]


def acumatica_customer_routes(push: AcumaticaPush, pairs: dict[str, PairConfig]) -> list[Route]:
    """`CS-Customers` rows (an update is a Deleted + Inserted pair) carry the `CustomerID`;
    a row only in `Deleted` (the customer is gone) starts nothing. A row only in
    `Inserted` is the customer's creation (docs/systems/acumatica.md §10: a notification
    carries the changes of one data transaction, an update as a Deleted + Inserted pair):
    its route is marked so that the creation of a customer an order run made, nothing but
    that write coming back, starts no sync (`Route.announces_creation_of`)."""
    if push.Query != ACUMATICA_CUSTOMER_QUERY:
        return []
    ids: list[str] = []
    for row in push.Inserted:
        customer_id = str(row.get("CustomerID") or "").strip()
        if customer_id and customer_id not in ids:
            ids.append(customer_id)
    updated = {str(row.get("CustomerID") or "").strip() for row in push.Deleted}
    emails = {
        str(row.get("CustomerID") or "").strip(): str(row.get("Email") or "")
        for row in push.Inserted
    }
    routes: list[Route] = []
    for pair in _erp_pairs("acumatica", pairs):
        for customer_id in ids:
            route = customer_route(pair, "erp", customer_id, acumatica_key(push))
            if customer_id not in updated:
                route = replace(
                    route,
                    announces_creation_of=("acumatica", customer_id, emails.get(customer_id, "")),
                )
            routes.append(route)
    return routes
