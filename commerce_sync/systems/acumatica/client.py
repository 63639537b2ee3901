"""Connector for Acumatica's contract-based REST API (endpoint `Default/24.200.001`).

One pooled `httpx.AsyncClient` per connector, a timeout on every call, no retries: a
failed call raises a `systems.errors` class and Temporal decides what happens next.

Authentication (`settings.auth`):
- `oauth`: resource-owner password grant with `api offline_access`; the access token
  is refreshed with the refresh token shortly before it expires, and when the refresh
  is refused the connector signs in with the password again.
- `cookie`: `POST /entity/auth/login` once, the session cookies on every call, and
  `POST /entity/auth/logout` in `aclose()` so the licence seat ("API users") is freed.
A 401 on a call means the session or token expired: the connector authenticates once
more and sends the same call again. That is authentication, not a retry: a second 401
raises `AuthenticationFailed`.

Error classes:
- 429 (licence limits: requests per minute, concurrent requests, "API Login Limit") ->
  `ThrottledError`, `retry_after_s` from `Retry-After` when present (Acumatica documents
  none), else `throttle_delay_s`.
- 422 (the entity echoed with `error` in the bad field) -> `ValidationFailed` with the
  field's path (`Details[0].InventoryID`) and its message; 400 and 412 -> `ValidationFailed`.
- 500 `HttpError` is classified by `exceptionType`: `NoEntitySatisfiesTheCondition` ->
  `NotFound`; lock and "another process has updated" conflicts -> `TransientError`;
  any other `PX.*` exception is a business rule the data broke (a canceled order, a
  released document, an unknown code) -> `ValidationFailed`, which retrying cannot fix;
  anything else (`System.*`, a non-JSON body, a proxy page) -> `TransientError`.
- 502/503/504, timeouts and connection errors -> `TransientError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NoReturn, Self

import httpx

from commerce_sync.config.settings import AcumaticaSettings
from commerce_sync.domain.models import (
    Customer,
    Order,
    OrderLine,
    Payment,
    PaymentKind,
    Product,
    ReturnLine,
    Shipment,
    StockLevel,
)
from commerce_sync.systems.acumatica import mapping
from commerce_sync.systems.acumatica.lookups import AcumaticaLookups
from commerce_sync.systems.acumatica.schema import (
    dumps,
    loads,
    odata_datetime,
    odata_string,
    value_of,
)
from commerce_sync.systems.errors import (
    AuthenticationFailed,
    ConnectorError,
    NotFound,
    PermanentError,
    ThrottledError,
    TransientError,
    ValidationFailed,
)
from commerce_sync.systems.observe import RequestHook, ResponseHook
from commerce_sync.systems.read_retries import read_with_retries

logger = logging.getLogger(__name__)

SYSTEM = "acumatica"
ORDER_EXPAND = (
    "Details,BillToAddress,ShipToAddress,BillToContact,ShipToContact,Payments,Totals,"
    "TaxDetails,DiscountDetails"
)
CUSTOMER_EXPAND = (
    "MainContact,MainContact/Address,BillingContact,BillingContact/Address,"
    "ShippingContact,ShippingContact/Address"
)
SHIPPED_STATUSES = ("Confirmed", "Completed", "Invoiced", "Released")
_TRANSIENT_PX = ("PXLockViolationException", "PXTimeoutException", "PXDatabaseException")


def first_field_error(node: Any, path: str = "") -> tuple[str, str] | None:
    """The first field wrapper carrying `error` in a 422 echo: (field path, message)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "error":
                continue
            if isinstance(value, dict) and "value" in value and value.get("error"):
                return f"{path}{key}", str(value["error"])
            found = first_field_error(value, f"{path}{key}.")
            if found is not None:
                return found
    elif isinstance(node, list):
        for index, row in enumerate(node):
            found = first_field_error(row, f"{path[:-1]}[{index}].")
            if found is not None:
                return found
    return None


class AcumaticaClient:
    """Async connector; use as `async with AcumaticaClient(settings) as acumatica:`."""

    system = SYSTEM

    def __init__(
        self,
        settings: AcumaticaSettings,
        *,
        timeout_s: float = 15.0,
        lookups: AcumaticaLookups | None = None,
        throttle_delay_s: float = 30.0,
        page_size: int = 100,
        batch_size: int = 25,
        action_poll_limit: int = 60,
        action_poll_interval_s: float = 0.25,
        refresh_margin_s: float = 60.0,
    ) -> None:
        self.settings = settings
        self.lookups = lookups or AcumaticaLookups()
        self.throttle_delay_s = throttle_delay_s
        self.page_size = page_size
        self.batch_size = batch_size
        self.action_poll_limit = action_poll_limit
        self.action_poll_interval_s = action_poll_interval_s
        self.refresh_margin_s = refresh_margin_s
        self._base = settings.base_url.rstrip("/")
        self._entity_base = f"{self._base}/entity/{settings.endpoint}/{settings.version}"
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=10, max_keepalive_connections=5),
        )
        self._auth_lock = asyncio.Lock()
        self._generation = 0
        self._access_token: str | None = None
        self._refresh_token: str | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._logged_in = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def observe_responses(self, hook: ResponseHook) -> None:
        """Call `hook` with every answer this client gets (the worker counts API calls)."""
        self._http.event_hooks["response"].append(hook)

    def observe_requests(self, hook: RequestHook) -> None:
        """Await `hook` before every request this client sends (the worker's call budget)."""
        self._http.event_hooks["request"].append(hook)

    async def aclose(self) -> None:
        """Log out of a cookie session (frees the licence seat) and close the pool."""
        try:
            if self._logged_in:
                try:
                    await self._http.post(f"{self._base}/entity/auth/logout")
                except httpx.HTTPError as exc:
                    logger.warning("acumatica logout failed: %s", type(exc).__name__)
                self._logged_in = False
        finally:
            await self._http.aclose()

    # ---- authentication ------------------------------------------------------------

    async def _ensure_auth(self) -> None:
        async with self._auth_lock:
            if self.settings.auth == "cookie":
                if not self._logged_in:
                    await self._login()
                return
            if self._access_token is None:
                await self._password_grant()
            elif time.monotonic() >= self._refresh_at:
                await self._refresh()

    async def _reauthenticate(self, generation: int) -> None:
        """After a 401: sign in again unless another call already did."""
        async with self._auth_lock:
            if generation != self._generation:
                return
            if self.settings.auth == "cookie":
                self._http.cookies.clear()
                self._logged_in = False
                await self._login()
            else:
                await self._refresh()

    async def _login(self) -> None:
        body: dict[str, str] = {
            "name": self.settings.username,
            "password": self.settings.password.get_secret_value(),
            "tenant": self.settings.tenant,
        }
        if self.settings.branch:
            body["branch"] = self.settings.branch
        response = await self._send("POST", f"{self._base}/entity/auth/login", content=dumps(body))
        if response.status_code != 204:
            self._raise_auth(response, "login")
        self._logged_in = True
        self._generation += 1

    async def _password_grant(self) -> None:
        await self._token_call(
            {
                "grant_type": "password",
                "username": self.settings.username,
                "password": self.settings.password.get_secret_value(),
                "scope": "api offline_access",
            }
        )

    async def _refresh(self) -> None:
        if self._refresh_token is None:
            await self._password_grant()
            return
        try:
            await self._token_call(
                {"grant_type": "refresh_token", "refresh_token": self._refresh_token}
            )
        except AuthenticationFailed:
            self._refresh_token = None
            await self._password_grant()

    async def _token_call(self, form: dict[str, str]) -> None:
        form = {
            **form,
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.get_secret_value(),
        }
        response = await self._send(
            "POST", f"{self._base}/identity/connect/token", data=form, json_body=False
        )
        if response.status_code != 200:
            self._raise_auth(response, form["grant_type"])
        token = loads(response.content)
        lifetime = float(token.get("expires_in") or 3600)
        now = time.monotonic()
        self._access_token = str(token["access_token"])
        self._refresh_token = token.get("refresh_token") or self._refresh_token
        self._expires_at = now + lifetime
        self._refresh_at = now + lifetime - min(self.refresh_margin_s, lifetime * 0.1)
        self._generation += 1

    def _raise_auth(self, response: httpx.Response, what: str) -> NoReturn:
        if response.status_code == 429 or response.status_code >= 500:
            error = self._classify(response)
            if isinstance(error, ValidationFailed):  # "Invalid credentials" is a PXException
                raise AuthenticationFailed(
                    SYSTEM, f"{what} refused: {error.message}", status=response.status_code
                )
            raise error
        detail = ""
        try:
            body = loads(response.content)
            detail = str(body.get("error") or body.get("exceptionMessage") or "")
        except ValueError:
            pass
        raise AuthenticationFailed(
            SYSTEM, f"{what} refused {detail}".strip(), status=response.status_code
        )

    # ---- HTTP ----------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        json_body: bool = True,
    ) -> httpx.Response:
        all_headers = {"Accept": "application/json"}
        if content is not None and json_body:
            all_headers["Content-Type"] = "application/json"
        if self._access_token and self.settings.auth == "oauth" and "/identity/" not in url:
            all_headers["Authorization"] = f"Bearer {self._access_token}"
        all_headers.update(headers or {})
        try:
            response = await self._http.request(
                method, url, params=params, content=content, data=data, headers=all_headers
            )
        except httpx.TimeoutException as exc:
            raise TransientError(
                SYSTEM, f"{method} {_short(url)} timed out ({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            raise TransientError(
                SYSTEM, f"{method} {_short(url)} failed: {type(exc).__name__}"
            ) from None
        logger.debug("acumatica %s %s -> %s", method, _short(url), response.status_code)
        return response

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One call; a GET turned away for a moment is sent again (`read_retries`)."""

        def send() -> Awaitable[httpx.Response]:
            return self._request_once(method, path, params=params, body=body, headers=headers)

        return await (read_with_retries(send) if method == "GET" else send())

    async def _request_once(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None,
        body: Any,
        headers: dict[str, str] | None,
    ) -> httpx.Response:
        url = path if path.startswith("http") else f"{self._entity_base}/{path}"
        content = dumps(body) if body is not None else None
        await self._ensure_auth()
        generation = self._generation
        response = await self._send(method, url, params=params, content=content, headers=headers)
        if response.status_code == 401:
            await self._reauthenticate(generation)
            response = await self._send(
                method, url, params=params, content=content, headers=headers
            )
        if response.status_code >= 400:
            raise self._classify(response)
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        return loads(response.content) if response.content else None

    def _classify(self, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        try:
            body = loads(response.content) if response.content else {}
        except ValueError:
            body = None
        message = ""
        error_type = ""
        field = None
        if isinstance(body, dict):
            message = str(
                body.get("exceptionMessage") or body.get("message") or body.get("error") or ""
            )
            error_type = str(body.get("exceptionType") or "")
            model_state = body.get("modelState")
            if isinstance(model_state, dict) and model_state:
                field = str(next(iter(model_state)))
        else:
            message = response.text[:200]
        if status in (401, 403):
            return AuthenticationFailed(SYSTEM, message or "not authorised", status=status)
        if status == 429:
            header = response.headers.get("retry-after")
            try:
                delay = float(header) if header is not None else self.throttle_delay_s
            except ValueError:
                delay = self.throttle_delay_s
            return ThrottledError(
                SYSTEM, message or "licence limit", status=status, retry_after_s=delay
            )
        if status == 422:
            found = first_field_error(body) if isinstance(body, dict) else None
            if found is not None:
                return ValidationFailed(SYSTEM, found[1], status=status, field=found[0])
            return ValidationFailed(SYSTEM, message or "validation failed", status=status)
        if status in (400, 412):
            return ValidationFailed(
                SYSTEM, message or response.reason_phrase, status=status, field=field
            )
        if status == 404:
            return NotFound(SYSTEM, message or "not found", status=status)
        if status == 500 and error_type:
            short_type = error_type.rsplit(".", 1)[-1]
            if short_type == "NoEntitySatisfiesTheConditionException":
                return NotFound(SYSTEM, message, status=status)
            if short_type in _TRANSIENT_PX or "another process has" in message.lower():
                return TransientError(SYSTEM, message, status=status)
            if error_type.startswith("PX."):
                return ValidationFailed(SYSTEM, message, status=status, field=field)
        if status >= 500:
            # A 503 that says when to come back (IIS recycling, maintenance) is honoured,
            # like a 429: docs/design.md §4 "HTTP 429/503 with Retry-After -> next_retry_delay".
            retry_after: float | None = None
            if status == 503:
                try:
                    retry_after = float(response.headers.get("retry-after", ""))
                except ValueError:
                    retry_after = None
            return TransientError(
                SYSTEM,
                message or f"server error {status}",
                status=status,
                retry_after_s=retry_after,
            )
        return PermanentError(SYSTEM, message or response.reason_phrase, status=status)

    async def _action(
        self,
        entity: str,
        action: str,
        keys: dict[str, Any],
        parameters: dict[str, Any] | None = None,
    ) -> None:
        """Invoke an action and poll its `Location` until it answers 204."""
        body = {
            "entity": {k: {"value": val} for k, val in keys.items()},
            "parameters": {k: {"value": val} for k, val in (parameters or {}).items()},
        }
        response = await self._request("POST", f"{entity}/{action}", body=body)
        if response.status_code == 204:
            return
        location = response.headers.get("location")
        if not location:
            raise TransientError(
                SYSTEM, f"{entity}/{action} answered {response.status_code} without Location"
            )
        status_url = str(httpx.URL(self._base).join(location))
        for poll in range(self.action_poll_limit):
            if poll:
                await asyncio.sleep(self.action_poll_interval_s)
            status = await self._request("GET", status_url)
            if status.status_code == 204:
                return
        raise TransientError(
            SYSTEM, f"{entity}/{action} still running after {self.action_poll_limit} polls"
        )

    async def _pages(self, entity: str, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        skip = 0
        while True:
            page = await self._json(
                "GET", entity, params={**params, "$top": self.page_size, "$skip": skip}
            )
            for record in page:
                yield record
            if len(page) < self.page_size:
                return
            skip += self.page_size

    def _lookups(self, lookups: AcumaticaLookups | None) -> AcumaticaLookups:
        return lookups or self.lookups

    # ---- customers -----------------------------------------------------------------

    async def find_customers_by_email(self, email: str) -> list[Customer]:
        records = await self._json(
            "GET",
            "Customer",
            params={
                "$filter": f"MainContact/Email eq {odata_string(email)}",
                "$expand": CUSTOMER_EXPAND,
            },
        )
        return [mapping.customer_from_native(record) for record in records]

    async def find_customer_by_email(self, email: str) -> Customer | None:
        """The customer whose main contact has this e-mail (active ones first)."""
        found = await self.find_customers_by_email(email)
        found.sort(key=lambda customer: not customer.active)
        return found[0] if found else None

    async def create_customer(
        self, customer: Customer, lookups: AcumaticaLookups | None = None
    ) -> str:
        """A new customer; returns its `CustomerID` (numbered by Acumatica)."""
        body = mapping.customer_to_native(customer, self._lookups(lookups))
        record = await self._json(
            "PUT",
            "Customer",
            body=body,
            headers={"If-None-Match": "*"},
            params={"$select": "CustomerID"},
        )
        return str(value_of(record, "CustomerID"))

    async def get_customer(self, customer_id: str) -> Customer:
        record = await self._json(
            "GET", f"Customer/{customer_id}", params={"$expand": CUSTOMER_EXPAND}
        )
        return mapping.customer_from_native(record)

    async def update_customer(
        self, customer_id: str, customer: Customer, lookups: AcumaticaLookups | None = None
    ) -> None:
        body = mapping.customer_to_native(customer, self._lookups(lookups), customer_id)
        await self._request(
            "PUT",
            "Customer",
            body=body,
            headers={"If-Match": "*"},
            params={"$select": "CustomerID"},
        )

    async def _set_customer_status(self, customer_id: str, status: str) -> None:
        body = {"CustomerID": {"value": customer_id}, "Status": {"value": status}}
        await self._request(
            "PUT",
            "Customer",
            body=body,
            headers={"If-Match": "*"},
            params={"$select": "CustomerID"},
        )

    async def deactivate_customer(self, customer_id: str) -> None:
        await self._set_customer_status(customer_id, "Inactive")

    async def activate_customer(self, customer_id: str) -> None:
        await self._set_customer_status(customer_id, "Active")

    async def delete_customer(self, customer_id: str) -> None:
        """Delete a customer; one that never existed or is already gone is fine."""
        try:
            await self._request("DELETE", f"Customer/{customer_id}")
        except NotFound:
            return

    async def iter_customers_changed_since(self, since: datetime) -> AsyncIterator[Customer]:
        params = {
            "$filter": f"LastModifiedDateTime gt {odata_datetime(since)}",
            "$expand": CUSTOMER_EXPAND,
        }
        async for record in self._pages("Customer", params):
            yield mapping.customer_from_native(record)

    async def find_customers_where(self, odata_filter: str) -> list[Customer]:
        """Every customer an OData `$filter` on `Customer` matches (contact and addresses
        expanded), in one call."""
        records: list[dict[str, Any]] = await self._json(
            "GET", "Customer", params={"$filter": odata_filter, "$expand": CUSTOMER_EXPAND}
        )
        return [mapping.customer_from_native(record) for record in records]

    async def set_customer_active(self, customer_id: str, active: bool) -> None:
        """`PUT Customer` with the `Status` only (`Active` / `Inactive`), selected back so
        that the answer shows it."""
        body = {
            "CustomerID": {"value": customer_id},
            "Status": {"value": "Active" if active else "Inactive"},
        }
        await self._request(
            "PUT",
            "Customer",
            body=body,
            headers={"If-Match": "*"},
            params={"$select": "CustomerID,Status"},
        )

    async def clear_main_contact_address(self, customer_id: str) -> None:
        """Empties the main contact's address (lines, city, state, postal code), which
        reads back as the customer's billing address."""
        empty = {name: {"value": ""} for name in ("AddressLine1", "AddressLine2", "City")}
        empty.update({"State": {"value": ""}, "PostalCode": {"value": ""}})
        await self._request(
            "PUT",
            "Customer",
            body={"CustomerID": {"value": customer_id}, "MainContact": {"Address": empty}},
            headers={"If-Match": "*"},
            params={"$select": "CustomerID"},
        )

    # ---- sales orders --------------------------------------------------------------

    async def live_orders_by_customer_order(
        self, store_order_number: str, order_type: str | None = None
    ) -> list[tuple[str, str]]:
        """The (type, nbr) of every live order carrying this store number, oldest number
        first; canceled ones don't count."""
        order_type = order_type or self.lookups.order_type
        records = await self._json(
            "GET",
            "SalesOrder",
            params={
                "$filter": f"CustomerOrder eq {odata_string(store_order_number)} "
                f"and OrderType eq {odata_string(order_type)}",
                "$select": "OrderType,OrderNbr,Status",
            },
        )
        live = [
            (str(value_of(record, "OrderType")), str(value_of(record, "OrderNbr")))
            for record in records
            if value_of(record, "Status") != "Canceled"
        ]
        return sorted(live, key=lambda ref: ref[1])

    async def find_order_by_customer_order(
        self, store_order_number: str, order_type: str | None = None
    ) -> tuple[str, str] | None:
        """The (type, nbr) of the live order carrying this store number; canceled ones don't count."""
        live = await self.live_orders_by_customer_order(store_order_number, order_type)
        return live[0] if live else None

    async def create_sales_order(
        self, order: Order, customer_id: str, lookups: AcumaticaLookups | None = None
    ) -> str:
        """Create the order once per store order number; returns `OrderNbr`.

        Idempotent: an existing live order with the same `CustomerOrder` is returned.
        """
        order_nbr, _ = await self.create_sales_order_once(order, customer_id, lookups)
        return order_nbr

    async def create_sales_order_once(
        self,
        order: Order,
        customer_id: str,
        lookups: AcumaticaLookups | None = None,
        *,
        look_first: bool = True,
    ) -> tuple[str, bool]:
        """`create_sales_order`, also saying whether this call made the order;
        `look_first=False` for a caller that knows no such order can exist."""
        lookups = self._lookups(lookups)
        if look_first:
            existing = await self.find_order_by_customer_order(order.number, lookups.order_type)
            if existing is not None:
                return existing[1], False
        body = mapping.order_to_native(order, customer_id, lookups)
        record = await self._json(
            "PUT",
            "SalesOrder",
            body=body,
            headers={"If-None-Match": "*"},
            params={"$select": "OrderType,OrderNbr"},
        )
        return str(value_of(record, "OrderNbr")), True

    async def get_order_native(self, order_type: str, order_nbr: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json(
            "GET", f"SalesOrder/{order_type}/{order_nbr}", params={"$expand": ORDER_EXPAND}
        )
        return result

    async def get_order(
        self, order_type: str, order_nbr: str, lookups: AcumaticaLookups | None = None
    ) -> Order:
        native = await self.get_order_native(order_type, order_nbr)
        return mapping.order_from_native(native, self._lookups(lookups))

    async def get_order_status(self, order_type: str, order_nbr: str) -> str:
        record = await self._json(
            "GET", f"SalesOrder/{order_type}/{order_nbr}", params={"$select": "Status"}
        )
        return str(value_of(record, "Status"))

    async def cancel_order(self, order_type: str, order_nbr: str) -> None:
        """Cancel an order (the compensation of create). Already canceled: nothing to do."""
        if await self.get_order_status(order_type, order_nbr) == "Canceled":
            return
        await self._action(
            "SalesOrder", "CancelSalesOrder", {"OrderType": order_type, "OrderNbr": order_nbr}
        )

    async def iter_orders_changed_since(
        self,
        since: datetime,
        lookups: AcumaticaLookups | None = None,
        order_type: str | None = None,
    ) -> AsyncIterator[Order]:
        lookups = self._lookups(lookups)
        condition = f"LastModified gt {odata_datetime(since)}"
        if order_type:
            condition += f" and OrderType eq {odata_string(order_type)}"
        async for record in self._pages(
            "SalesOrder", {"$filter": condition, "$expand": ORDER_EXPAND}
        ):
            yield mapping.order_from_native(record, lookups)

    async def sales_orders_of_customer(
        self, customer_id: str, order_type: str
    ) -> list[dict[str, Any]]:
        """The customer's sales orders of this type, `OrderType`, `OrderNbr` and `Status`
        only, in one call."""
        records: list[dict[str, Any]] = await self._json(
            "GET",
            "SalesOrder",
            params={
                "$filter": f"CustomerID eq {odata_string(customer_id)} "
                f"and OrderType eq {odata_string(order_type)}",
                "$select": "OrderType,OrderNbr,Status",
            },
        )
        return records

    async def set_order_customer(self, order_type: str, order_nbr: str, customer_id: str) -> None:
        """`PUT SalesOrder` of a new `CustomerID` (Acumatica accepts it on open orders)."""
        body = {
            "OrderType": {"value": order_type},
            "OrderNbr": {"value": order_nbr},
            "CustomerID": {"value": customer_id},
        }
        await self._request(
            "PUT",
            "SalesOrder",
            body=body,
            headers={"If-Match": "*"},
            params={"$select": "OrderType,OrderNbr"},
        )

    # ---- payments ------------------------------------------------------------------

    async def _live_payments(self, doc_type: str, reference: str) -> list[dict[str, Any]]:
        """The documents of this type carrying `reference` that are not voided, by number."""
        records = await self._json(
            "GET",
            "Payment",
            params={
                "$filter": f"Type eq {odata_string(doc_type)} and PaymentRef eq {odata_string(reference)}",
                "$select": "Type,ReferenceNbr,Status",
            },
        )
        live = [r for r in records if value_of(r, "Status") != "Voided"]
        return sorted(live, key=lambda r: str(value_of(r, "ReferenceNbr")))

    async def _find_payment(self, doc_type: str, reference: str) -> dict[str, Any] | None:
        live = await self._live_payments(doc_type, reference)
        return live[0] if live else None

    async def _release_if_balanced(self, record: dict[str, Any]) -> None:
        if value_of(record, "Status") == "Balanced":
            await self._action(
                "Payment",
                "ReleasePayment",
                {
                    "Type": value_of(record, "Type"),
                    "ReferenceNbr": value_of(record, "ReferenceNbr"),
                },
            )

    async def record_payment(
        self,
        order_type: str,
        order_nbr: str,
        payment: Payment,
        *,
        customer_id: str | None = None,
        lookups: AcumaticaLookups | None = None,
        look_first: bool = True,
    ) -> str:
        """An AR payment applied to the order (`OrdersToApply`), released; returns ReferenceNbr.

        Idempotent on `PaymentRef` (the store's payment reference): a payment already
        recorded is returned (and released if an earlier attempt stopped before that).
        `look_first=False` skips that lookup, for a caller that knows none can exist (an
        order it has just made); a refusal of the create still looks.
        """
        existing = await self._find_payment("Payment", payment.reference) if look_first else None
        if existing is None:
            if customer_id is None:
                order = await self._json(
                    "GET", f"SalesOrder/{order_type}/{order_nbr}", params={"$select": "CustomerID"}
                )
                customer_id = str(value_of(order, "CustomerID"))
            body = mapping.payment_to_native(
                payment.model_copy(
                    update={
                        "kind": PaymentKind.RECEIPT,
                        "order_ref": payment.order_ref or mapping.order_ref(order_type, order_nbr),
                    }
                ),
                customer_id,
                self._lookups(lookups),
                order_type=order_type,
                order_nbr=order_nbr,
            )
            try:
                existing = await self._json(
                    "PUT",
                    "Payment",
                    body=body,
                    headers={"If-None-Match": "*"},
                    params={"$select": "Type,ReferenceNbr,Status"},
                )
            except ValidationFailed as exc:
                # An earlier attempt whose answer was lost can land between the lookup
                # above and this create: the order is then paid, and Acumatica refuses to
                # apply more than its unpaid balance. That payment is ours: look again.
                if not (exc.field or "").startswith("OrdersToApply"):
                    raise
                existing = await self._find_payment("Payment", payment.reference)
                if existing is None:
                    raise
        await self._release_if_balanced(existing)
        return str(value_of(existing, "ReferenceNbr"))

    async def get_payment(
        self, reference_nbr: str, doc_type: str = "Payment", lookups: AcumaticaLookups | None = None
    ) -> Payment:
        record = await self._json(
            "GET", f"Payment/{doc_type}/{reference_nbr}", params={"$expand": "OrdersToApply"}
        )
        return mapping.payment_from_native(record, self._lookups(lookups))

    async def get_payment_status(self, reference_nbr: str, doc_type: str = "Payment") -> str:
        record = await self._json(
            "GET", f"Payment/{doc_type}/{reference_nbr}", params={"$select": "Status"}
        )
        return str(value_of(record, "Status"))

    async def void_payment(self, reference_nbr: str, doc_type: str = "Payment") -> None:
        """Void a released payment (the compensation of record). Already voided: nothing to do.

        A payment that was never released is deleted instead, as Acumatica requires.
        """
        status = await self.get_payment_status(reference_nbr, doc_type)
        if status == "Voided":
            return
        if status in ("Balanced", "On Hold"):
            await self._request("DELETE", f"Payment/{doc_type}/{reference_nbr}")
            return
        await self._action(
            "Payment", "VoidPayment", {"Type": doc_type, "ReferenceNbr": reference_nbr}
        )

    async def refund(
        self,
        customer_id: str,
        amount: Decimal,
        currency: str,
        reference: str,
        *,
        method: str = "card",
        lookups: AcumaticaLookups | None = None,
    ) -> str:
        """A released customer refund (`Payment` of type `Refund`); idempotent on `reference`."""
        existing = await self._find_payment("Refund", reference)
        if existing is None:
            refund = Payment(
                kind=PaymentKind.REFUND,
                method=method,
                reference=reference,
                amount=amount,
                currency=currency,
            )
            body = mapping.payment_to_native(refund, customer_id, self._lookups(lookups))
            existing = await self._json(
                "PUT",
                "Payment",
                body=body,
                headers={"If-None-Match": "*"},
                params={"$select": "Type,ReferenceNbr,Status"},
            )
        await self._release_if_balanced(existing)
        return str(value_of(existing, "ReferenceNbr"))

    async def void_refund(self, reference_nbr: str) -> None:
        await self.void_payment(reference_nbr, "Refund")

    # ---- shipments -----------------------------------------------------------------

    async def get_shipment(
        self, shipment_nbr: str, lookups: AcumaticaLookups | None = None
    ) -> Shipment:
        record = await self._json(
            "GET", f"Shipment/{shipment_nbr}", params={"$expand": "Details,Orders,Packages"}
        )
        return mapping.shipment_from_native(record, self._lookups(lookups))

    async def get_shipments(
        self, order_type: str, order_nbr: str, lookups: AcumaticaLookups | None = None
    ) -> list[Shipment]:
        """The order's shipped (confirmed or later) shipments, tracking from `Packages`."""
        order = await self._json(
            "GET",
            f"SalesOrder/{order_type}/{order_nbr}",
            params={"$expand": "Shipments", "$select": "OrderType,OrderNbr"},
        )
        shipments = []
        for link in order.get("Shipments", []):
            if (
                value_of(link, "ShipmentType") == "Receipt"
                or value_of(link, "Status") not in SHIPPED_STATUSES
            ):
                continue
            record = await self._json(
                "GET",
                f"Shipment/{value_of(link, 'ShipmentNbr')}",
                params={"$expand": "Details,Orders,Packages"},
            )
            shipments.append(
                mapping.shipment_from_native(
                    record, self._lookups(lookups), (order_type, order_nbr)
                )
            )
        return shipments

    # ---- products and stock --------------------------------------------------------

    def _batches(self, skus: Iterable[str]) -> list[list[str]]:
        unique = list(dict.fromkeys(skus))
        return [unique[i : i + self.batch_size] for i in range(0, len(unique), self.batch_size)]

    async def _stock_items(self, skus: Sequence[str], expand: str = "") -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for batch in self._batches(skus):
            condition = " or ".join(f"InventoryID eq {odata_string(sku)}" for sku in batch)
            params = {"$filter": condition}
            if expand:
                params["$expand"] = expand
            records.extend(await self._json("GET", "StockItem", params=params))
        return records

    async def get_stock_items(self, skus: Sequence[str], currency: str = "USD") -> list[Product]:
        """The stock items for these SKUs (unknown SKUs are left out), in batches."""
        return [mapping.product_from_native(r, currency) for r in await self._stock_items(skus)]

    async def iter_stock_items_changed_since(
        self, since: datetime, currency: str = "USD"
    ) -> AsyncIterator[Product]:
        params = {"$filter": f"LastModifiedDateTime gt {odata_datetime(since)}"}
        async for record in self._pages("StockItem", params):
            yield mapping.product_from_native(record, currency)

    async def _quantity_available(self, since: datetime | None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {}
        if since is not None:
            body["LastModifiedDateTime"] = mapping.v(since)
        result = await self._json(
            "PUT", "InventoryQuantityAvailable", body=body, params={"$expand": "Results"}
        )
        rows: list[dict[str, Any]] = result.get("Results", [])
        return rows

    async def _levels(
        self, rows: list[dict[str, Any]], skus: Sequence[str] | None
    ) -> list[StockLevel]:
        available = {
            str(value_of(row, "InventoryID")): (
                Decimal(str(value_of(row, "QtyAvailable") or 0)),
                mapping.datetime_value(row, "LastModifiedDateTime"),
            )
            for row in rows
        }
        wanted = list(skus) if skus is not None else list(available)
        on_hand: dict[str, Decimal] = {}
        for record in await self._stock_items(wanted, expand="WarehouseDetails"):
            sku = str(value_of(record, "InventoryID"))
            on_hand[sku] = sum(
                (
                    Decimal(str(value_of(row, "QtyOnHand") or 0))
                    for row in record.get("WarehouseDetails", [])
                ),
                Decimal(0),
            )
        levels = []
        for sku in wanted:
            if sku not in on_hand:
                continue
            qty, as_of = available.get(sku, (on_hand[sku], None))
            levels.append(
                StockLevel(sku=sku, on_hand=int(on_hand[sku]), available=int(qty), as_of=as_of)
            )
        return levels

    async def get_availability_changed_since(self, since: datetime) -> list[StockLevel]:
        """Levels of the items whose availability changed after `since` (all warehouses).

        One `InventoryQuantityAvailable` inquiry for the delta, then on-hand figures for
        the changed SKUs in batches.
        """
        return await self._levels(await self._quantity_available(since), None)

    async def get_availability(self, skus: Sequence[str]) -> list[StockLevel]:
        """Levels for these SKUs (all warehouses summed); unknown SKUs are left out."""
        return await self._levels(await self._quantity_available(None), skus)

    async def get_warehouse_availability(
        self, sku: str, warehouse: str | None = None
    ) -> list[StockLevel]:
        """Per-warehouse levels of one SKU (`InventorySummaryInquiry`)."""
        body: dict[str, Any] = {"InventoryID": mapping.v(sku)}
        if warehouse:
            body["WarehouseID"] = mapping.v(warehouse)
        result = await self._json(
            "PUT", "InventorySummaryInquiry", body=body, params={"$expand": "Results"}
        )
        return mapping.stock_levels_from_summary(sku, result.get("Results", []))

    async def _find_document(self, entity: str, condition: str) -> dict[str, Any] | None:
        records = await self._json(
            "GET", entity, params={"$filter": condition, "$select": "ReferenceNbr,Status"}
        )
        return records[0] if records else None

    async def receive_stock(
        self, lines: Sequence[tuple[str, int]], reference: str, warehouse: str | None = None
    ) -> str:
        """Put goods back on hand: a released `InventoryReceipt`; idempotent on `reference`."""
        description = f"commerce-sync {reference}"[:255]
        found = await self._find_document(
            "InventoryReceipt", f"Description eq {odata_string(description)}"
        )
        if found is None:
            body = {
                "Description": mapping.v(description),
                "Hold": mapping.v(False),
                "Details": [
                    {
                        "InventoryID": mapping.v(sku),
                        "Qty": mapping.v(Decimal(qty)),
                        "WarehouseID": mapping.v(warehouse or self.lookups.warehouse_id),
                    }
                    for sku, qty in lines
                ],
            }
            found = await self._json(
                "PUT",
                "InventoryReceipt",
                body=body,
                headers={"If-None-Match": "*"},
                params={"$select": "ReferenceNbr,Status"},
            )
        if value_of(found, "Status") == "Balanced":
            await self._action(
                "InventoryReceipt",
                "ReleaseInventoryReceipt",
                {"ReferenceNbr": value_of(found, "ReferenceNbr")},
            )
        return str(value_of(found, "ReferenceNbr"))

    async def reverse_receipt(self, receipt_nbr: str) -> str:
        """Undo a released receipt: a released negative `InventoryAdjustment`; idempotent."""
        external_ref = f"reverse:{receipt_nbr}"
        found = await self._find_document(
            "InventoryAdjustment", f"ExternalRef eq {odata_string(external_ref)}"
        )
        if found is None:
            receipt = await self._json(
                "GET", f"InventoryReceipt/{receipt_nbr}", params={"$expand": "Details"}
            )
            if value_of(receipt, "Status") != "Released":
                raise ValidationFailed(
                    SYSTEM, f"receipt {receipt_nbr} is not released", field="Status"
                )
            body = {
                "ExternalRef": mapping.v(external_ref),
                "Description": mapping.v(f"Reversal of receipt {receipt_nbr}"),
                "Hold": mapping.v(False),
                "Details": [
                    {
                        "InventoryID": row["InventoryID"],
                        "WarehouseID": row["WarehouseID"],
                        "Qty": mapping.v(-Decimal(str(value_of(row, "Qty")))),
                        "ReceiptNbr": mapping.v(receipt_nbr),
                    }
                    for row in receipt.get("Details", [])
                ],
            }
            found = await self._json(
                "PUT",
                "InventoryAdjustment",
                body=body,
                headers={"If-None-Match": "*"},
                params={"$select": "ReferenceNbr,Status"},
            )
        if value_of(found, "Status") == "Balanced":
            await self._action(
                "InventoryAdjustment",
                "ReleaseAdjustment",
                {"ReferenceNbr": value_of(found, "ReferenceNbr")},
            )
        return str(value_of(found, "ReferenceNbr"))

    # ---- returns -------------------------------------------------------------------

    async def create_return_order(
        self,
        parent_type: str,
        parent_nbr: str,
        lines: Sequence[ReturnLine],
        rma_ref: str,
        lookups: AcumaticaLookups | None = None,
    ) -> str:
        """A return order (`RC`, `Receipt` lines) for `lines` of the parent; idempotent on `rma_ref`."""
        lookups = self._lookups(lookups)
        existing = await self.find_order_by_customer_order(rma_ref, lookups.return_order_type)
        if existing is not None:
            return existing[1]
        parent = await self._json(
            "GET", f"SalesOrder/{parent_type}/{parent_nbr}", params={"$expand": "Details"}
        )
        try:
            body = mapping.return_order_to_native(
                parent, [(line.sku, line.quantity, line.reason) for line in lines], rma_ref, lookups
            )
        except ValueError as exc:
            raise ValidationFailed(SYSTEM, str(exc), field="lines") from None
        record = await self._json(
            "PUT",
            "SalesOrder",
            body=body,
            headers={"If-None-Match": "*"},
            params={"$select": "OrderType,OrderNbr"},
        )
        return str(value_of(record, "OrderNbr"))

    async def create_receipt(
        self, order_type: str, order_nbr: str, warehouse: str | None = None
    ) -> str:
        """Receive the returned goods: `SalesOrderCreateReceipt`, then confirm the receipt.

        Confirming puts the goods back on hand. Returns the receipt's ShipmentNbr;
        idempotent (an existing receipt is confirmed if needed and returned).
        """
        receipt = await self._receipt_of(order_type, order_nbr)
        if receipt is None:
            await self._action(
                "SalesOrder",
                "SalesOrderCreateReceipt",
                {"OrderType": order_type, "OrderNbr": order_nbr},
                {"WarehouseID": warehouse or self.lookups.warehouse_id},
            )
            receipt = await self._receipt_of(order_type, order_nbr)
            if receipt is None:
                raise TransientError(SYSTEM, f"no receipt found for {order_type} {order_nbr}")
        number, status = receipt
        if status == "Open":
            await self._action("Shipment", "ConfirmShipment", {"ShipmentNbr": number})
        return number

    async def _receipt_of(self, order_type: str, order_nbr: str) -> tuple[str, str] | None:
        receipts = await self.receipts_of(order_type, order_nbr)
        return receipts[0] if receipts else None

    async def receipts_of(self, order_type: str, order_nbr: str) -> list[tuple[str, str]]:
        """(ShipmentNbr, Status) of the order's receipts, as its `Shipments` links list them."""
        order = await self._json(
            "GET",
            f"SalesOrder/{order_type}/{order_nbr}",
            params={"$expand": "Shipments", "$select": "OrderType,OrderNbr"},
        )
        return [
            (str(value_of(link, "ShipmentNbr")), str(value_of(link, "Status")))
            for link in order.get("Shipments", [])
            if value_of(link, "ShipmentType") == "Receipt"
        ]

    async def undo_receipt(self, order_type: str, order_nbr: str) -> str | None:
        """Take back what `create_receipt` did: `CorrectShipment` on the confirmed receipt
        (its goods leave stock again, as Acumatica allows until the receipt is invoiced),
        then delete the Open receipt, leaving the return order Open (so it can be
        cancelled). Idempotent: no receipt, nothing to do. Returns the receipt's number."""
        receipt = await self._receipt_of(order_type, order_nbr)
        if receipt is None:
            return None
        await self.remove_receipt(*receipt)
        return receipt[0]

    async def remove_receipt(self, number: str, status: str) -> None:
        """`CorrectShipment` when confirmed (its goods leave stock again), then delete it."""
        if status in ("Confirmed", "Completed"):
            await self._action("Shipment", "CorrectShipment", {"ShipmentNbr": number})
        await self._request("DELETE", f"Shipment/{number}")

    async def cancel_return_order(self, order_type: str, order_nbr: str) -> None:
        await self.cancel_order(order_type, order_nbr)

    async def create_credit_memo(
        self,
        customer_id: str,
        lines: Sequence[OrderLine],
        currency: str,
        reference: str,
        *,
        original: tuple[str, str] | None = None,
    ) -> str:
        """A released stand-alone credit memo (`SalesInvoice` of type `Credit Memo`).

        Idempotent on `reference` (kept in `ExternalRef`); `original` = (order type, nbr)
        lands in `CustomerOrder` for the audit trail. Returns the ReferenceNbr.
        """
        records = await self._json(
            "GET",
            "SalesInvoice",
            params={
                "$filter": f"Type eq 'Credit Memo' and ExternalRef eq {odata_string(reference)}",
                "$select": "Type,ReferenceNbr,Status",
            },
        )
        found = records[0] if records else None
        if found is None:
            body: dict[str, Any] = {
                "Type": mapping.v("Credit Memo"),
                "CustomerID": mapping.v(customer_id),
                "ExternalRef": mapping.v(reference[:40]),
                "Currency": mapping.v(currency),
                "Hold": mapping.v(False),
                "Description": mapping.v(f"Credit {reference}"[:255]),
                "Details": [
                    {
                        "InventoryID": mapping.v(line.sku),
                        "Qty": mapping.v(Decimal(line.quantity)),
                        "UnitPrice": mapping.v(line.unit_price),
                        "TransactionDescr": mapping.v(line.name),
                    }
                    for line in lines
                ],
            }
            if original is not None:
                body["CustomerOrder"] = mapping.v(mapping.order_ref(*original))
            found = await self._json(
                "PUT",
                "SalesInvoice",
                body=body,
                headers={"If-None-Match": "*"},
                params={"$select": "Type,ReferenceNbr,Status"},
            )
        if value_of(found, "Status") == "Balanced":
            await self._action(
                "SalesInvoice",
                "ReleaseSalesInvoice",
                {"Type": "Credit Memo", "ReferenceNbr": value_of(found, "ReferenceNbr")},
            )
        return str(value_of(found, "ReferenceNbr"))

    async def get_credit_memo(self, reference_nbr: str) -> dict[str, Any]:
        """The credit memo as Acumatica holds it (wrapped fields, `Details` expanded)."""
        record: dict[str, Any] = await self._json(
            "GET", f"SalesInvoice/Credit Memo/{reference_nbr}", params={"$expand": "Details"}
        )
        return record


def _short(url: str) -> str:
    """The path of a URL without the query (no filter values in logs)."""
    return httpx.URL(url).path
