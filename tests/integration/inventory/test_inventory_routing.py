"""ERP stock webhooks -> the pair's inventory push (pure routing, as the receiver and the
relay compute it), next to the shipment and catalog routes of the same ERPs."""

from __future__ import annotations

import pytest

from commerce_sync.config.pairs import load_pairs
from commerce_sync.contracts.inventory import (
    InventoryPushInput,
    PushMode,
    PushRequest,
    StockChanged,
)
from commerce_sync.intake.dispatch import routes_for
from commerce_sync.intake.routing import RoutingError, inventory_push_route

PAIRS = load_pairs()


def brightpearl(full_event: str, ids: str) -> dict[str, str]:
    resource, lifecycle = full_event.split(".")[:2]
    return {
        "accountCode": "sandbox",
        "resourceType": resource,
        "id": ids,
        "lifecycleEvent": lifecycle,
        "fullEvent": full_event,
        "raisedOn": "2026-11-22T10:00:00.000Z",
    }


def acumatica(
    query: str, inserted: list[dict[str, object]], deleted: list[dict[str, object]]
) -> dict[str, object]:
    return {
        "Inserted": inserted,
        "Deleted": deleted,
        "Query": query,
        "CompanyId": "Company",
        "Id": "6b2b0b3e",
        "TimeStamp": 637812345678901234,
    }


def test_brightpearl_on_hand_events_signal_the_push_with_their_id_set() -> None:
    body = brightpearl("product.modified.on-hand-modified", "1001-1003,1007")
    routes = routes_for("brightpearl", body, "key-1", PAIRS)
    assert len(routes) == 1
    route = routes[0]
    assert (route.workflow, route.workflow_id) == ("InventoryPush", "inventory:kentico-brightpearl")
    assert route.arg == InventoryPushInput(pair="kentico-brightpearl")
    assert route.signal == "stock_changed"
    assert route.signal_arg == StockChanged(
        erp="brightpearl", erp_ids=["1001", "1002", "1003", "1007"], event_key="key-1"
    )
    assert route.search == {"IntegrationPair": "kentico-brightpearl"}
    assert not route.rerun  # signal-with-start: the one run of the pair takes it


def test_a_brightpearl_id_set_that_does_not_parse_is_refused() -> None:
    with pytest.raises(RoutingError) as refused:
        routes_for(
            "brightpearl", brightpearl("product.modified.on-hand-modified", "9-3"), "k", PAIRS
        )
    assert refused.value.field == "id"


def test_other_brightpearl_events_keep_their_own_routes() -> None:
    shipped = routes_for(
        "brightpearl", brightpearl("goods-out-note.modified.shipped", "7001"), "k", PAIRS
    )
    assert [route.workflow for route in shipped] == ["ErpEventRouter"]
    changed = routes_for("brightpearl", brightpearl("product.modified", "1001"), "k", PAIRS)
    assert changed and all(route.workflow != "InventoryPush" for route in changed)
    assert routes_for("brightpearl", brightpearl("contact.created", "201"), "k", PAIRS) == []


def test_acumatica_stock_changes_signal_the_push_with_their_skus() -> None:
    body = acumatica(
        "CS-StockChanges",
        inserted=[
            {"InventoryID": "WIDGET-1", "WarehouseID": "WHOLESALE", "QtyAvailable": 5},
            {"InventoryID": "WIDGET-2", "WarehouseID": "RETAIL", "QtyAvailable": 1},
        ],
        deleted=[
            {"InventoryID": "WIDGET-1", "WarehouseID": "WHOLESALE", "QtyAvailable": 7},
            {"InventoryID": "WIDGET-3", "WarehouseID": "WHOLESALE", "QtyAvailable": 2},
        ],
    )
    routes = routes_for("acumatica", body, "ignored", PAIRS)
    assert [(r.workflow, r.workflow_id, r.signal) for r in routes] == [
        ("InventoryPush", "inventory:xcart-acumatica", "stock_changed")
    ]
    assert routes[0].signal_arg == StockChanged(
        erp="acumatica",
        skus=["WIDGET-1", "WIDGET-2", "WIDGET-3"],
        event_key="6b2b0b3e:637812345678901234",
    )


def test_acumatica_pushes_of_other_queries_keep_their_own_routes() -> None:
    assert routes_for("acumatica", acumatica("CS-StockChanges", [], []), "k", PAIRS) == []
    shipments = acumatica("CS-Shipments", [{"OrderType": "SO", "OrderNbr": "000001"}], [])
    assert [r.workflow for r in routes_for("acumatica", shipments, "k", PAIRS)] == [
        "ErpEventRouter"
    ]
    items = acumatica("CS-StockItems", [{"InventoryID": "WIDGET-1"}], [])
    assert all(r.workflow != "InventoryPush" for r in routes_for("acumatica", items, "k", PAIRS))


def test_a_push_request_is_a_signal_with_start_of_the_pair_run() -> None:
    request = PushRequest(request_id="api-1", mode=PushMode.ALL, requested_by="api")
    route = inventory_push_route("xcart-acumatica", request)
    assert (route.workflow, route.workflow_id, route.signal) == (
        "InventoryPush",
        "inventory:xcart-acumatica",
        "push",
    )
    assert route.signal_arg == request
