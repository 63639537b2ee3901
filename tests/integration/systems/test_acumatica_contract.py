"""The Acumatica connector against the Acumatica sandbox, over real HTTP.

Every connector operation, each error class (real validation/auth/not-found errors and
injected faults), the licence throttle and seat limit, call counts from the request
log, and the push-notification proof (static header) on a real receiver.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import SecretStr

from commerce_sync.config.settings import AcumaticaSettings, Settings
from commerce_sync.domain.models import (
    Address,
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Origin,
    Payment,
    ReturnLine,
)
from commerce_sync.intake.acumatica_push import PushBodyError, verify_push
from commerce_sync.intake.proofs import ACUMATICA_TOKEN_HEADER, WebhookProofError
from commerce_sync.systems.acumatica.client import AcumaticaClient
from commerce_sync.systems.errors import (
    AuthenticationFailed,
    NotFound,
    ThrottledError,
    TransientError,
    ValidationFailed,
)
from sandboxes.server import BackgroundServer
from tests.contracts.acumatica_openapi import MOUNT, AcumaticaContract

CONTROL = "/acumatica/_sandbox"
ADDRESS = Address(
    name="Jane Doe",
    line1="1 Main St",
    city="Austin",
    region="TX",
    postal_code="78701",
    country="US",
    phone="+1 512 555 0100",
)


def make_order(
    number: str,
    *,
    sku: str = "WIDGET-1",
    quantity: int = 2,
    status: OrderStatus = OrderStatus.PENDING,
) -> Order:
    lines = [OrderLine(sku=sku, name="Widget", quantity=quantity, unit_price=Decimal("9.99"))]
    net = sum((line.net for line in lines), Decimal(0))
    return Order(
        origin=Origin(system="xcart", external_id=f"x-{number}"),
        number=number,
        status=status,
        placed_at=datetime(2026, 11, 22, 10, 30, tzinfo=UTC),
        currency="USD",
        customer=Customer(email="jane@example.com", first_name="Jane", last_name="Doe"),
        billing_address=ADDRESS,
        shipping_address=ADDRESS.model_copy(update={"line1": "2 Ship Rd"}),
        lines=lines,
        shipping_method="ground",
        shipping_total=Decimal("5.00"),
        tax_total=Decimal("1.65"),
        total=net + Decimal("5.00") + Decimal("1.65"),
        payment=Payment(
            method="card", reference=f"ch_{number}", amount=Decimal("1"), currency="USD"
        ),
    )


@pytest.fixture
async def acu(settings: Settings, sandboxes: httpx.AsyncClient) -> AsyncIterator[AcumaticaClient]:
    async with AcumaticaClient(
        settings.acumatica, timeout_s=5.0, throttle_delay_s=7.0, action_poll_interval_s=0.01
    ) as client:
        yield client


@pytest.fixture
async def cookie_settings(settings: Settings) -> Any:
    return settings.acumatica.model_copy(update={"auth": "cookie"})


async def requests_log(sandboxes: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await sandboxes.get(f"{CONTROL}/requests")
    return list(response.json()["requests"])


async def clear_log(sandboxes: httpx.AsyncClient) -> None:
    await sandboxes.delete(f"{CONTROL}/requests")


async def control(sandboxes: httpx.AsyncClient, path: str, body: Any) -> dict[str, Any]:
    response = await sandboxes.post(f"{CONTROL}{path}", json=body)
    response.raise_for_status()
    return dict(response.json())


def entity_calls(log: list[dict[str, Any]], method: str, entity: str) -> int:
    prefix = f"/entity/Default/24.200.001/{entity}"
    return sum(1 for r in log if r["method"] == method and r["path"].startswith(prefix))


# ---- authentication -------------------------------------------------------------------


async def test_oauth_refreshes_after_expiry_and_repeats_the_call(
    acu: AcumaticaClient, sandboxes: httpx.AsyncClient
) -> None:
    assert await acu.find_customer_by_email("otto.often@example.com") is not None
    await control(sandboxes, "/auth", {"expire_access_tokens": True})
    await clear_log(sandboxes)
    customer = await acu.find_customer_by_email("otto.often@example.com")
    assert customer is not None and customer.first_name == "Otto"
    log = [(r["method"], r["path"], r["status"]) for r in await requests_log(sandboxes)]
    assert log == [
        ("GET", "/entity/Default/24.200.001/Customer", 401),
        ("POST", "/identity/connect/token", 200),
        ("GET", "/entity/Default/24.200.001/Customer", 200),
    ]


async def test_oauth_signs_in_again_when_the_refresh_token_is_refused(
    acu: AcumaticaClient, sandboxes: httpx.AsyncClient
) -> None:
    await acu.get_customer("C000001")
    await control(sandboxes, "/auth", {"expire_access_tokens": True, "expire_refresh_tokens": True})
    await clear_log(sandboxes)
    assert (await acu.get_customer("C000001")).email == "rita.returning@example.com"
    statuses = [(r["path"], r["status"]) for r in await requests_log(sandboxes)]
    assert statuses == [
        ("/entity/Default/24.200.001/Customer/C000001", 401),
        ("/identity/connect/token", 400),
        ("/identity/connect/token", 200),
        ("/entity/Default/24.200.001/Customer/C000001", 200),
    ]


async def test_oauth_refreshes_before_expiry_without_a_401(
    settings: Settings, sandboxes: httpx.AsyncClient
) -> None:
    await control(sandboxes, "/auth", {"token_lifetime_s": 1})
    async with AcumaticaClient(settings.acumatica, timeout_s=5.0) as client:
        await client.get_customer("C000001")
        await asyncio.sleep(1.0)
        await client.get_customer("C000001")
    statuses = [r["status"] for r in await requests_log(sandboxes)]
    assert 401 not in statuses
    assert statuses.count(200) == 4  # password grant, call, refresh grant, call


async def test_cookie_session_logs_out_on_close_freeing_the_seat(
    cookie_settings: Any, sandboxes: httpx.AsyncClient
) -> None:
    async with AcumaticaClient(cookie_settings, timeout_s=5.0) as client:
        await client.get_customer("C000002")
        assert (await sandboxes.get(f"{CONTROL}/auth")).json()["sessions"] == 1
    assert (await sandboxes.get(f"{CONTROL}/auth")).json()["sessions"] == 0
    paths = [r["path"] for r in await requests_log(sandboxes)]
    assert paths[0] == "/entity/auth/login" and paths[-1] == "/entity/auth/logout"


async def test_login_beyond_the_api_user_seats_is_throttled(
    cookie_settings: Any, sandboxes: httpx.AsyncClient
) -> None:
    await control(sandboxes, "/auth", {"api_users": 1})
    first = AcumaticaClient(cookie_settings, timeout_s=5.0, throttle_delay_s=11.0)
    second = AcumaticaClient(cookie_settings, timeout_s=5.0, throttle_delay_s=11.0)
    try:
        await first.get_customer("C000001")
        with pytest.raises(ThrottledError) as caught:
            await second.get_customer("C000001")
        assert "API Login Limit" in caught.value.message
        assert caught.value.retry_after_s == 11.0
    finally:
        await first.aclose()
    async with second:
        assert (await second.get_customer("C000001")).first_name == "Rita"


async def test_expired_cookie_session_logs_in_again(
    cookie_settings: Any, sandboxes: httpx.AsyncClient
) -> None:
    async with AcumaticaClient(cookie_settings, timeout_s=5.0) as client:
        await client.get_customer("C000001")
        await control(sandboxes, "/auth", {"expire_sessions": True})
        await clear_log(sandboxes)
        await client.get_customer("C000001")
        statuses = [(r["path"], r["status"]) for r in await requests_log(sandboxes)]
    assert statuses == [
        ("/entity/Default/24.200.001/Customer/C000001", 401),
        ("/entity/auth/login", 204),
        ("/entity/Default/24.200.001/Customer/C000001", 200),
    ]


@pytest.mark.parametrize("auth", ["oauth", "cookie"])
async def test_wrong_password_is_an_authentication_failure(
    settings: Settings, sandboxes: httpx.AsyncClient, auth: str
) -> None:
    bad = settings.acumatica.model_copy(update={"auth": auth, "password": SecretStr("wrong")})
    async with AcumaticaClient(bad, timeout_s=5.0) as client:
        with pytest.raises(AuthenticationFailed):
            await client.get_customer("C000001")


# ---- customers --------------------------------------------------------------------------


async def test_customer_lifecycle(acu: AcumaticaClient, sandboxes: httpx.AsyncClient) -> None:
    found = await acu.find_customer_by_email("RITA.Returning@example.com")
    assert found is not None and found.origin is not None and found.origin.external_id == "C000001"
    assert await acu.find_customer_by_email("nobody@example.com") is None

    since = datetime.now(UTC)
    new = Customer(
        email="new.person@example.com",
        first_name="New",
        last_name="Person",
        phone="+1 555",
        billing_address=ADDRESS,
        shipping_address=ADDRESS.model_copy(update={"line1": "9 Ship"}),
    )
    customer_id = await acu.create_customer(new)
    assert customer_id == "C000003"
    read = await acu.get_customer(customer_id)
    assert (read.email, read.first_name, read.last_name, read.phone) == (
        "new.person@example.com",
        "New",
        "Person",
        "+1 555",
    )
    assert read.billing_address == ADDRESS
    assert read.shipping_address is not None and read.shipping_address.line1 == "9 Ship"

    await acu.update_customer(customer_id, new.model_copy(update={"last_name": "Renamed"}))
    assert (await acu.get_customer(customer_id)).last_name == "Renamed"
    await acu.deactivate_customer(customer_id)
    assert (await acu.get_customer(customer_id)).active is False
    await acu.activate_customer(customer_id)
    assert (await acu.get_customer(customer_id)).active is True

    changed = [
        c.origin.external_id async for c in acu.iter_customers_changed_since(since) if c.origin
    ]
    assert changed == [customer_id]

    await acu.delete_customer(customer_id)
    with pytest.raises(NotFound):
        await acu.get_customer(customer_id)
    await acu.delete_customer(customer_id)  # already gone: fine


async def test_customer_paging_reads_every_page(
    settings: Settings, sandboxes: httpx.AsyncClient
) -> None:
    async with AcumaticaClient(settings.acumatica, timeout_s=5.0, page_size=1) as client:
        since = datetime(2001, 1, 1, tzinfo=UTC)
        ids = [
            c.origin.external_id
            async for c in client.iter_customers_changed_since(since)
            if c.origin
        ]
    assert ids == ["C000001", "C000002"]
    gets = [r for r in await requests_log(sandboxes) if r["path"].endswith("/Customer")]
    assert len(gets) == 3  # two full pages of one, then an empty page


async def test_invalid_customer_email_names_the_field(acu: AcumaticaClient) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await acu.create_customer(Customer(email="not an email", first_name="X"))
    assert caught.value.status == 422
    assert caught.value.field == "MainContact.Email"


async def test_update_of_a_missing_customer_breaks_if_match(acu: AcumaticaClient) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await acu.update_customer("C999999", Customer(email="a@b.com"))
    assert caught.value.status == 412


async def test_a_customer_with_orders_cannot_be_deleted(acu: AcumaticaClient) -> None:
    await acu.create_sales_order(make_order("DEL-1"), "C000001")
    with pytest.raises(ValidationFailed) as caught:
        await acu.delete_customer("C000001")
    assert caught.value.status == 500


# ---- sales orders -----------------------------------------------------------------------


async def test_create_sales_order_is_idempotent_and_reads_back(
    acu: AcumaticaClient, sandboxes: httpx.AsyncClient
) -> None:
    order = make_order("1001")
    nbr = await acu.create_sales_order(order, "C000001")
    assert nbr == "000001"
    assert await acu.create_sales_order(order, "C000001") == nbr
    log = await requests_log(sandboxes)
    assert entity_calls(log, "PUT", "SalesOrder") == 1
    assert entity_calls(log, "GET", "SalesOrder") == 2

    assert await acu.find_order_by_customer_order("1001") == ("SO", nbr)
    assert await acu.find_order_by_customer_order("9999") is None

    read = await acu.get_order("SO", nbr)
    assert read.origin.external_id == "SO/000001" and read.erp_ref == nbr
    assert read.number == "1001"
    assert read.status == OrderStatus.PENDING
    assert read.lines[0].sku == "WIDGET-1" and read.lines[0].quantity == 2
    assert read.lines[0].unit_price == Decimal("9.99")
    assert (read.shipping_total, read.tax_total, read.total) == (
        Decimal("5.00"),
        Decimal("1.65"),
        order.total,
    )
    assert read.shipping_address == order.shipping_address
    assert read.billing_address == order.billing_address
    assert read.shipping_method == "ground"
    assert read.placed_at.date() == order.placed_at.date()
    assert read.customer.email == "jane@example.com"


async def test_cancel_order_invokes_the_action_and_polls(
    acu: AcumaticaClient, sandboxes: httpx.AsyncClient
) -> None:
    since = datetime.now(UTC)
    nbr = await acu.create_sales_order(make_order("1002"), "C000002")
    await clear_log(sandboxes)
    await acu.cancel_order("SO", nbr)
    log = [
        (r["method"], r["path"].rsplit("/status/", 1)[0], r["status"])
        for r in await requests_log(sandboxes)
    ]
    assert ("POST", "/entity/Default/24.200.001/SalesOrder/CancelSalesOrder", 202) in log
    assert ("GET", "/entity/Default/24.200.001/SalesOrder/CancelSalesOrder", 204) in log
    assert (await acu.get_order("SO", nbr)).status == OrderStatus.CANCELLED
    await acu.cancel_order("SO", nbr)  # idempotent
    # a canceled order no longer blocks a new order for the same store number
    assert await acu.find_order_by_customer_order("1002") is None
    changed = [o.erp_ref async for o in acu.iter_orders_changed_since(since)]
    assert changed == [nbr]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sku": "NO-SUCH-SKU"}, "Details[0].InventoryID"),
        ({"shipping_method": "teleport"}, "ShipVia"),
        ({"country": "ZZ"}, "ShipToAddress.Country"),
    ],
)
async def test_order_validation_errors_name_the_field(
    acu: AcumaticaClient, change: dict[str, str], field: str
) -> None:
    order = make_order("BAD-1", sku=change.get("sku", "WIDGET-1"))
    if "shipping_method" in change:
        order = order.model_copy(update={"shipping_method": change["shipping_method"]})
    if "country" in change:
        order = order.model_copy(
            update={
                "shipping_address": order.shipping_address.model_copy(
                    update={"country": change["country"]}
                )
            }
        )
    with pytest.raises(ValidationFailed) as caught:
        await acu.create_sales_order(order, "C000001")
    assert caught.value.status == 422
    assert caught.value.field == field
    assert "cannot be found" in caught.value.message


async def test_missing_order_is_not_found(acu: AcumaticaClient) -> None:
    with pytest.raises(NotFound):
        await acu.get_order("SO", "999999")


async def test_shipped_order_cannot_be_canceled_permanently(
    acu: AcumaticaClient, sandboxes: httpx.AsyncClient
) -> None:
    nbr = await acu.create_sales_order(make_order("1003"), "C000001")
    await control(sandboxes, "/shipments", {"order": nbr, "tracking": "1Z1", "carrier": "ups"})
    with pytest.raises(ValidationFailed) as caught:
        await acu.cancel_order("SO", nbr)
    assert caught.value.status == 500
    assert "confirmed shipments" in caught.value.message


async def refused_action(
    sandboxes: httpx.AsyncClient,
    account: AcumaticaSettings,
    entity: str,
    action: str,
    keys: dict[str, str],
) -> str:
    """Invoke an action over raw HTTP (a session of its own, its cookies on its own
    client) and return the error its status answers; fails if it was not refused."""
    base = "/acumatica/entity"
    async with httpx.AsyncClient(base_url=sandboxes.base_url, timeout=10.0) as session:
        login = await session.post(
            f"{base}/auth/login",
            json={
                "name": account.username,
                "password": account.password.get_secret_value(),
                "company": account.tenant,
            },
        )
        assert login.status_code == 204
        try:
            body = {"entity": {k: {"value": v} for k, v in keys.items()}, "parameters": {}}
            invoked = await session.post(f"{base}/Default/24.200.001/{entity}/{action}", json=body)
            assert invoked.status_code == 202
            status = await session.get(
                invoked.headers["location"].removeprefix(session.base_url.path)
            )
            assert status.status_code == 500, f"{entity}/{action} was not refused"
            return str(status.json()["exceptionMessage"])
        finally:
            await session.post(f"{base}/auth/logout")


async def test_a_refused_action_changes_nothing(
    acu: AcumaticaClient, settings: Settings, sandboxes: httpx.AsyncClient
) -> None:
    """Acumatica refuses an action whole; the sandbox's actions check before they change
    anything (no copy of the database is kept to roll back), so every refusal below
    leaves records, stock and push notifications as they were."""
    order = make_order("1004")
    shipped = await acu.create_sales_order(order, "C000001")
    await control(sandboxes, "/shipments", {"order": shipped, "tracking": "1Z4", "carrier": "ups"})
    cancelled = await acu.create_sales_order(make_order("1005"), "C000001")
    await acu.cancel_order("SO", cancelled)
    open_order = await acu.create_sales_order(make_order("1006"), "C000001")
    payment = Payment(method="card", reference="ch_1006", amount=Decimal("1"), currency="USD")
    released = await acu.record_payment("SO", open_order, payment, customer_id="C000001")
    state = (await sandboxes.get(f"{CONTROL}/state")).json()
    shipment = next(
        s for s in state["entities"]["Shipment"] if s["Orders"][0]["OrderNbr"] == shipped
    )
    assert shipment["Status"] == "Confirmed"
    pushes = len((await sandboxes.get(f"{CONTROL}/events")).json()["events"])

    refusals = [
        ("SalesOrder", "CancelSalesOrder", {"OrderType": "SO", "OrderNbr": shipped}),
        ("SalesOrder", "SalesOrderCreateShipment", {"OrderType": "SO", "OrderNbr": cancelled}),
        ("SalesOrder", "OpenSalesOrder", {"OrderType": "SO", "OrderNbr": open_order}),
        ("Shipment", "ConfirmShipment", {"ShipmentNbr": shipment["ShipmentNbr"]}),
        ("Payment", "ReleasePayment", {"Type": "Payment", "ReferenceNbr": released}),
    ]
    messages = [
        await refused_action(sandboxes, settings.acumatica, *refusal) for refusal in refusals
    ]
    assert "confirmed shipments" in messages[0]
    assert "cannot be released" in messages[4]

    after = (await sandboxes.get(f"{CONTROL}/state")).json()
    assert after["entities"] == state["entities"] and after["stock"] == state["stock"]
    assert len((await sandboxes.get(f"{CONTROL}/events")).json()["events"]) == pushes


# ---- injected faults and throttling ---------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "error", "retry_after"),
    [
        ({"status": 503}, TransientError, None),
        ({"status": 500}, TransientError, None),
        ({"status": 429, "retry_after_s": 3}, ThrottledError, 3.0),
        ({"status": 429}, ThrottledError, 7.0),
        ({"status": 422}, ValidationFailed, None),
        ({"status": 401}, AuthenticationFailed, None),
    ],
)
async def test_injected_faults_are_classified(
    acu: AcumaticaClient,
    sandboxes: httpx.AsyncClient,
    rule: dict[str, Any],
    error: type[Exception],
    retry_after: float | None,
) -> None:
    await acu.get_customer("C000001")  # authenticated first
    await control(sandboxes, "/faults", {"match": "GET /entity/*/Customer/*", **rule})
    with pytest.raises(error) as caught:
        await acu.get_customer("C000001")
    assert type(caught.value) is error
    if retry_after is not None:
        assert isinstance(caught.value, ThrottledError)
        assert caught.value.retry_after_s == retry_after


async def test_timeout_is_transient(settings: Settings, sandboxes: httpx.AsyncClient) -> None:
    async with AcumaticaClient(settings.acumatica, timeout_s=0.3) as client:
        await client.get_customer("C000001")
        await control(sandboxes, "/faults", {"match": "GET /entity/*", "delay_s": 1.0, "count": 1})
        with pytest.raises(TransientError):
            await client.get_customer("C000001")


async def test_requests_per_minute_throttle_answers_429_with_the_licence_text(
    acu: AcumaticaClient, sandboxes: httpx.AsyncClient
) -> None:
    await control(sandboxes, "/throttle", {"requests_per_minute": 3})
    await acu.get_customer("C000001")  # token + call
    await acu.get_customer("C000001")
    with pytest.raises(ThrottledError) as caught:
        await acu.get_customer("C000001")
    assert "exceeded the limit imposed by the license" in caught.value.message
    assert caught.value.retry_after_s == 7.0


# ---- payments and refunds -----------------------------------------------------------------


async def test_record_and_void_payment(acu: AcumaticaClient, sandboxes: httpx.AsyncClient) -> None:
    order = make_order("2001")
    nbr = await acu.create_sales_order(order, "C000001")
    payment = Payment(method="card", reference="ch_2001", amount=order.total, currency="USD")
    ref = await acu.record_payment("SO", nbr, payment, customer_id="C000001")
    assert await acu.record_payment("SO", nbr, payment) == ref
    log = await requests_log(sandboxes)
    assert entity_calls(log, "PUT", "Payment") == 1
    assert await acu.get_payment_status(ref) == "Open"

    read = await acu.get_order("SO", nbr)
    assert read.payment is not None
    assert (read.payment.reference, read.payment.amount, read.payment.method) == (
        "ch_2001",
        order.total,
        "card",
    )
    assert read.payment.origin is not None and read.payment.origin.external_id == f"Payment/{ref}"
    stored = await acu.get_payment(ref)
    assert stored.order_ref == f"SO/{nbr}" and stored.amount == order.total

    await acu.void_payment(ref)
    assert await acu.get_payment_status(ref) == "Voided"
    await acu.void_payment(ref)  # idempotent
    after = (await acu.get_order("SO", nbr)).payment
    # only the order's own payment fields remain: no payment document is applied any more
    assert after is not None and after.origin is None and after.reference == "ch_2001"


async def test_payment_over_the_order_balance_is_refused(acu: AcumaticaClient) -> None:
    order = make_order("2002")
    nbr = await acu.create_sales_order(order, "C000001")
    too_much = Payment(method="card", reference="ch_2002", amount=order.total + 1, currency="USD")
    with pytest.raises(ValidationFailed) as caught:
        await acu.record_payment("SO", nbr, too_much)
    assert caught.value.field == "OrdersToApply[0].AppliedToOrder"


async def test_a_payment_landing_between_the_lookup_and_the_create_is_the_one_returned(
    acu: AcumaticaClient, sandboxes: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry's lookup runs before its earlier attempt's lost create lands (the chaos
    bench met it): the retry's create is refused, the order being paid, and the payment
    that landed is returned instead of a failure."""
    order = make_order("2003")
    nbr = await acu.create_sales_order(order, "C000001")
    payment = Payment(method="card", reference="ch_2003", amount=order.total, currency="USD")
    landed = await acu.record_payment("SO", nbr, payment, customer_id="C000001")
    looked_up = acu._find_payment
    calls = 0

    async def lookup_before_it_landed(doc_type: str, reference: str) -> Any:
        nonlocal calls
        calls += 1
        return None if calls == 1 else await looked_up(doc_type, reference)

    monkeypatch.setattr(acu, "_find_payment", lookup_before_it_landed)
    assert await acu.record_payment("SO", nbr, payment, customer_id="C000001") == landed
    assert calls == 2
    assert entity_calls(await requests_log(sandboxes), "PUT", "Payment") == 2  # one refused


async def test_refund_and_void_refund(acu: AcumaticaClient, sandboxes: httpx.AsyncClient) -> None:
    ref = await acu.refund("C000002", Decimal("12.34"), "USD", "rf_1")
    assert await acu.refund("C000002", Decimal("12.34"), "USD", "rf_1") == ref
    assert await acu.get_payment_status(ref, "Refund") == "Closed"
    refund = await acu.get_payment(ref, "Refund")
    assert refund.amount == Decimal("12.34") and refund.kind == "refund"
    await acu.void_refund(ref)
    assert await acu.get_payment_status(ref, "Refund") == "Voided"


# ---- shipments, stock, products -----------------------------------------------------------


async def test_shipment_tracking_reaches_the_connector(
    acu: AcumaticaClient, sandboxes: httpx.AsyncClient
) -> None:
    nbr = await acu.create_sales_order(make_order("3001", quantity=3), "C000001")
    assert await acu.get_shipments("SO", nbr) == []
    shipped = await control(
        sandboxes,
        "/shipments",
        {"order": "3001", "tracking": "1Z999AA10123456784", "carrier": "ups"},
    )
    assert shipped["order_nbr"] == nbr and shipped["status"] == "Completed"
    shipments = await acu.get_shipments("SO", nbr)
    assert len(shipments) == 1
    shipment = shipments[0]
    assert shipment.tracking_numbers == ["1Z999AA10123456784"]
    assert shipment.carrier == "ups" and shipment.order_ref == f"SO/{nbr}"
    assert [(line.sku, line.quantity) for line in shipment.lines] == [("WIDGET-1", 3)]
    assert (await acu.get_order("SO", nbr)).status == OrderStatus.SHIPPED
    events = (await sandboxes.get(f"{CONTROL}/events")).json()["events"]
    pushed = [e for e in events if e["id"] == shipped["event_id"]]
    assert pushed[0]["type"] == "CS-Shipments"
    assert pushed[0]["body"]["Inserted"][0]["TrackingNbr"] == "1Z999AA10123456784"
    levels = await acu.get_availability(["WIDGET-1"])
    assert (levels[0].on_hand, levels[0].available) == (97, 97)


async def test_stock_items_and_availability(
    acu: AcumaticaClient, sandboxes: httpx.AsyncClient
) -> None:
    products = await acu.get_stock_items(["WIDGET-1", "WIDGET-2", "NOPE"])
    assert [(p.sku, p.price) for p in products] == [
        ("WIDGET-1", Decimal("9.99")),
        ("WIDGET-2", Decimal("14.99")),
    ]

    since = datetime.now(UTC)
    await acu.create_sales_order(make_order("4001", sku="WIDGET-3", quantity=4), "C000001")
    stock = await control(sandboxes, "/stock", {"sku": "WIDGET-5", "on_hand": 7})
    assert stock["event_id"] is not None
    changed = {level.sku: level for level in await acu.get_availability_changed_since(since)}
    assert set(changed) == {"WIDGET-3", "WIDGET-5"}
    assert (changed["WIDGET-3"].on_hand, changed["WIDGET-3"].available) == (100, 96)
    assert (changed["WIDGET-5"].on_hand, changed["WIDGET-5"].available) == (7, 7)

    many = await acu.get_availability([f"WIDGET-{n}" for n in range(1, 11)] + ["NOPE"])
    assert len(many) == 10
    per_warehouse = await acu.get_warehouse_availability("WIDGET-3")
    assert [(s.warehouse, s.on_hand, s.available) for s in per_warehouse] == [
        ("WHOLESALE", 100, 96)
    ]
    with pytest.raises(ValidationFailed):
        await acu.get_warehouse_availability("NOPE")


async def test_stock_items_changed_since(
    acu: AcumaticaClient, sandboxes: httpx.AsyncClient
) -> None:
    since = datetime.now(UTC)
    await control(
        sandboxes, "/products", {"sku": "WIDGET-7", "name": "Widget Seven", "price": "31.50"}
    )
    changed = [p async for p in acu.iter_stock_items_changed_since(since)]
    assert [(p.sku, p.name, p.price) for p in changed] == [
        ("WIDGET-7", "Widget Seven", Decimal("31.50"))
    ]


async def test_receive_stock_and_reverse_it(acu: AcumaticaClient) -> None:
    receipt = await acu.receive_stock([("WIDGET-8", 5)], reference="rma-1")
    assert await acu.receive_stock([("WIDGET-8", 5)], reference="rma-1") == receipt
    assert (await acu.get_availability(["WIDGET-8"]))[0].on_hand == 105
    adjustment = await acu.reverse_receipt(receipt)
    assert await acu.reverse_receipt(receipt) == adjustment
    assert (await acu.get_availability(["WIDGET-8"]))[0].on_hand == 100


# ---- returns ------------------------------------------------------------------------------


async def test_return_order_receipt_and_cancel(
    acu: AcumaticaClient, sandboxes: httpx.AsyncClient
) -> None:
    nbr = await acu.create_sales_order(make_order("5001", sku="WIDGET-9", quantity=3), "C000001")
    await control(sandboxes, "/shipments", {"order": nbr, "tracking": "T1"})
    lines = [ReturnLine(sku="WIDGET-9", quantity=2, reason="damaged")]
    rc = await acu.create_return_order("SO", nbr, lines, "RMA-1")
    assert await acu.create_return_order("SO", nbr, lines, "RMA-1") == rc
    returned = await acu.get_order("RC", rc)
    assert returned.lines[0].quantity == 2 and returned.total == Decimal("19.98")
    assert (await acu.get_availability(["WIDGET-9"]))[0].on_hand == 97
    receipt = await acu.create_receipt("RC", rc)
    assert await acu.create_receipt("RC", rc) == receipt
    assert (await acu.get_availability(["WIDGET-9"]))[0].on_hand == 99
    assert await acu.get_order_status("RC", rc) == "Completed"
    # Undone: the receipt corrected (goods off hand again) and deleted; the return
    # order is Open again, so it can be cancelled.
    assert await acu.undo_receipt("RC", rc) == receipt
    assert await acu.undo_receipt("RC", rc) is None
    assert (await acu.get_availability(["WIDGET-9"]))[0].on_hand == 97
    assert await acu.get_order_status("RC", rc) == "Open"
    await acu.cancel_return_order("RC", rc)
    assert await acu.get_order_status("RC", rc) == "Canceled"

    other = await acu.create_return_order(
        "SO", nbr, [ReturnLine(sku="WIDGET-9", quantity=1)], "RMA-2"
    )
    await acu.cancel_return_order("RC", other)
    assert await acu.get_order_status("RC", other) == "Canceled"
    with pytest.raises(ValidationFailed):
        await acu.create_return_order("SO", nbr, [ReturnLine(sku="WIDGET-1", quantity=1)], "RMA-3")


async def test_credit_memo(acu: AcumaticaClient, sandboxes: httpx.AsyncClient) -> None:
    lines = [OrderLine(sku="WIDGET-2", name="Widget 2", quantity=2, unit_price=Decimal("14.99"))]
    memo = await acu.create_credit_memo("C000001", lines, "USD", "RMA-7", original=("SO", "000001"))
    assert await acu.create_credit_memo("C000001", lines, "USD", "RMA-7") == memo
    record = await acu.get_credit_memo(memo)
    assert record["Type"]["value"] == "Credit Memo" and record["Status"]["value"] == "Open"
    assert Decimal(str(record["Amount"]["value"])) == Decimal("29.98")
    assert entity_calls(await requests_log(sandboxes), "PUT", "SalesInvoice") == 1


# ---- push notifications -----------------------------------------------------------------


class Receiver:
    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> dict[str, str]:
            self.deliveries.append((dict(request.headers), await request.body()))
            return {"status": "ok"}

        self.server = BackgroundServer(app)


async def wait_delivered(sandboxes: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    for _ in range(200):
        events = (await sandboxes.get(f"{CONTROL}/events")).json()["events"]
        event = next(e for e in events if e["id"] == event_id)
        if event["delivered"]:
            return dict(event)
        await asyncio.sleep(0.02)
    raise AssertionError(f"event {event_id} was not delivered")


async def test_push_notification_carries_the_static_header(sandboxes: httpx.AsyncClient) -> None:
    refused = await sandboxes.post(f"{CONTROL}/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    assert refused.status_code == 422

    receiver = Receiver()
    with receiver.server:
        await control(
            sandboxes, "/webhooks", {"url": f"{receiver.server.url}/hook", "header_value": "s3cret"}
        )
        event_id = (await control(sandboxes, "/stock", {"sku": "WIDGET-2", "on_hand": 3}))[
            "event_id"
        ]
        await wait_delivered(sandboxes, event_id)
        redelivered = await sandboxes.post(f"{CONTROL}/events/{event_id}/redeliver")
        assert redelivered.json()["attempts"] == 2

    assert len(receiver.deliveries) == 2
    (headers, body), (headers_again, body_again) = receiver.deliveries
    assert headers_again[ACUMATICA_TOKEN_HEADER.lower()] == "s3cret"
    assert body_again == body and headers[ACUMATICA_TOKEN_HEADER.lower()] == "s3cret"
    notification = verify_push("s3cret", headers, body)
    assert notification.query == "CS-StockChanges"
    assert notification.inserted == [
        {"InventoryID": "WIDGET-2", "WarehouseID": "WHOLESALE", "QtyOnHand": 3, "QtyAvailable": 3}
    ]
    assert notification.deleted[0]["QtyOnHand"] == 100  # an update: Deleted + Inserted
    assert notification.id and notification.timestamp > 0

    with pytest.raises(WebhookProofError):
        verify_push("s3cret", {**headers, ACUMATICA_TOKEN_HEADER.lower(): "guess"}, body)
    without = {k: val for k, val in headers.items() if k != ACUMATICA_TOKEN_HEADER.lower()}
    with pytest.raises(WebhookProofError):
        verify_push("s3cret", without, body)
    with pytest.raises(PushBodyError):
        verify_push("s3cret", headers, body.replace(b'"Id"', b'"Xd"'))
    with pytest.raises(PushBodyError):
        verify_push("s3cret", headers, body[:-5])


# ---- every record, whole, as the OpenAPI definition has it ------------------------------

EXPANDS = {
    "Customer": "MainContact,MainContact/Address,BillingContact,BillingContact/Address,"
    "ShippingContact,ShippingContact/Address,PrimaryContact,PrimaryContact/Address,"
    "Contacts,Attributes",
    "SalesOrder": "Details,Payments,Shipments,TaxDetails,DiscountDetails,BillToAddress,"
    "ShipToAddress,BillToContact,ShipToContact,Totals,FinancialSettings,ShippingSettings",
    "StockItem": "WarehouseDetails,CrossReferences",
    "Shipment": "Details,Orders,Packages",
    "Payment": "OrdersToApply,DocumentsToApply,ApplicationHistory",
    "SalesInvoice": "Details,BillToAddress,BillToContact",
    "InventoryReceipt": "Details",
    "InventoryAdjustment": "Details",
}


async def test_every_record_fully_expanded_follows_the_openapi_definition(
    acu: AcumaticaClient, settings: Settings, sandboxes: httpx.AsyncClient
) -> None:
    """One of everything the connector makes (an order shipped, paid and returned, a
    refund, a credit memo, a receipt and its reversal, a customer), then every entity
    read whole, every detail and linked entity expanded, and both inquiries, each answer
    checked against the definition (the connector's own calls by the `OpenAPICheck`
    around the sandbox, tests/conftest.py)."""
    order = make_order("7001", quantity=3)
    assert order.payment is not None
    nbr = await acu.create_sales_order(order, "C000001")
    await acu.record_payment("SO", nbr, order.payment, customer_id="C000001")
    await control(sandboxes, "/shipments", {"order": nbr, "tracking": "T7", "carrier": "ups"})
    rc = await acu.create_return_order("SO", nbr, [ReturnLine(sku="WIDGET-1", quantity=1)], "R7")
    await acu.create_receipt("RC", rc)
    await acu.refund("C000002", Decimal("3.50"), "USD", "rf_7")
    lines = [OrderLine(sku="WIDGET-2", name="Widget 2", quantity=1, unit_price=Decimal("14.99"))]
    await acu.create_credit_memo("C000001", lines, "USD", "RMA-77", original=("SO", nbr))
    await acu.reverse_receipt(await acu.receive_stock([("WIDGET-8", 5)], reference="r-77"))
    await acu.create_customer(
        Customer(email="whole@example.com", first_name="Whole", last_name="Record")
    )

    base = f"{settings.acumatica.base_url}/entity/Default/24.200.001"
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(timeout=10.0) as raw:
        token = await raw.post(
            f"{settings.acumatica.base_url}/identity/connect/token",
            data={
                "grant_type": "password",
                "client_id": settings.acumatica.client_id,
                "client_secret": settings.acumatica.client_secret.get_secret_value(),
                "username": settings.acumatica.username,
                "password": settings.acumatica.password.get_secret_value(),
                "scope": "api",
            },
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        for entity, expand in EXPANDS.items():
            listed = await raw.get(f"{base}/{entity}", params={"$expand": expand}, headers=headers)
            assert listed.status_code == 200 and listed.json(), entity
            answers.append(listed)
        for entity, body in (
            ("InventoryQuantityAvailable", {}),
            ("InventorySummaryInquiry", {"InventoryID": {"value": "WIDGET-1"}}),
        ):
            answer = await raw.put(
                f"{base}/{entity}", params={"$expand": "Results"}, json=body, headers=headers
            )
            assert answer.status_code == 200 and answer.json()["Results"], entity
            answers.append(answer)

    # Checked here, answer by answer, rather than by counting the process-wide report
    # the sandbox's `OpenAPICheck` fills: a call another test left running adds to it.
    contract = AcumaticaContract.load()
    outcomes = [
        contract.check(
            a.request.method,
            a.request.url.path.removeprefix(MOUNT),
            a.status_code,
            a.headers.get("content-type", ""),
            a.content,
        )
        for a in answers
    ]
    assert len(outcomes) == len(EXPANDS) + 2
    assert [(o.operation, o.reason) for o in outcomes if not o.covered] == []
    assert [(o.operation, o.problems) for o in outcomes if o.problems] == []
