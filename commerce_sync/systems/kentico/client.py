"""The Kentico connector: the REST service (`/rest/{objecttype}`) with Basic authentication.

Reads use `format=json`, `where`, `orderby`, `topn` and `columns`; the REST service has
no offset paging, so lists page by key (`OrderID > last`, `orderby=OrderID`, `topn=N`).
Writes are one object per request (`POST` create, `PUT` changed fields, `DELETE`).

Where things are kept (see `mapping.py` and `schema.py`): the store order number is
`OrderID`; the ERP order number and the last status note are in `OrderCustomData`;
tracking in `OrderTrackingNumber` (carrier in custom data); return requests in the
project-defined custom table `customtableitem.commercesync.returnrequest`.

Kentico validates no write (see `writes.py`): every POST/PUT body is checked here first
against `schema.py`, and a status id is checked against the site's `COM_OrderStatus`
rows, so bad data fails as `ValidationFailed` naming the field before anything is sent.
A write's answer carries only the id and GUID (`201 Created`).

Errors: timeouts, connection errors and 5xx -> `TransientError`; 429, or 503 with a
`Retry-After`, -> `ThrottledError` (Kentico itself has no rate limit, a proxy in front
may); 400/422 -> `ValidationFailed` (Kentico's own 400 is WCF's generic error page, so
the field is named only when a proxy's message does); 401/403 -> `AuthenticationFailed`;
404 -> `NotFound`. Nothing is retried here.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import httpx

from commerce_sync.config.settings import KenticoSettings
from commerce_sync.domain.models import (
    Customer,
    Order,
    OrderStatus,
    Product,
    ReturnRequest,
    StockLevel,
)
from commerce_sync.systems.attempts import NO_MEMORY, AttemptMemory, fingerprint
from commerce_sync.systems.errors import (
    AuthenticationFailed,
    ConnectorError,
    NotFound,
    PermanentError,
    ThrottledError,
    TransientError,
    ValidationFailed,
)
from commerce_sync.systems.kentico import exactjson, mapping
from commerce_sync.systems.kentico.cache import REFERENCE_TTL_S, SKU_NUMBER_TTL_S, Expiring
from commerce_sync.systems.kentico.formats import merge_custom_data, where_datetime, where_text
from commerce_sync.systems.kentico.lookups import KenticoLookups
from commerce_sync.systems.kentico.mapping import GeoTables, MappingError
from commerce_sync.systems.kentico.schema import (
    ADDRESS,
    COUNTRY,
    CUSTOMER,
    ORDER,
    ORDER_ADDRESS,
    ORDER_ITEM,
    ORDER_STATUS,
    RETURN_REQUEST,
    SKU,
    STATE,
    TABLES,
)
from commerce_sync.systems.kentico.writes import check_write
from commerce_sync.systems.observe import RequestHook, ResponseHook
from commerce_sync.systems.read_retries import read_with_retries
from commerce_sync.systems.uncertain_creates import sending_create

log = logging.getLogger(__name__)
SYSTEM = "kentico"
Row = dict[str, Any]
_FIELD = re.compile(r"(?:field|column name|column)\s+'([^']+)'", re.IGNORECASE)
_IN_CHUNK = 100
_ADDRESS_GUIDS = uuid.uuid5(uuid.NAMESPACE_URL, "commerce-sync:kentico:COM_Address")


@dataclass
class StockPushResult:
    """What `set_stock_many` did: SKUs written, and each failed SKU with its error."""

    updated: list[str] = field(default_factory=list)
    failed: dict[str, ConnectorError] = field(default_factory=dict)


def _in(column: str, values: Iterable[int]) -> str:
    return f"{column} IN ({', '.join(str(int(v)) for v in sorted(set(values)))})"


def _chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def address_guid(customer_id: int, address: Mapping[str, Any]) -> str:
    """The `AddressGUID` an address create of ours writes: a UUID derived from the
    customer and the row's values, so every attempt of one create names the same row."""
    return str(uuid.uuid5(_ADDRESS_GUIDS, f"{customer_id}:{fingerprint(address)}"))


def _id(value: str | int, what: str) -> int:
    text = str(value).strip()
    if not text.isdigit():
        raise NotFound(SYSTEM, f"{what} id {value!r} is not a Kentico id", status=404)
    return int(text)


class KenticoClient:
    """Async connector for one Kentico site; one pooled HTTP client, no retries."""

    def __init__(
        self,
        settings: KenticoSettings,
        *,
        timeout_s: float = 15.0,
        lookups: KenticoLookups | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.lookups = lookups or KenticoLookups()
        # Reference data, shared with `with_lookups` views, kept `cache.py`'s while.
        self._geo_cache: Expiring[str, GeoTables] = Expiring(REFERENCE_TTL_S)
        self._status_cache: Expiring[str, frozenset[int]] = Expiring(REFERENCE_TTL_S)
        self._sku_numbers: Expiring[int, str] = Expiring(SKU_NUMBER_TTL_S)
        self._http = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/") + "/rest",
            auth=httpx.BasicAuth(settings.username, settings.password.get_secret_value()),
            timeout=httpx.Timeout(timeout_s),
            headers={"accept": "application/json"},
            transport=transport,
        )

    def with_lookups(self, lookups: KenticoLookups) -> KenticoClient:
        """A view on the same connection pool that maps with another pair's lookups.

        Close only the client that made the view.
        """
        view = copy.copy(self)
        view.lookups = lookups
        return view

    def observe_responses(self, hook: ResponseHook) -> None:
        """Call `hook` with every answer this client gets (the worker counts API calls)."""
        self._http.event_hooks["response"].append(hook)

    def observe_requests(self, hook: RequestHook) -> None:
        """Await `hook` before every request this client sends (the worker's call budget)."""
        self._http.event_hooks["request"].append(hook)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> KenticoClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---- HTTP -------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """One call; a GET turned away for a moment is sent again (`read_retries`)."""

        def send() -> Awaitable[Any]:
            return self._call_once(method, path, params=params, body=body)

        return await (read_with_retries(send) if method == "GET" else send())

    async def _call_once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
    ) -> Any:
        query = {"format": "json", **(params or {})}
        content = exactjson.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if content is not None else None
        try:
            response = await self._http.request(
                method, path, params=query, content=content, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise TransientError(
                SYSTEM, f"{method} {path} timed out: {type(exc).__name__}"
            ) from None
        except httpx.HTTPError as exc:
            raise TransientError(SYSTEM, f"{method} {path} failed: {type(exc).__name__}") from None
        log.debug("kentico %s %s -> %s", method, path, response.status_code)
        if response.status_code >= 300:
            raise self._error(method, path, response)
        if not response.content:
            return None
        try:
            return exactjson.loads(response.content)
        except ValueError:
            raise TransientError(
                SYSTEM, f"{method} {path}: unreadable response", status=response.status_code
            ) from None

    @staticmethod
    def _error(method: str, path: str, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        message = response.text.strip()[:500] or response.reason_phrase
        retry_after = _retry_after(response.headers.get("retry-after"))
        where = f"{method} {path}: {message}"
        if status == 429 or (status == 503 and retry_after is not None):
            return ThrottledError(SYSTEM, where, status=status, retry_after_s=retry_after)
        if status >= 500:
            return TransientError(SYSTEM, where, status=status, retry_after_s=retry_after)
        if status in (400, 422):
            match = _FIELD.search(message)
            return ValidationFailed(
                SYSTEM, where, status=status, field=match.group(1) if match else None
            )
        if status in (401, 403):
            return AuthenticationFailed(SYSTEM, f"{method} {path}: access denied", status=status)
        if status == 404:
            return NotFound(SYSTEM, where, status=status)
        if status == 408:
            return TransientError(SYSTEM, where, status=status)
        return PermanentError(SYSTEM, where, status=status)

    def _site_path(self, object_type: str) -> str:
        table = TABLES[object_type]
        if table.site_field:
            return f"/{object_type}/site/{self.settings.site_name}"
        return f"/{object_type}"

    async def _list(
        self,
        object_type: str,
        *,
        where: str | None = None,
        orderby: str | None = None,
        topn: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> list[Row]:
        params: dict[str, str] = {}
        if where:
            params["where"] = where
        if orderby:
            params["orderby"] = orderby
        if topn is not None:
            params["topn"] = str(topn)
        if columns:
            params["columns"] = ",".join(columns)
        body = await self._call("GET", self._site_path(object_type), params=params)
        return _unwrap_list(object_type, body)

    async def _list_in(
        self, object_type: str, column: str, ids: Iterable[int], **kwargs: Any
    ) -> list[Row]:
        rows: list[Row] = []
        for chunk in _chunks(sorted(set(ids))):
            rows.extend(await self._list(object_type, where=_in(column, chunk), **kwargs))
        return rows

    async def _get(self, object_type: str, row_id: int) -> Row:
        return _unwrap_one(object_type, await self._call("GET", f"/{object_type}/{row_id}"))

    async def _create(self, object_type: str, values: Mapping[str, Any]) -> Row:
        """POSTs one object; returns Kentico's answer, the new id and GUID only."""
        self._check(object_type, values, creating=True)
        body = await self._call("POST", self._site_path(object_type), body=values)
        return _unwrap_one(object_type, body)

    async def _update(self, object_type: str, row_id: int, values: Mapping[str, Any]) -> None:
        self._check(object_type, values, creating=False)
        await self._call("PUT", f"/{object_type}/{row_id}", body=values)

    def _check_addresses(self, addresses: Iterable[Mapping[str, Any]], *, creating: bool) -> None:
        """The COM_Address bodies of one customer write, before its customer is written
        (their `AddressCustomerID` is only known then)."""
        for address in addresses:
            self._check(ADDRESS, {"AddressCustomerID": 0, **address}, creating=creating)

    def _check(self, object_type: str, values: Mapping[str, Any], *, creating: bool) -> None:
        try:
            check_write(TABLES[object_type], values, creating=creating)
        except MappingError as exc:
            raise self._validation(exc) from None

    async def _delete(self, object_type: str, row_id: int) -> None:
        await self._call("DELETE", f"/{object_type}/{row_id}")

    async def _pages(
        self, object_type: str, modified_since: datetime, page_size: int
    ) -> AsyncIterator[list[Row]]:
        """Rows changed after `modified_since`, a page at a time, paged by key."""
        table = TABLES[object_type]
        assert table.modified_field is not None
        changed = f"{table.modified_field} > '{where_datetime(modified_since)}'"
        last = 0
        while True:
            rows = await self._list(
                object_type,
                where=f"{changed} AND {table.id_field} > {last}",
                orderby=f"{table.id_field} ASC",
                topn=page_size,
            )
            if not rows:
                return
            yield rows
            if len(rows) < page_size:
                return
            last = int(rows[-1][table.id_field])

    def _validation(self, exc: MappingError) -> ValidationFailed:
        return ValidationFailed(SYSTEM, str(exc), field=exc.field)

    async def geo(self) -> GeoTables:
        """`cms.country` and `cms.state`, read once per client while they last."""
        geo = self._geo_cache.get("geo")
        if geo is None:
            countries = await self._list(
                COUNTRY, columns=("CountryID", "CountryTwoLetterCode"), orderby="CountryID"
            )
            states = await self._list(
                STATE,
                columns=("StateID", "StateCode", "StateDisplayName", "StateCountryID"),
                orderby="StateID",
            )
            geo = GeoTables.from_rows(countries, states)
            self._geo_cache.put("geo", geo)
        return geo

    async def order_status_ids(self) -> frozenset[int]:
        """The site's `COM_OrderStatus` ids, read once per client while they last: Kentico
        would store an `OrderStatusID` that names no status without a word (or refuse it
        with a page that names no field), so the connector checks the id itself."""
        ids = self._status_cache.get("ids")
        if ids is None:
            rows = await self._list(ORDER_STATUS, columns=("StatusID",), orderby="StatusID")
            ids = frozenset(int(row["StatusID"]) for row in rows)
            self._status_cache.put("ids", ids)
        return ids

    async def sku_numbers(self, sku_ids: Iterable[int]) -> dict[int, str]:
        """`SKUNumber` of each SKUID that exists: from the cache, and one list call per 100
        SKUs it lacks (order lines name their SKU by id only)."""
        wanted = [int(sku_id) for sku_id in sku_ids]
        missing = self._sku_numbers.missing(wanted)
        if missing:
            rows = await self._list_in(SKU, "SKUID", missing, columns=("SKUID", "SKUNumber"))
            self._sku_numbers.put_many((int(r["SKUID"]), str(r["SKUNumber"])) for r in rows)
        found: dict[int, str] = {}
        for sku_id in wanted:
            number = self._sku_numbers.get(sku_id)
            if number is not None:
                found[sku_id] = number
        return found

    # ---- orders -----------------------------------------------------------------

    async def get_order(self, order_id: str | int) -> Order:
        row = await self._get(ORDER, _id(order_id, "order"))
        return (await self._orders_from_rows([row]))[0]

    async def iter_orders_changed_since(
        self, since: datetime, page_size: int = 100
    ) -> AsyncIterator[Order]:
        async for rows in self._pages(ORDER, since, page_size):
            for order in await self._orders_from_rows(rows):
                yield order

    async def _orders_from_rows(self, rows: list[Row]) -> list[Order]:
        """Whole orders for a page of COM_Order rows: three list calls whatever the page
        size (items, order addresses, customers), sent side by side as none needs
        another's answer; then one more when a SKU number is not cached. The customer's
        own addresses (COM_Address) are not read: an order's customer has the order's
        addresses (`mapping.order_from_native`)."""
        order_ids = [int(row["OrderID"]) for row in rows]
        customer_ids = [int(row["OrderCustomerID"]) for row in rows if row.get("OrderCustomerID")]
        geo, items, addresses, customer_rows = await asyncio.gather(
            self.geo(),
            self._list_in(ORDER_ITEM, "OrderItemOrderID", order_ids),
            self._list_in(ORDER_ADDRESS, "AddressOrderID", order_ids),
            self._list_in(CUSTOMER, "CustomerID", customer_ids),
        )
        customers = {int(c["CustomerID"]): c for c in customer_rows}
        sku_ids = [int(i["OrderItemSKUID"]) for i in items if i.get("OrderItemSKUID")]
        sku_numbers = await self.sku_numbers(sku_ids)
        orders = []
        for row in rows:
            order_id = int(row["OrderID"])
            customer = customers.get(int(row.get("OrderCustomerID") or 0))
            if customer is None:
                raise NotFound(SYSTEM, f"customer of order {order_id} not found")
            try:
                orders.append(
                    mapping.order_from_native(
                        row,
                        [i for i in items if i["OrderItemOrderID"] == order_id],
                        [a for a in addresses if a["AddressOrderID"] == order_id],
                        customer,
                        sku_numbers,
                        self.lookups,
                        geo,
                    )
                )
            except MappingError as exc:
                raise self._validation(exc) from None
        return orders

    async def set_order_status(
        self,
        order_id: str | int,
        status: OrderStatus,
        erp_ref: str | None = None,
        note: str | None = None,
    ) -> OrderStatus | None:
        """Set `OrderStatusID`; `erp_ref` and `note` go into `OrderCustomData`.

        Returns the status the order had before (for a compensation to restore), or
        None when that status is not in the lookups.
        """
        previous, _ = await self._write_status(order_id, status, erp_ref, note, None)
        return previous

    async def write_order_status(
        self,
        order_id: str | int,
        status: OrderStatus,
        erp_ref: str | None = None,
        note: str | None = None,
        *,
        custom_data: str | None = None,
    ) -> str | None:
        """`set_order_status` for a caller that holds the order's `OrderCustomData`
        (`Order.store_notes`): given, the PUT merges into it and no GET comes first, so
        the write is one call. Returns the `OrderCustomData` written (None: not written).

        The `PUT` is the update of KEN-REST "Manipulating data" (`PUT
        /rest/{objecttype}/{id}` with the fields that change, docs/systems/kentico.md §4);
        `OrderCustomData` is one XML text, so the PUT replaces all of it. Merging into
        the caller's copy instead of a fresh read loses a change someone else made to
        that field after the caller read it; a GET first narrows that window to the time
        between two requests but does not close it (the REST service documents no
        conditional write [INFERRED from its absence in KEN-REST]). The order run passes
        its copy only while no `order.updated` came from the store since it was read
        (workflows/order_sync.py). The same copy gives the same body on a retry:
        idempotent."""
        _, written = await self._write_status(order_id, status, erp_ref, note, custom_data)
        return written

    async def _write_status(
        self,
        order_id: str | int,
        status: OrderStatus,
        erp_ref: str | None,
        note: str | None,
        custom_data: str | None,
    ) -> tuple[OrderStatus | None, str | None]:
        row_id = _id(order_id, "order")
        try:
            status_id = mapping.status_to_id(status, self.lookups)
        except MappingError as exc:
            raise self._validation(exc) from None
        if status_id not in await self.order_status_ids():
            raise ValidationFailed(
                SYSTEM,
                f"order status {status.value!r} maps to StatusID {status_id}, which the "
                f"site {self.settings.site_name!r} does not have",
                field="OrderStatusID",
            )
        previous: OrderStatus | None = None
        if custom_data is None:
            row = await self._get(ORDER, row_id)
            custom_data = row.get("OrderCustomData") or ""
            try:
                previous = mapping.status_from_id(row.get("OrderStatusID"), self.lookups)
            except MappingError:
                previous = None
        changes: Row = {"OrderStatusID": status_id}
        updates: dict[str, str | None] = {}
        if erp_ref is not None:
            updates["ErpOrderNumber"] = erp_ref
        if note is not None:
            updates["StatusNote"] = note
        written: str | None = None
        if updates:
            written = changes["OrderCustomData"] = merge_custom_data(custom_data, updates)
        await self._update(ORDER, row_id, changes)
        return previous, written

    async def set_tracking(
        self,
        order_id: str | int,
        tracking_numbers: Sequence[str],
        carrier: str = "",
        *,
        custom_data: str | None = None,
    ) -> str:
        """`OrderTrackingNumber` (numbers joined by ", ") and the carrier in custom data.

        `custom_data`: the order's `OrderCustomData` as the caller holds it (see
        `write_order_status`); given, no GET comes first. Returns the value written."""
        row_id = _id(order_id, "order")
        if custom_data is None:
            custom_data = (await self._get(ORDER, row_id)).get("OrderCustomData") or ""
        written = merge_custom_data(custom_data, {"Carrier": carrier})
        await self._update(
            ORDER,
            row_id,
            {
                "OrderTrackingNumber": mapping.join_tracking(tracking_numbers),
                "OrderCustomData": written,
            },
        )
        return written

    async def set_paid(self, order_id: str | int, paid: bool) -> None:
        await self._update(ORDER, _id(order_id, "order"), {"OrderIsPaid": paid})

    # ---- customers --------------------------------------------------------------

    async def get_customer(self, customer_id: str | int) -> Customer:
        row = await self._get(CUSTOMER, _id(customer_id, "customer"))
        return (await self._customers_from_rows([row]))[0]

    async def find_customer_by_email(self, email: str) -> Customer | None:
        """The oldest customer with this email (compared case-insensitively), or None."""
        rows = await self._list(
            CUSTOMER,
            where=f"CustomerEmail = {where_text(email.strip())}",
            orderby="CustomerID",
            topn=1,
        )
        if not rows:
            return None
        return (await self._customers_from_rows(rows))[0]

    async def iter_customers_changed_since(
        self, since: datetime, page_size: int = 100
    ) -> AsyncIterator[Customer]:
        async for rows in self._pages(CUSTOMER, since, page_size):
            for customer in await self._customers_from_rows(rows):
                yield customer

    async def _customers_from_rows(self, rows: list[Row]) -> list[Customer]:
        geo = await self.geo()
        ids = [int(row["CustomerID"]) for row in rows]
        addresses = await self._list_in(ADDRESS, "AddressCustomerID", ids)
        try:
            return [
                mapping.customer_from_native(
                    row,
                    [a for a in addresses if a["AddressCustomerID"] == row["CustomerID"]],
                    geo,
                )
                for row in rows
            ]
        except MappingError as exc:
            raise self._validation(exc) from None

    async def create_customer(self, customer: Customer) -> str:
        """Creates the customer and its addresses; returns the new CustomerID."""
        geo = await self.geo()
        try:
            addresses = mapping.customer_addresses_to_native(customer, geo)
        except MappingError as exc:
            raise self._validation(exc) from None
        values = mapping.customer_to_native(customer)
        self._check_addresses(addresses, creating=True)  # all checked before the first write
        self._check(CUSTOMER, values, creating=True)
        row = await self._create(CUSTOMER, values)
        customer_id = int(row["CustomerID"])
        for address in addresses:
            await self._create(ADDRESS, {**address, "AddressCustomerID": customer_id})
        return str(customer_id)

    async def update_customer(
        self,
        customer_id: str | int,
        customer: Customer,
        *,
        memory: AttemptMemory = NO_MEMORY,
        settle: timedelta = timedelta(0),
    ) -> None:
        """Writes the customer's fields and the addresses it carries.

        A billing or shipping address given replaces the one flagged for that role (or
        is added); a role whose address is None is left as it is.

        An address added is created exactly once, though its answer may be lost (the
        REST service has no idempotency key, and a held POST can land after its retry):
        - its `AddressGUID` is a reference derived from the customer and the row's
          content (`address_guid`). Kentico keeps the GUID a write gives (a GUID given
          is how objects are matched across instances by content staging [INFERRED];
          the REST service loads the object as sent, KEN-REST "Manipulating data");
        - before a create, the customer's rows (`where=AddressCustomerID = n`, KEN-REST
          "Getting data") are searched for that GUID: one found is the earlier
          attempt's, reused (`GET /rest/ecommerce.address/{guid}`, by GUID, is the
          documented read of one object; the list serves the roles' matching too);
        - a retry that finds nothing sends no second POST until the pair's
          `duplicate_check_after` has passed since the first was sent
          (`uncertain_creates.sending_create`); it comes back and looks again;
        - rows sharing a GUID (a POST that landed later still) are twins: every write
          deletes all but the oldest (`DELETE /rest/ecommerce.address/{id}`, KEN-REST
          "Manipulating data"). Kentico generates distinct GUIDs itself, so only a
          repeated create of ours shares one. The GUID is not relied on being unique.
        """
        row_id = _id(customer_id, "customer")
        geo = await self.geo()
        try:
            wanted = mapping.customer_addresses_to_native(customer, geo)
        except MappingError as exc:
            raise self._validation(exc) from None
        self._check_addresses(wanted, creating=True)  # all checked before the first write
        await self._update(CUSTOMER, row_id, mapping.customer_to_native(customer))
        if not wanted:
            return
        existing = await self._without_twins(
            await self._list(ADDRESS, where=f"AddressCustomerID = {row_id}")
        )
        roles = {
            role
            for address in wanted
            for role in ("AddressIsBilling", "AddressIsShipping")
            if address[role]
        }
        used: set[int] = set()
        for address in wanted:
            guid = address_guid(row_id, address)
            match = next(
                (
                    row
                    for row in existing
                    if int(row["AddressID"]) not in used
                    and str(row.get("AddressGUID", "")).lower() == guid
                ),
                None,
            ) or next(
                (
                    row
                    for row in existing
                    if int(row["AddressID"]) not in used
                    and any(address[role] and row.get(role) for role in roles)
                ),
                None,
            )
            if match is None:
                values = {**address, "AddressCustomerID": row_id, "AddressGUID": guid}
                with sending_create(memory, SYSTEM, guid, settle, what="customer address"):
                    await self._create(ADDRESS, values)
                continue
            used.add(int(match["AddressID"]))
            values = dict(address)
            for role in ("AddressIsBilling", "AddressIsShipping"):
                if role not in roles:  # a role this update does not touch stays
                    values[role] = bool(match.get(role))
            changes = {k: v for k, v in values.items() if match.get(k) != v}
            if changes:
                await self._update(ADDRESS, int(match["AddressID"]), changes)
        for row in existing:
            if int(row["AddressID"]) in used:
                continue
            clear = {role: False for role in roles if row.get(role)}
            if clear:
                await self._update(ADDRESS, int(row["AddressID"]), clear)

    async def _without_twins(self, rows: list[Row]) -> list[Row]:
        """`rows` by `AddressID`, each GUID's oldest row only: the later ones (a create
        that landed after its retry had made the row) are deleted."""
        kept: dict[str, Row] = {}
        out: list[Row] = []
        for row in sorted(rows, key=lambda r: int(r["AddressID"])):
            guid = str(row.get("AddressGUID") or "").lower()
            if guid and guid in kept:
                log.warning(
                    "kentico: address %s repeats address %s (a late create): deleting it",
                    row["AddressID"],
                    kept[guid]["AddressID"],
                )
                await self._delete(ADDRESS, int(row["AddressID"]))
                continue
            if guid:
                kept[guid] = row
            out.append(row)
        return out

    async def delete_customer(self, customer_id: str | int) -> None:
        """Removes a customer (and its addresses); refused while orders refer to it."""
        await self._delete(CUSTOMER, _id(customer_id, "customer"))

    async def list_customers_where(self, where: str) -> list[Customer]:
        """Every customer matching a REST `where` condition, by `CustomerID`, with their
        addresses (no address call when none matches)."""
        rows = await self._list(CUSTOMER, where=where, orderby="CustomerID")
        return await self._customers_from_rows(rows) if rows else []

    async def set_customer_enabled(self, customer_id: int, enabled: bool) -> None:
        """`CustomerEnabled` alone (Kentico's active flag)."""
        await self._update(CUSTOMER, customer_id, {"CustomerEnabled": enabled})

    async def list_customer_address_rows(self, customer_id: int) -> list[Row]:
        """The customer's `COM_Address` rows as stored (roles `AddressIsBilling` and
        `AddressIsShipping` included)."""
        return await self._list(ADDRESS, where=f"AddressCustomerID = {customer_id}")

    async def update_address(self, address_id: int, values: Mapping[str, Any]) -> None:
        """Writes the given columns of one customer address."""
        await self._update(ADDRESS, address_id, values)

    async def delete_address(self, address_id: int) -> None:
        """Removes one customer address."""
        await self._delete(ADDRESS, address_id)

    async def list_order_statuses_of_customer(self, customer_id: int) -> list[Row]:
        """The customer's orders (`OrderCustomerID`) as `OrderID` / `OrderStatusID` rows,
        by `OrderID`."""
        return await self._list(
            ORDER,
            where=f"OrderCustomerID = {customer_id}",
            orderby="OrderID",
            columns=("OrderID", "OrderStatusID"),
        )

    async def set_order_customer(self, order_id: int, customer_id: int) -> None:
        """Makes the order the customer's (`OrderCustomerID`); nothing is written when it
        already is."""
        row = await self._get(ORDER, order_id)
        if row.get("OrderCustomerID") != customer_id:
            await self._update(ORDER, order_id, {"OrderCustomerID": customer_id})

    # ---- products and stock -----------------------------------------------------

    async def get_product_by_sku(self, sku: str) -> Product | None:
        rows = await self._sku_rows([sku])
        if not rows:
            return None
        return mapping.product_from_native(rows[0], self.lookups)

    async def iter_products_changed_since(
        self, since: datetime, page_size: int = 100
    ) -> AsyncIterator[Product]:
        async for rows in self._pages(SKU, since, page_size):
            for row in rows:
                yield mapping.product_from_native(row, self.lookups)

    async def create_product(self, product: Product) -> str:
        """Creates the SKU (inventory tracked, no stock yet); returns the new SKUID."""
        try:
            values = mapping.product_to_native(product, self.lookups)
        except MappingError as exc:
            raise self._validation(exc) from None
        row = await self._create(
            SKU, {**values, "SKUTrackInventory": "ByProduct", "SKUAvailableItems": 0}
        )
        return str(row["SKUID"])

    async def update_product(self, product_id: str | int, product: Product) -> None:
        try:
            values = mapping.product_to_native(product, self.lookups)
        except MappingError as exc:
            raise self._validation(exc) from None
        await self._update(SKU, _id(product_id, "product"), values)

    async def delete_product(self, product_id: str | int) -> None:
        await self._delete(SKU, _id(product_id, "product"))

    async def _sku_rows(self, skus: Sequence[str]) -> list[Row]:
        """The SKU rows of these SKU numbers; the SKUID -> SKUNumber pairs they carry go
        into the cache `sku_numbers` reads (an order of these SKUs then needs no look-up)."""
        rows: list[Row] = []
        for chunk in _chunks(list(dict.fromkeys(skus))):
            literals = ", ".join(where_text(sku) for sku in chunk)
            rows.extend(await self._list(SKU, where=f"SKUNumber IN ({literals})", orderby="SKUID"))
        self._sku_numbers.put_many(
            (int(row["SKUID"]), str(row["SKUNumber"])) for row in rows if row.get("SKUNumber")
        )
        return rows

    async def get_stock(self, sku: str) -> StockLevel:
        rows = await self._sku_rows([sku])
        if not rows:
            raise NotFound(SYSTEM, f"no SKU {sku!r}", status=404)
        return mapping.stock_from_native(rows[0])

    async def set_stock(self, sku_or_id: str | int, quantity: int) -> None:
        """Absolute `SKUAvailableItems`; an int is a SKUID, a str a SKU number."""
        if isinstance(sku_or_id, int):
            sku_id = sku_or_id
        else:
            rows = await self._sku_rows([sku_or_id])
            if not rows:
                raise NotFound(SYSTEM, f"no SKU {sku_or_id!r}", status=404)
            sku_id = int(rows[0]["SKUID"])
        await self._update(SKU, sku_id, {"SKUAvailableItems": int(quantity)})

    async def set_stock_many(self, quantities: Mapping[str, int]) -> StockPushResult:
        """One PUT per SKU (Kentico has no batch call); a failed SKU does not stop the rest.

        The SKU ids are read first (one list call per 100 SKUs); if that read fails the
        error is raised and nothing is written.
        """
        result = StockPushResult()
        ids: dict[str, int] = {}
        for row in await self._sku_rows(list(quantities)):
            ids.setdefault(str(row["SKUNumber"]).casefold(), int(row["SKUID"]))
        for sku, quantity in quantities.items():
            sku_id = ids.get(sku.casefold())
            if sku_id is None:
                result.failed[sku] = NotFound(SYSTEM, f"no SKU {sku!r}", status=404)
                continue
            try:
                await self._update(SKU, sku_id, {"SKUAvailableItems": int(quantity)})
            except ConnectorError as exc:
                result.failed[sku] = exc
            else:
                result.updated.append(sku)
        return result

    # ---- returns ----------------------------------------------------------------

    async def get_return(self, return_id: str | int) -> ReturnRequest:
        row = await self._get(RETURN_REQUEST, _id(return_id, "return"))
        try:
            return mapping.return_from_native(row)
        except MappingError as exc:
            raise self._validation(exc) from None

    async def get_return_status(self, return_id: str | int) -> str:
        row = await self._get(RETURN_REQUEST, _id(return_id, "return"))
        return str(row.get("ReturnStatus") or "")

    async def set_return_status(
        self, return_id: str | int, status: str, note: str | None = None
    ) -> None:
        """`ReturnStatus` (free text: requested, approved, rejected, refunded, ...)."""
        changes: Row = {"ReturnStatus": status}
        if note is not None:
            changes["ReturnNote"] = note
        await self._update(RETURN_REQUEST, _id(return_id, "return"), changes)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _unwrap_list(object_type: str, body: Any) -> list[Row]:
    """`{"ecommerce_orders": [{"COM_Order": [...]}, {"TotalRecords": [...]}]}` -> rows."""
    table = TABLES[object_type]
    if not isinstance(body, dict):
        raise TransientError(SYSTEM, f"{object_type}: unexpected list shape")
    parts = body.get(table.list_key)
    if parts is None:
        return []
    if not isinstance(parts, list):
        raise TransientError(SYSTEM, f"{object_type}: unexpected list shape")
    for part in parts:
        if isinstance(part, dict) and table.class_name in part:
            rows = part[table.class_name]
            return [dict(r) for r in rows] if isinstance(rows, list) else [dict(rows)]
    return []


def _unwrap_one(object_type: str, body: Any) -> Row:
    """`{"COM_Order": [{...}]}` (or `{"ecommerce.order": {...}}`) -> the row."""
    table = TABLES[object_type]
    if isinstance(body, dict):
        inner = body.get(table.class_name, body.get(object_type))
        if isinstance(inner, list) and inner and isinstance(inner[0], dict):
            return dict(inner[0])
        if isinstance(inner, dict):
            return dict(inner)
    raise TransientError(SYSTEM, f"{object_type}: unexpected object shape")
