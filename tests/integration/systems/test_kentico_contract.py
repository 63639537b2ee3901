"""The Kentico connector against the Kentico sandbox over real HTTP."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from pydantic import SecretStr

from commerce_sync.config.pairs import load_pairs
from commerce_sync.config.settings import KenticoSettings, Settings
from commerce_sync.domain.models import Address, Customer, OrderStatus, Product
from commerce_sync.intake.proofs import WebhookProofError, verify_standard_webhook
from commerce_sync.systems.errors import (
    AuthenticationFailed,
    NotFound,
    ThrottledError,
    TransientError,
    ValidationFailed,
)
from commerce_sync.systems.kentico.client import KenticoClient
from commerce_sync.systems.kentico.lookups import KenticoLookups
from commerce_sync.systems.kentico.port import KenticoStorePort
from commerce_sync.systems.ports import StorePort
from sandboxes.server import BackgroundServer

SECRET = "whsec_" + base64.b64encode(b"kentico-contract-test-secret-32b").decode()

SHOPPER_ORDER: dict[str, Any] = {
    "customer": {
        "email": "jane@example.com",
        "first_name": "Jane",
        "last_name": "Doe",
        "phone": "+1 512 555 0100",
    },
    "shipping_address": {
        "line1": "1 Main St",
        "line2": "",
        "city": "Austin",
        "region": "TX",
        "postal_code": "78701",
        "country": "US",
    },
    "lines": [{"sku": "WIDGET-1", "quantity": 2}, {"sku": "WIDGET-3", "quantity": 1}],
    "currency": "USD",
    "shipping_method": "ground",
    "payment": {"method": "card", "reference": "ch_123"},
}


# ---- servers and clients ------------------------------------------------------------


@pytest.fixture
async def control(
    sandboxes: httpx.AsyncClient, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """The Kentico control plane of the shared sandbox server (`sandboxes` resets it)."""
    base = f"{settings.kentico.base_url}/_sandbox"
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
        yield client


@pytest.fixture
def kentico_settings(settings: Settings) -> KenticoSettings:
    return settings.kentico


@pytest.fixture
async def rest(
    kentico_settings: KenticoSettings, control: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """The raw REST service with the sandbox's Basic credentials."""
    auth = (kentico_settings.username, kentico_settings.password.get_secret_value())
    base = f"{kentico_settings.base_url}/rest"
    async with httpx.AsyncClient(base_url=base, auth=auth, timeout=10.0) as http:
        yield http


@pytest.fixture
async def client(
    kentico_settings: KenticoSettings, control: httpx.AsyncClient
) -> AsyncIterator[KenticoClient]:
    async with KenticoClient(kentico_settings, timeout_s=5.0) as kentico:
        yield kentico


async def place(control: httpx.AsyncClient, **changes: Any) -> str:
    response = await control.post("/orders", json={**SHOPPER_ORDER, **changes})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def api_requests(control: httpx.AsyncClient) -> list[dict[str, Any]]:
    return list((await control.get("/requests")).json()["requests"])


async def sandbox_state(control: httpx.AsyncClient) -> dict[str, Any]:
    return dict((await control.get("/state")).json())


# ---- the REST service itself --------------------------------------------------------


async def test_list_shape_where_orderby_topn_columns(rest: httpx.AsyncClient) -> None:
    response = await rest.get(
        "/ecommerce.sku/site/DancingGoat",
        params={
            "format": "json",
            "where": "SKUID > 3 AND SKUNumber LIKE 'widget-%'",
            "orderby": "SKUID DESC",
            "topn": "2",
            "columns": "SKUID,SKUNumber,SKUPrice",
        },
    )
    assert response.status_code == 200
    body = response.json()
    rows = body["ecommerce_skus"][0]["COM_SKU"]
    assert [row["SKUID"] for row in rows] == [10, 9]
    assert set(rows[0]) == {"SKUID", "SKUNumber", "SKUPrice"}
    assert body["ecommerce_skus"][1] == {"TotalRecords": [{"TotalRecords": "7"}]}
    assert '"SKUPrice": 54.99' in response.text  # money as an exact JSON number

    quoted = await rest.get(
        "/ecommerce.customer/currentsite",
        params={"where": "CustomerEmail = N'RITA.returning@example.com' OR CustomerID IN (2)"},
    )
    assert len(quoted.json()["ecommerce_customers"][0]["COM_Customer"]) == 2


async def test_rest_errors_are_wcf_request_error_pages(
    rest: httpx.AsyncClient, control: httpx.AsyncClient
) -> None:
    """What throws inside the REST service is WCF's generic 400 page naming no field
    (Kentico CMS.WebServices `RESTErrorHandler.ProvideFault` does nothing, so .NET's
    `WebErrorHandler.CreateHtmlResponse` answers); unknown type, id or site are 404
    (`ReturnNotFoundStatus`); a refused login is 403 (KEN-REST, Authenticating)."""
    bad_where = await rest.get("/ecommerce.order", params={"where": "NoSuchColumn = 1"})
    assert bad_where.status_code == 400
    assert bad_where.headers["content-type"].startswith("text/html")
    assert "Request Error" in bad_where.text and "NoSuchColumn" not in bad_where.text
    assert (
        await rest.get("/ecommerce.order", params={"where": "OrderID = = 1"})
    ).status_code == 400
    assert (await rest.get("/ecommerce.nothing")).status_code == 404
    assert (await rest.get("/ecommerce.order/999")).status_code == 404
    assert (await rest.get("/ecommerce.order/site/OtherSite")).status_code == 404
    bad_value = await rest.put("/ecommerce.sku/1", json={"SKUAvailableItems": "many"})
    assert bad_value.status_code == 400 and "SKUAvailableItems" not in bad_value.text
    order_id = await place(control)
    no_status = await rest.put(f"/ecommerce.order/{order_id}", json={"OrderStatusID": 99})
    assert no_status.status_code == 400  # the FK constraint refuses it [INFERRED]
    malformed = await rest.post("/ecommerce.sku", content=b"{not json")
    assert malformed.status_code == 400 and malformed.headers["content-type"].startswith(
        "text/html"
    )
    unauthenticated = await rest.get("/ecommerce.sku", auth=("sandbox-rest", "wrong"))
    assert unauthenticated.status_code == 403
    assert unauthenticated.headers["content-type"].startswith("text/plain")


async def test_writes_are_stored_unvalidated(rest: httpx.AsyncClient) -> None:
    """KEN-REST "Manipulating data using REST": "When inserting or updating data via the
    REST service, Xperience does not perform any validation". A create or update answers
    201 with a Location and only the id and GUID (`BaseRESTService.SetObjectInternal`
    and `GetResponse`); the service sets the system fields itself (KEN-REST "Managing
    objects using REST")."""
    created = await rest.post(
        "/ecommerce.sku/currentsite",
        json={"SKUName": "Gadget", "SKUPrice": 1.5, "SKUNumber": "G-1", "SKUID": 555},
    )
    assert created.status_code == 201
    answer = created.json()["COM_SKU"]
    assert set(answer) == {"SKUID", "SKUGUID"} and answer["SKUID"] != 555
    assert created.headers["location"].endswith(f"/rest/ecommerce.sku/{answer['SKUID']}")
    sku = (await rest.get(f"/ecommerce.sku/{answer['SKUID']}")).json()["COM_SKU"][0]
    assert sku["SKUSiteID"] == 1 and sku["SKULastModified"] and sku["SKUName"] == "Gadget"

    updated = await rest.put(
        f"/ecommerce.sku/{sku['SKUID']}",
        json={"SKUAvailableItems": 5, "SKUID": 1, "SKUNoSuchColumn": "x"},
    )
    assert updated.status_code == 201
    assert updated.json() == {"COM_SKU": {"SKUID": sku["SKUID"], "SKUGUID": sku["SKUGUID"]}}
    stored = (await rest.get(f"/ecommerce.sku/{sku['SKUID']}")).json()["COM_SKU"][0]
    assert stored["SKUAvailableItems"] == 5 and "SKUNoSuchColumn" not in stored
    widget = (await rest.get("/ecommerce.sku/1")).json()["COM_SKU"][0]
    assert widget["SKUName"] == "Widget 1"  # the id in the body changed nothing

    nameless = await rest.post("/ecommerce.sku", json={"SKUPrice": 1})  # no SKUName
    assert nameless.status_code == 201
    blank = await rest.post(
        "/ecommerce.address", json={"AddressCustomerID": 1, "AddressLine1": ""}
    )  # no country, an empty line: stored as sent
    assert blank.status_code == 201
    address_id = blank.json()["COM_Address"]["AddressID"]
    address = (await rest.get(f"/ecommerce.address/{address_id}")).json()["COM_Address"][0]
    assert (address["AddressLine1"], address["AddressCountryID"]) == ("", None)

    deleted = await rest.delete(f"/ecommerce.sku/{sku['SKUID']}")
    assert deleted.status_code == 200 and set(deleted.json()["COM_SKU"]) == {"SKUID", "SKUGUID"}
    assert (await rest.get(f"/ecommerce.sku/{sku['SKUID']}")).status_code == 404


# ---- orders -------------------------------------------------------------------------


async def test_get_order_maps_the_shopper_order(
    client: KenticoClient, control: httpx.AsyncClient
) -> None:
    order_id = await place(control)
    order = await client.get_order(order_id)
    assert order.origin.system == "kentico" and order.origin.external_id == order_id
    assert order.number == order_id
    assert order.status is OrderStatus.PENDING
    assert order.currency == "USD"
    assert order.customer.email == "jane@example.com"
    assert order.customer.origin is not None
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("WIDGET-1", 2, Decimal("9.99")),
        ("WIDGET-3", 1, Decimal("19.99")),
    ]
    assert order.total == Decimal("39.97")
    assert order.shipping_address.country == "US" and order.shipping_address.region == "TX"
    assert order.billing_address == order.shipping_address
    assert order.shipping_address.name == "Jane Doe"
    assert order.shipping_method == "ground"
    assert order.payment is not None
    assert (order.payment.method, order.payment.reference) == ("card", "ch_123")
    assert order.payment.amount == Decimal("39.97")
    state = await sandbox_state(control)
    assert state["stock"]["WIDGET-1"] == 98 and state["stock"]["WIDGET-3"] == 99


async def test_shopper_order_unit_price_and_existing_customer(
    client: KenticoClient, control: httpx.AsyncClient
) -> None:
    order_id = await place(
        control,
        customer={"email": "Rita.Returning@example.com"},
        lines=[{"sku": "WIDGET-2", "quantity": 1, "unit_price": "1.2345"}],
        billing_address={
            "line1": "9 Bill St",
            "city": "Toronto",
            "region": "ON",
            "postal_code": "M5H",
            "country": "CA",
        },
    )
    order = await client.get_order(order_id)
    assert order.customer.origin is not None and order.customer.origin.external_id == "1"
    assert order.lines[0].unit_price == Decimal("1.2345")
    assert order.billing_address.country == "CA" and order.billing_address.region == "ON"
    assert order.shipping_address.region == "TX"
    refused = await control.post(
        "/orders", json={**SHOPPER_ORDER, "lines": [{"sku": "NOPE", "quantity": 1}]}
    )
    assert refused.status_code == 422
    too_many = await control.post(
        "/orders", json={**SHOPPER_ORDER, "lines": [{"sku": "WIDGET-1", "quantity": 1000}]}
    )
    assert too_many.status_code == 422


async def test_iter_orders_changed_since_pages_by_key(
    client: KenticoClient, control: httpx.AsyncClient
) -> None:
    first = await place(control)
    await asyncio.sleep(0.01)
    since = datetime.now(UTC)
    ids = [await place(control) for _ in range(5)]
    await control.delete("/requests")
    seen = [order.number async for order in client.iter_orders_changed_since(since, page_size=2)]
    assert seen == ids and first not in seen
    pages = [
        r
        for r in await api_requests(control)
        if r["method"] == "GET" and r["path"].startswith("/rest/ecommerce.order/")
    ]
    assert len(pages) == 3  # 2 + 2 + 1, then stop (a short page is the last)
    assert all("topn=2" in r["query"] and "orderby=OrderID" in r["query"] for r in pages)
    # everything since "now" is nothing
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert [o async for o in client.iter_orders_changed_since(later)] == []


async def test_get_order_call_count(client: KenticoClient, control: httpx.AsyncClient) -> None:
    order_id = await place(control)
    await client.geo()  # countries and states are read once per client
    await control.delete("/requests")
    await client.get_order(order_id)
    calls = await api_requests(control)
    # order, items, order addresses, customer, SKUs: the customer has the order's
    # addresses, its address book (ecommerce.address) is not read (#15)
    assert [c["method"] for c in calls] == ["GET"] * 5
    assert not any("ecommerce.address" in c["path"] for c in calls)
    await control.delete("/requests")
    await client.get_order(order_id)
    # the SKU numbers are reference data, kept for a while (#15): no SKU call
    again = await api_requests(control)
    assert len(again) == 4
    assert not any("ecommerce.sku" in c["path"] for c in again)


async def test_order_reservations_read_a_page_of_orders_in_three_calls(
    client: KenticoClient, control: httpx.AsyncClient
) -> None:
    """The inventory push reads what store orders hold back a page at a time: order rows,
    their items and the SKU numbers, whatever the number of orders (#15)."""
    order_ids = [await place(control) for _ in range(3)]
    pair = load_pairs()["kentico-brightpearl"]
    port = KenticoStorePort(client.settings)
    try:
        await control.delete("/requests")
        found = await port.order_reservations([*order_ids, "999999"], pair)
        calls = await api_requests(control)
    finally:
        await port.aclose()
    assert [c["path"].split("/")[2] for c in calls] == [
        "ecommerce.order",
        "ecommerce.orderitem",
        "ecommerce.sku",
    ]
    assert sorted(r.order_id for r in found) == sorted(order_ids)  # the unknown one is left out
    for reservation in found:
        order = await client.get_order(reservation.order_id)
        assert reservation.open
        assert reservation.placed_at == order.placed_at
        assert reservation.lines == {line.sku: line.quantity for line in order.lines}


async def test_order_reservations_after_the_push_listing_read_no_order_row_again(
    client: KenticoClient, control: httpx.AsyncClient
) -> None:
    """The `COM_Order` rows the push's listing answered stand in for the reservations'
    order rows: only the items are read (the SKU numbers come with the listing's
    neighbours from the cache once known) (#15)."""
    order_ids = [await place(control) for _ in range(2)]
    pair = load_pairs()["kentico-brightpearl"]
    port = KenticoStorePort(client.settings)
    try:
        await port.order_reservations(order_ids, pair)  # SKU numbers now cached
        await control.delete("/requests")
        since = datetime.now(UTC) - timedelta(hours=1)
        stamps = await port.orders_changed_since(since, pair)
        found = await port.order_reservations(order_ids, pair)
        calls = await api_requests(control)
    finally:
        await port.aclose()
    assert set(order_ids) <= {stamp.order_id for stamp in stamps}
    assert [c["path"].split("/")[2] for c in calls] == ["ecommerce.order", "ecommerce.orderitem"]
    assert "OrderLastModified" in calls[0]["query"]
    assert sorted(r.order_id for r in found) == sorted(order_ids)
    assert all(r.open and r.lines == {"WIDGET-1": 2, "WIDGET-3": 1} for r in found)


async def test_set_order_status_with_erp_ref_and_note(
    client: KenticoClient, control: httpx.AsyncClient
) -> None:
    order_id = await place(control)
    previous = await client.set_order_status(
        order_id, OrderStatus.PROCESSING, erp_ref="SO-1001", note="synced to Brightpearl"
    )
    assert previous is OrderStatus.PENDING
    order = await client.get_order(order_id)
    assert order.status is OrderStatus.PROCESSING and order.erp_ref == "SO-1001"
    row = (await sandbox_state(control))["ecommerce.order"][0]
    assert "<StatusNote>synced to Brightpearl</StatusNote>" in row["OrderCustomData"]
    assert row["OrderStatusID"] == 3
    # status only: the ERP number stays
    assert await client.set_order_status(order_id, OrderStatus.SHIPPED) is OrderStatus.PROCESSING
    assert (await client.get_order(order_id)).erp_ref == "SO-1001"


async def test_set_tracking_and_paid(client: KenticoClient, control: httpx.AsyncClient) -> None:
    order_id = await place(control)
    await client.set_tracking(order_id, ["1Z999AA10123456784", "1Z999AA10123456785"], "ups")
    order = await client.get_order(order_id)
    assert order.tracking_numbers == ["1Z999AA10123456784", "1Z999AA10123456785"]
    row = (await sandbox_state(control))["ecommerce.order"][0]
    assert row["OrderTrackingNumber"] == "1Z999AA10123456784, 1Z999AA10123456785"
    assert "<Carrier>ups</Carrier>" in row["OrderCustomData"]
    await client.set_paid(order_id, False)
    assert (await client.get_order(order_id)).payment is None
    await client.set_paid(order_id, True)
    assert (await client.get_order(order_id)).payment is not None


async def test_cancel_fires_order_cancelled(
    client: KenticoClient, control: httpx.AsyncClient
) -> None:
    order_id = await place(control)
    response = await control.post(f"/orders/{order_id}/cancel")
    assert response.status_code == 200
    assert (await client.get_order(order_id)).status is OrderStatus.CANCELLED
    events = (await control.get("/events")).json()["events"]
    assert [e["type"] for e in events] == ["order.created", "order.cancelled"]
    assert events[1]["body"]["data"] == {"id": order_id, "store": "kentico"}
    assert events[1]["id"] == response.json()["event_id"]
    assert (await control.post("/orders/999/cancel")).status_code == 404


async def test_shopper_edit_fires_order_updated(
    client: KenticoClient, control: httpx.AsyncClient
) -> None:
    order_id = await place(control)
    moved = {
        "line1": "2 Oak St",
        "city": "Dallas",
        "region": "TX",
        "postal_code": "75201",
        "country": "US",
    }
    response = await control.put(f"/orders/{order_id}", json={"shipping_address": moved})
    assert response.status_code == 200
    order = await client.get_order(order_id)
    assert (order.shipping_address.line1, order.shipping_address.city) == ("2 Oak St", "Dallas")
    assert order.shipping_address.name == "Jane Doe"
    assert order.billing_address.line1 == "1 Main St"
    events = (await control.get("/events")).json()["events"]
    assert [e["type"] for e in events] == ["order.created", "order.updated"]


async def test_store_port_maps_with_the_pair_lookups(
    kentico_settings: KenticoSettings, control: httpx.AsyncClient
) -> None:
    pair = load_pairs()["kentico-brightpearl"]
    renumbered = pair.model_copy(
        update={
            "kentico": pair.kentico.model_copy(
                update={
                    "order_status_ids": {
                        **pair.kentico.order_status_ids,
                        "pending": 3,
                        "processing": 1,
                    }
                }
            )
        }
    )
    order_id = await place(control)
    port: StorePort = KenticoStorePort(kentico_settings, timeout_s=5.0)
    try:
        assert (await port.get_order(order_id, pair)).status is OrderStatus.PENDING
        assert (await port.get_order(order_id, renumbered)).status is OrderStatus.PROCESSING
        await port.set_order_status(order_id, OrderStatus.PROCESSING, pair, erp_ref="SO-7")
        await port.set_tracking(order_id, ["1Z1"], "ups", pair)
        order = await port.get_order(order_id, pair)
        assert (order.status, order.erp_ref, order.tracking_numbers) == (
            OrderStatus.PROCESSING,
            "SO-7",
            ["1Z1"],
        )
    finally:
        await port.aclose()


# ---- customers ----------------------------------------------------------------------

HOME = Address(
    name="Ann Lee",
    line1="5 Elm St",
    city="Seattle",
    region="WA",
    postal_code="98101",
    country="US",
    phone="+1 206",
)
OFFICE = Address(
    name="Ann Lee",
    line1="1 Bay St",
    line2="Floor 3",
    city="Toronto",
    region="ON",
    postal_code="M5J",
    country="CA",
)


async def test_get_and_find_customer(client: KenticoClient, control: httpx.AsyncClient) -> None:
    rita = await client.get_customer("1")
    assert (rita.email, rita.first_name, rita.company) == (
        "rita.returning@example.com",
        "Rita",
        "Returning Goods LLC",
    )
    assert rita.billing_address is not None and rita.billing_address.region == "TX"
    assert rita.shipping_address == rita.billing_address
    found = await client.find_customer_by_email("RITA.RETURNING@example.com")
    assert found is not None and found.origin == rita.origin
    assert await client.find_customer_by_email("o'nobody@example.com") is None
    with pytest.raises(NotFound):
        await client.get_customer("999")


async def test_create_and_update_customer(
    client: KenticoClient, control: httpx.AsyncClient
) -> None:
    customer = Customer(
        email="ann@example.com",
        first_name="Ann",
        last_name="Lee",
        phone="+1 206",
        company="Lee Co",
        billing_address=OFFICE,
        shipping_address=HOME,
    )
    customer_id = await client.create_customer(customer)
    back = await client.get_customer(customer_id)
    assert back.model_dump(exclude={"origin", "created_at", "updated_at"}) == customer.model_dump(
        exclude={"origin", "created_at", "updated_at"}
    )
    # one address for both roles now: the billing row is reused, the shipping one unflagged
    moved = customer.model_copy(update={"last_name": "Lee-Park", "billing_address": HOME})
    await client.update_customer(customer_id, moved)
    back = await client.get_customer(customer_id)
    assert back.last_name == "Lee-Park"
    assert back.billing_address == HOME and back.shipping_address == HOME
    # an update without addresses leaves them
    await client.update_customer(customer_id, Customer(email="ann@example.com", first_name="Ann"))
    back = await client.get_customer(customer_id)
    assert back.last_name == "" and back.shipping_address == HOME
    await client.delete_customer(customer_id)
    with pytest.raises(NotFound):
        await client.get_customer(customer_id)


async def test_iter_customers_changed_since(
    client: KenticoClient, control: httpx.AsyncClient
) -> None:
    since = datetime.now(UTC)
    created = await control.post(
        "/customers", json={"email": "new@example.com", "first_name": "New"}
    )
    await control.put(
        "/customers/2",
        json={
            "phone": "+1 000",
            "address": {
                "line1": "10 Pike St",
                "city": "Seattle",
                "region": "WA",
                "postal_code": "98101",
                "country": "US",
            },
        },
    )
    emails = [c.email async for c in client.iter_customers_changed_since(since, page_size=1)]
    assert emails == ["otto.often@example.com", "new@example.com"]
    otto = await client.get_customer("2")
    assert otto.phone == "+1 000" and otto.billing_address is not None
    assert otto.billing_address.line1 == "10 Pike St"
    events = (await control.get("/events")).json()["events"]
    assert [(e["type"], e["body"]["data"]["id"]) for e in events] == [
        ("customer.created", created.json()["id"]),
        ("customer.updated", "2"),
    ]


# ---- products and stock -------------------------------------------------------------


async def test_products(client: KenticoClient, control: httpx.AsyncClient) -> None:
    widget = await client.get_product_by_sku("WIDGET-3")
    assert widget is not None
    assert (widget.name, widget.price, widget.currency) == ("Widget 3", Decimal("19.99"), "USD")
    assert await client.get_product_by_sku("NOPE") is None
    since = datetime.now(UTC)
    product = Product(
        sku="GADGET-1", name="Gadget", description="New", price=Decimal("12.3456"), currency="USD"
    )
    product_id = await client.create_product(product)
    fetched = await client.get_product_by_sku("GADGET-1")
    assert fetched is not None and fetched.origin is not None
    assert fetched.origin.external_id == product_id and fetched.price == Decimal("12.3456")
    await client.update_product(
        product_id, product.model_copy(update={"price": Decimal("0.10"), "enabled": False})
    )
    changed = [p async for p in client.iter_products_changed_since(since)]
    assert [(p.sku, p.price, p.enabled) for p in changed] == [("GADGET-1", Decimal("0.10"), False)]
    with pytest.raises(ValidationFailed) as info:
        await client.update_product(product_id, product.model_copy(update={"currency": "EUR"}))
    assert info.value.field == "currency"
    await client.delete_product(product_id)
    assert await client.get_product_by_sku("GADGET-1") is None


async def test_stock(client: KenticoClient, control: httpx.AsyncClient) -> None:
    await client.set_stock("WIDGET-1", 7)
    await client.set_stock(2, 9)
    assert (await client.get_stock("WIDGET-1")).available == 7
    assert (await client.get_stock("WIDGET-2")).on_hand == 9
    with pytest.raises(NotFound):
        await client.set_stock("NOPE", 1)


async def test_set_stock_many_reports_failures_and_goes_on(
    client: KenticoClient, control: httpx.AsyncClient
) -> None:
    await control.post("/faults", json={"match": "PUT /rest/ecommerce.sku/3", "status": 500})
    await control.delete("/requests")
    result = await client.set_stock_many(
        {"WIDGET-1": 11, "WIDGET-3": 33, "NOPE": 5, "WIDGET-4": 44}
    )
    assert result.updated == ["WIDGET-1", "WIDGET-4"]
    assert isinstance(result.failed["WIDGET-3"], TransientError)
    assert isinstance(result.failed["NOPE"], NotFound)
    calls = await api_requests(control)
    assert [(c["method"], c["path"]) for c in calls] == [
        ("GET", "/rest/ecommerce.sku/site/DancingGoat"),
        ("PUT", "/rest/ecommerce.sku/1"),
        ("PUT", "/rest/ecommerce.sku/3"),
        ("PUT", "/rest/ecommerce.sku/4"),
    ]
    stock = (await sandbox_state(control))["stock"]
    assert (stock["WIDGET-1"], stock["WIDGET-3"], stock["WIDGET-4"]) == (11, 100, 44)


# ---- returns ------------------------------------------------------------------------


async def test_returns(client: KenticoClient, control: httpx.AsyncClient) -> None:
    order_id = await place(control)
    response = await control.post(
        "/returns",
        json={"order": order_id, "lines": [{"sku": "WIDGET-1", "quantity": 1}], "reason": "broken"},
    )
    assert response.status_code == 200, response.text
    return_id = response.json()["id"]
    request = await client.get_return(return_id)
    assert request.order_number == order_id and request.reason == "broken"
    assert [(line.sku, line.quantity) for line in request.lines] == [("WIDGET-1", 1)]
    assert request.requested_at is not None
    await client.set_return_status(return_id, "approved", note="under threshold")
    assert await client.get_return_status(return_id) == "approved"
    row = (await sandbox_state(control))["customtableitem.commercesync.returnrequest"][0]
    assert (row["ReturnStatus"], row["ReturnNote"]) == ("approved", "under threshold")
    events = (await control.get("/events")).json()["events"]
    assert (events[-1]["type"], events[-1]["body"]["data"]["id"]) == ("return.requested", return_id)
    too_many = await control.post(
        "/returns", json={"order": order_id, "lines": [{"sku": "WIDGET-1", "quantity": 3}]}
    )
    assert too_many.status_code == 422
    with pytest.raises(NotFound):
        await client.get_return("999")


# ---- errors -------------------------------------------------------------------------


async def test_wrong_credentials_are_authentication_failed(
    kentico_settings: KenticoSettings, control: httpx.AsyncClient
) -> None:
    wrong = KenticoSettings(base_url=kentico_settings.base_url, password=SecretStr("nope"))
    async with KenticoClient(wrong) as bad:
        with pytest.raises(AuthenticationFailed) as info:
            await bad.get_product_by_sku("WIDGET-1")
    assert info.value.status == 403
    assert "nope" not in str(info.value)


async def test_unknown_ids_are_not_found(client: KenticoClient) -> None:
    with pytest.raises(NotFound):
        await client.get_order("999")
    with pytest.raises(NotFound):
        await client.get_order("abc")


async def test_unknown_status_id_is_refused_before_writing(
    kentico_settings: KenticoSettings, control: httpx.AsyncClient
) -> None:
    """Kentico would not name the field (or would store the id as sent), so the
    connector checks the status id against the site's COM_OrderStatus rows first."""
    order_id = await place(control)
    lookups = KenticoLookups(order_status_ids={**KenticoLookups().order_status_ids, "shipped": 99})
    await control.delete("/requests")
    async with KenticoClient(kentico_settings, lookups=lookups) as misconfigured:
        with pytest.raises(ValidationFailed) as info:
            await misconfigured.set_order_status(order_id, OrderStatus.SHIPPED)
        await misconfigured.set_order_status(order_id, OrderStatus.PROCESSING)
    assert info.value.field == "OrderStatusID" and "99" in str(info.value)
    calls = [(c["method"], c["path"]) for c in await api_requests(control)]
    assert calls.count(("GET", "/rest/ecommerce.orderstatus/site/DancingGoat")) == 1
    assert [c for c in calls if c[0] == "PUT"] == [("PUT", f"/rest/ecommerce.order/{order_id}")]


async def test_write_bodies_are_checked_before_sending(
    client: KenticoClient, control: httpx.AsyncClient
) -> None:
    """Kentico stores unvalidated writes (KEN-REST, Manipulating data): a missing
    required column, a value of the wrong type or a misspelt column is refused by the
    connector, naming the column, and nothing is sent."""
    customer_id = 1
    rows = await client.list_customer_address_rows(customer_id)
    await control.delete("/requests")
    lineless = Customer(
        email="nol@example.com",
        first_name="No",
        last_name="Line",
        billing_address=Address(line1="", city="Austin", postal_code="78701", country="US"),
    )
    with pytest.raises(ValidationFailed) as missing:
        await client.create_customer(lineless)
    assert missing.value.field == "AddressLine1"
    with pytest.raises(ValidationFailed) as wrong_type:
        await client.update_address(int(rows[0]["AddressID"]), {"AddressIsBilling": "yes"})
    assert wrong_type.value.field == "AddressIsBilling"
    with pytest.raises(ValidationFailed) as unknown:
        await client.update_address(int(rows[0]["AddressID"]), {"AddressCompany": "ACME"})
    assert unknown.value.field == "AddressCompany"
    writes = [c for c in await api_requests(control) if c["method"] in ("POST", "PUT")]
    assert writes == []  # not even the customer row: its address was checked first


@pytest.mark.parametrize(
    ("fault", "error", "retry_after"),
    [
        ({"status": 429, "retry_after_s": 3}, ThrottledError, 3.0),
        ({"status": 503, "retry_after_s": 2}, ThrottledError, 2.0),
        ({"status": 503}, TransientError, None),
        ({"status": 500}, TransientError, None),
        (
            {"status": 400, "message": "Invalid value for field 'SKUAvailableItems'."},
            ValidationFailed,
            None,
        ),
        ({"status": 403}, AuthenticationFailed, None),
        ({"status": 404}, NotFound, None),
    ],
)
async def test_injected_faults_are_classified(
    client: KenticoClient,
    control: httpx.AsyncClient,
    fault: dict[str, Any],
    error: type[Exception],
    retry_after: float | None,
) -> None:
    await control.post("/faults", json={"match": "PUT /rest/ecommerce.sku/*", "count": 1, **fault})
    with pytest.raises(error) as info:
        await client.set_stock(1, 5)
    assert type(info.value) is error
    if retry_after is not None:
        assert isinstance(info.value, ThrottledError) and info.value.retry_after_s == retry_after
    if error is ValidationFailed:
        assert isinstance(info.value, ValidationFailed) and info.value.field == "SKUAvailableItems"
    await client.set_stock(1, 5)  # the fault was used up: no retry happened inside the connector
    assert (await client.get_stock("WIDGET-1")).available == 5
    puts = [r for r in await api_requests(control) if r["method"] == "PUT"]
    assert [r["status"] for r in puts] == [fault["status"], 201]


async def test_timeout_and_connection_errors_are_transient(
    kentico_settings: KenticoSettings, control: httpx.AsyncClient
) -> None:
    await control.post(
        "/faults", json={"match": "GET /rest/ecommerce.sku*", "delay_s": 1.0, "count": 1}
    )
    async with KenticoClient(kentico_settings, timeout_s=0.2) as slow:
        with pytest.raises(TransientError):
            await slow.get_product_by_sku("WIDGET-1")
    async with KenticoClient(KenticoSettings(base_url="http://127.0.0.1:9"), timeout_s=1.0) as down:
        with pytest.raises(TransientError):
            await down.get_product_by_sku("WIDGET-1")


# ---- webhooks -----------------------------------------------------------------------


class Receiver:
    """A webhook receiver on a real socket that checks the Standard Webhooks proof."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        app = FastAPI()

        @app.post("/webhooks/kentico")
        async def receive(request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            self.deliveries.append((headers, body))
            try:
                verify_standard_webhook(SECRET, headers, body)
            except WebhookProofError:
                return Response(status_code=401)
            return Response(status_code=202)

        self.app = app


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    hook = Receiver()
    with BackgroundServer(hook.app) as server:
        yield hook, f"{server.url}/webhooks/kentico"


async def wait_delivered(control: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    for _ in range(200):
        events = (await control.get("/events")).json()["events"]
        if len(events) >= count and all(e["delivered"] for e in events[:count]):
            return list(events)
        await asyncio.sleep(0.02)
    raise AssertionError(f"events not delivered: {events}")


async def test_webhook_proof_accepted_and_tampering_refused(
    control: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    hook.deliveries.clear()
    refused = await control.post("/webhooks", json={"url": url, "secret": "not-a-whsec-secret"})
    assert refused.status_code == 422
    assert (await control.post("/webhooks", json={"url": url, "token": "t"})).status_code == 422
    assert (await control.post("/webhooks", json={"url": url, "secret": SECRET})).status_code == 200

    order_id = await place(control)
    events = await wait_delivered(control, 1)
    assert events[0]["last_status"] == 202 and events[0]["attempts"] == 1
    headers, body = hook.deliveries[-1]
    assert headers["webhook-id"] == events[0]["id"]
    event = httpx.Response(200, content=body).json()
    assert event["type"] == "order.created" and event["data"] == {
        "id": order_id,
        "store": "kentico",
    }
    assert event["timestamp"].endswith("Z")
    verify_standard_webhook(SECRET, headers, body)  # the proof checks out

    with pytest.raises(WebhookProofError):  # body changed
        verify_standard_webhook(SECRET, headers, body.replace(order_id.encode(), b"999"))
    with pytest.raises(WebhookProofError):  # signature changed
        forged = "v1," + base64.b64encode(b"x" * 32).decode()
        verify_standard_webhook(SECRET, {**headers, "webhook-signature": forged}, body)
    with pytest.raises(WebhookProofError):  # another secret (token)
        other = "whsec_" + base64.b64encode(b"another-secret-another-secret-32").decode()
        verify_standard_webhook(other, headers, body)
    with pytest.raises(WebhookProofError):  # timestamp off by more than five minutes
        stale = str(int(headers["webhook-timestamp"]) - 600)
        verify_standard_webhook(SECRET, {**headers, "webhook-timestamp": stale}, body)
    with pytest.raises(WebhookProofError):  # id changed
        verify_standard_webhook(SECRET, {**headers, "webhook-id": "evt_other"}, body)

    # redelivery: same id, same bytes, fresh signature
    redelivered = await control.post(f"/events/{events[0]['id']}/redeliver")
    assert redelivered.status_code == 200 and redelivered.json()["attempts"] == 2
    again_headers, again_body = hook.deliveries[-1]
    assert again_body == body and again_headers["webhook-id"] == headers["webhook-id"]
    verify_standard_webhook(SECRET, again_headers, again_body)


async def test_receiver_refusal_is_not_retried_forever(
    control: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    wrong = "whsec_" + base64.b64encode(b"the-sandbox-signs-with-this-one!").decode()
    await control.post("/webhooks", json={"url": url, "secret": wrong, "max_attempts": 3})
    hook.deliveries.clear()
    await place(control)
    for _ in range(200):
        events = (await control.get("/events")).json()["events"]
        if events and events[0]["last_status"] is not None:
            break
        await asyncio.sleep(0.02)
    assert events[0]["last_status"] == 401 and not events[0]["delivered"]
    assert events[0]["attempts"] == 1  # a 4xx refusal ends delivery
