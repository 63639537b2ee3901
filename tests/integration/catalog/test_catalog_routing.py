"""Which ERP product webhooks start catalog runs, and how (the pure routing functions the
receiver and the relay share). Stock-only events stay with the inventory push."""

from __future__ import annotations

from typing import Any

import pytest

from commerce_sync.config.pairs import load_pairs
from commerce_sync.contracts.catalog import (
    CatalogEventInput,
    CatalogSyncInput,
    ProductChanged,
)
from commerce_sync.intake.bodies import AcumaticaPush, BrightpearlEvent
from commerce_sync.intake.routing import (
    RoutingError,
    acumatica_routes,
    brightpearl_routes,
    catalog_route,
)

PAIRS = load_pairs()


def bp_event(full_event: str, ids: str) -> BrightpearlEvent:
    resource, lifecycle = full_event.split(".")[:2]
    return BrightpearlEvent(
        accountCode="sandbox",
        resourceType=resource,
        id=ids,
        lifecycleEvent=lifecycle,
        fullEvent=full_event,
        raisedOn="2026-11-22T10:00:00.000Z",
    )


def push(
    query: str, inserted: list[dict[str, Any]], deleted: list[dict[str, Any]]
) -> AcumaticaPush:
    return AcumaticaPush(
        Query=query,
        Inserted=inserted,
        Deleted=deleted,
        Id="6b2b-push",
        TimeStamp=637812345678901234,
    )


@pytest.mark.parametrize("full_event", ["product.created", "product.modified"])
def test_brightpearl_product_events_go_to_the_catalog_router(full_event: str) -> None:
    [route] = brightpearl_routes(bp_event(full_event, "1011-1013,1020"), "k1", PAIRS)
    assert route.workflow == "CatalogEventRouter"
    assert route.workflow_id == "catalog-event:brightpearl:k1"
    assert route.arg == CatalogEventInput(
        erp="brightpearl",
        pairs=["kentico-brightpearl"],
        product_ids=["1011", "1012", "1013", "1020"],
    )
    assert route.signal is None and not route.rerun


@pytest.mark.parametrize(
    "full_event", ["product.modified.on-hand-modified", "product.destroyed", "contact.created"]
)
def test_other_brightpearl_events_start_no_catalog_run(full_event: str) -> None:
    routes = brightpearl_routes(bp_event(full_event, "1011"), "k2", PAIRS)
    assert all(route.workflow != "CatalogEventRouter" for route in routes)
    assert all(not route.workflow_id.startswith("catalog") for route in routes)


def test_a_brightpearl_id_set_that_does_not_parse_is_refused_naming_the_field() -> None:
    with pytest.raises(RoutingError) as refused:
        brightpearl_routes(bp_event("product.created", "12-x"), "k3", PAIRS)
    assert refused.value.field == "id"


def test_acumatica_stock_item_rows_signal_with_start_each_sku_once() -> None:
    routes = acumatica_routes(
        push(
            "CS-StockItems",
            inserted=[
                {"InventoryID": "LAMP-1", "Description": "Lamp"},
                {"InventoryID": "LAMP-2", "Description": "Lamp 2"},
                {"InventoryID": "LAMP-1", "Description": "Lamp, again"},
            ],
            deleted=[{"InventoryID": "LAMP-1", "Description": "Old lamp"}],
        ),
        PAIRS,
    )
    assert [route.workflow_id for route in routes] == [
        "catalog:xcart-acumatica:LAMP-1",
        "catalog:xcart-acumatica:LAMP-2",
    ]
    route = routes[0]
    assert route.workflow == "CatalogSync" and route.signal == "product_changed"
    assert route.rerun, "a completed run must not stop the next change"
    assert route.arg == CatalogSyncInput(
        pair="xcart-acumatica", sku="LAMP-1", erp_product_id="LAMP-1"
    )
    assert route.signal_arg == ProductChanged(
        erp_product_id="LAMP-1", erp_event_id="6b2b-push:637812345678901234"
    )
    assert route.search == {"IntegrationPair": "xcart-acumatica"}


def test_acumatica_rows_only_deleted_or_of_other_queries_start_nothing() -> None:
    gone = push("CS-StockItems", inserted=[], deleted=[{"InventoryID": "LAMP-1"}])
    assert acumatica_routes(gone, PAIRS) == []
    stock = push(
        "CS-StockChanges", inserted=[{"InventoryID": "LAMP-1", "QtyOnHand": 3}], deleted=[]
    )
    assert all(
        not route.workflow_id.startswith("catalog") for route in acumatica_routes(stock, PAIRS)
    )


def test_catalog_route_is_the_same_for_every_caller() -> None:
    route = catalog_route(
        "kentico-brightpearl", "WIDGET-1", erp_product_id="1001", trigger="resync"
    )
    assert route.workflow_id == "catalog:kentico-brightpearl:WIDGET-1"
    assert route.arg == CatalogSyncInput(
        pair="kentico-brightpearl", sku="WIDGET-1", erp_product_id="1001", trigger="resync"
    )
    assert route.rerun and route.signal == "product_changed"
