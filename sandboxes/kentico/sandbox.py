"""A faithful local Kentico (12/13 REST service) for tests and the embedded default.

Real API (`docs/systems/kentico.md`), under `/rest/`:

- `GET /rest/{objecttype}[/all|/currentsite|/site/{sitename}]?format=json&where=&orderby=&topn=&columns=`
  answers the wrapped list `{"ecommerce_orders": [{"COM_Order": [...]}, {"TotalRecords":
  [{"TotalRecords": "N"}]}]}` (`TotalRecords` counts the matches before `topn`).
  `where` is a small SQL WHERE reader (`restquery.py`); `orderby` is `Col [ASC|DESC], ...`.
  There is no offset paging: page by key (`OrderID > last`, `orderby=OrderID`, `topn=N`).
- `GET /rest/{objecttype}/{id}` (or its GUID) answers `{"COM_Order": [{...}]}`.
- `POST /rest/{objecttype}[/currentsite|/site/{sitename}]` creates one object (plain
  JSON object, or wrapped in its class name); `PUT /rest/{objecttype}/{id}` writes only
  the fields sent. Both answer `201 Created` with a `Location` and a body holding only
  the object's id and GUID, `{"COM_Order": {"OrderID": 7, "OrderGUID": "..."}}`.
  `DELETE` answers `200` with the same id body and removes the object (child rows go
  with it: a customer's addresses, an order's items and addresses).
- **Writes are not validated** ("When inserting or updating data via the REST service,
  Xperience does not perform any validation", KEN-REST "Manipulating data using REST",
  https://docs.kentico.com/13/integrating-3rd-party-systems/xperience-rest-service/manipulating-data-using-rest).
  So the sandbox stores an object without the fields a shopper form would require, a
  column it does not know is dropped, and an id in a PUT body is ignored (see
  `_create` / `_update` for the sources). What still fails is what the database
  refuses: a value the column's type cannot hold and a foreign key to no row.
- Basic authentication with the configured Kentico user; a missing or wrong one is a
  `403` with a plain-text body. Unknown object type, id or site: `404`
  (`ReturnNotFoundStatus`; its empty body is [INFERRED]). Anything that throws inside
  the service (a malformed body, a bad `where` or `columns`, a database refusal) is
  WCF's generic `400` "Request Error" HTML page, which names no field (see
  `_request_error`). No rate limit (the kit's faults still apply).
- Every write stamps the table's `...LastModified` column, so `where=XLastModified >
  '...'` reads changes incrementally. Datetimes are UTC (the site's time zone).

Object types: `ecommerce.order`, `.orderitem`, `.orderaddress`, `.orderstatus`,
`.customer`, `.address`, `.sku`, `.currency`, `.shippingoption`, `.paymentoption`,
`cms.country`, `cms.state` (seeded with every ISO-3166 country and the US and Canadian
subdivisions; addresses refer to them by `AddressCountryID` / `AddressStateID`), and the
project-defined custom table of return requests,
`customtableitem.commercesync.returnrequest` (see `schema.py`).

Writes through the REST service fire no events: the store's event hook ignores the
integration user's own changes, so a status written back by the sync does not echo (as
the shipped emitter does, `emitters/kentico/src/EmitterModule.cs`).
Events come from the shopper side, the control calls below. They are the thin store
events of docs/project-contracts.md §1.2 (project-defined, like the custom table),
delivered with Standard Webhooks headers signed with the target's `whsec_...` secret:

- `POST /_sandbox/orders` (shopper order) -> `order.created`
- `PUT /_sandbox/orders/{id}` (`{"shipping_address", "note"}`, the shopper edits) -> `order.updated`
- `POST /_sandbox/orders/{id}/cancel` -> `order.cancelled`
- `POST /_sandbox/returns` (`{"order", "lines": [{"sku", "quantity"}], "reason"}`) -> `return.requested`
- `POST /_sandbox/customers`, `PUT /_sandbox/customers/{id}` -> `customer.created` / `customer.updated`

Simplifications: prices are in the main currency whatever the order currency (exchange
rate 1); the shopper's shipping, tax and discount totals are taken as given (default 0).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pycountry
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from commerce_sync.config.settings import Settings
from commerce_sync.intake.proofs import sign_standard_webhook
from commerce_sync.systems.kentico import exactjson
from commerce_sync.systems.kentico.formats import (
    dump_custom_data,
    dump_payment_result,
    format_datetime,
)
from commerce_sync.systems.kentico.lookups import KenticoLookups
from commerce_sync.systems.kentico.schema import (
    ADDRESS,
    ADDRESS_TYPE_BILLING,
    ADDRESS_TYPE_SHIPPING,
    COUNTRY,
    CURRENCY,
    CUSTOMER,
    DATETIME,
    ORDER,
    ORDER_ADDRESS,
    ORDER_ITEM,
    ORDER_STATUS,
    PAYMENT_OPTION,
    RETURN_REQUEST,
    SHIPPING_OPTION,
    SKU,
    STATE,
    TABLES,
    Table,
)
from sandboxes.kentico.restquery import (
    QueryError,
    coerce,
    parse_orderby,
    parse_where,
    sort_rows,
)
from sandboxes.kit import Sandbox, SandboxEvent, WebhookTarget
from sandboxes.seed import SEED_CURRENCY, SEED_CUSTOMERS, SEED_PRODUCTS

Row = dict[str, Any]

# Child rows deleted with their parent (Kentico's child object types).
_CHILDREN: dict[str, tuple[tuple[str, str], ...]] = {
    CUSTOMER: ((ADDRESS, "AddressCustomerID"),),
    ORDER: ((ORDER_ITEM, "OrderItemOrderID"), (ORDER_ADDRESS, "AddressOrderID")),
}
_SUBDIVISION_COUNTRIES = ("US", "CA")


class _NotFoundError(Exception):
    """`ReturnNotFoundStatus` / `ReturnSiteNotFoundStatus`: a 404 without a body."""


class _RequestError(Exception):
    """Something threw inside the REST service (see `_request_error`)."""


# WCF's `WebErrorHandler.ProvideFault` (System.ServiceModel.Web, .NET Framework reference
# source) answers any exception that is not a WebFaultException with
# `CreateHtmlResponse`: status 400 unless one was set, `text/html`, and the server error
# page of `HelpHtmlBuilder.CreateServerErrorPage` without the exception's details
# (includeExceptionDetailInFaults is off by default). Kentico's own `RESTErrorHandler`
# only logs the exception to the event log; its `ProvideFault` does nothing (Kentico's
# CMS.WebServices source, RESTErrorHandler.cs). So the client never learns which field.
_REQUEST_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>Request Error</title></head><body>"
    '<div id="content"><p class="heading1">Request Error</p>'
    "<p>The server encountered an error processing the request. "
    "See server logs for more details.</p></div></body></html>"
)


def _request_error() -> Response:
    return Response(_REQUEST_ERROR_PAGE, status_code=400, media_type="text/html")


# ---- control-plane bodies ---------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ShopperCustomer(_Body):
    email: str = Field(min_length=3)
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    company: str = ""


class ShopperAddress(_Body):
    name: str = ""
    company: str = ""
    line1: str = Field(min_length=1)
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = Field(min_length=2, max_length=3)
    phone: str = ""


class ShopperLine(_Body):
    sku: str
    quantity: int = Field(ge=1)
    unit_price: Decimal | None = Field(default=None, ge=0)
    tax: Decimal | None = Field(default=None, ge=0)


class ShopperPayment(_Body):
    method: str = "card"
    reference: str = ""
    paid: bool = True


class ShopperOrder(_Body):
    customer: ShopperCustomer
    shipping_address: ShopperAddress
    billing_address: ShopperAddress | None = None
    lines: list[ShopperLine] = Field(min_length=1)
    currency: str = SEED_CURRENCY
    shipping_method: str = ""
    payment: ShopperPayment | None = None
    shipping_total: Decimal = Field(default=Decimal("0"), ge=0)
    tax_total: Decimal = Field(default=Decimal("0"), ge=0)
    discount_total: Decimal = Field(default=Decimal("0"), ge=0)
    note: str = ""


class ShopperOrderEdit(_Body):
    shipping_address: ShopperAddress | None = None
    note: str | None = None


class ShopperReturnLine(_Body):
    sku: str
    quantity: int = Field(ge=1)
    reason: str = ""


class ShopperReturn(_Body):
    order: str
    lines: list[ShopperReturnLine] = Field(min_length=1)
    reason: str = ""


class ShopperProfile(_Body):
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    company: str | None = None
    address: ShopperAddress | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _event_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class KenticoSandbox(Sandbox):
    name = "kentico"

    def __init__(
        self,
        username: str,
        password: str,
        site_name: str = "DancingGoat",
        lookups: KenticoLookups | None = None,
    ) -> None:
        self.username = username
        self.password = password
        self.site_name = site_name
        self.lookups = lookups or KenticoLookups()
        self.site_id = self.lookups.site_id
        self.rows: dict[str, dict[int, Row]] = {}
        self.next_ids: dict[str, int] = {}
        super().__init__()

    # ---- state ------------------------------------------------------------------

    def reset_state(self) -> None:
        # Order ids go on across resets, as a real store never reuses an OrderID: workflow
        # ids are built from them (`order:{pair}:{id}`) and outlive a reset.
        next_order_id = self.next_ids.get(ORDER, 1)
        next_return_id = self.next_ids.get(RETURN_REQUEST, 1)  # likewise `return:{pair}:{id}`
        self.rows = {object_type: {} for object_type in TABLES}
        self.next_ids = {object_type: 1 for object_type in TABLES}
        self.next_ids[ORDER] = next_order_id
        self.next_ids[RETURN_REQUEST] = next_return_id
        self._seed()

    def _seed(self) -> None:
        lookups = self.lookups
        for n, country in enumerate(sorted(pycountry.countries, key=lambda c: c.name), start=1):
            self._insert(
                COUNTRY,
                {
                    "CountryID": n,
                    "CountryName": country.name.replace(" ", ""),
                    "CountryDisplayName": country.name,
                    "CountryTwoLetterCode": country.alpha_2,
                    "CountryThreeLetterCode": country.alpha_3,
                },
            )
        for alpha2 in _SUBDIVISION_COUNTRIES:
            country_id = self._country_id(alpha2)
            subdivisions = [s for s in pycountry.subdivisions if s.country_code == alpha2]
            for sub in sorted(subdivisions, key=lambda s: s.code):
                self._insert(
                    STATE,
                    {
                        "StateName": sub.name.replace(" ", ""),
                        "StateDisplayName": sub.name,
                        "StateCode": sub.code.split("-", 1)[1],
                        "StateCountryID": country_id,
                    },
                )
        for code, currency_id in sorted(lookups.currency_ids.items(), key=lambda kv: kv[1]):
            self._insert(
                CURRENCY,
                {
                    "CurrencyID": currency_id,
                    "CurrencyName": code,
                    "CurrencyDisplayName": code,
                    "CurrencyCode": code,
                    "CurrencyIsMain": code == lookups.main_currency,
                    "CurrencyEnabled": True,
                    "CurrencySiteID": self.site_id,
                },
            )
        for status, status_id in sorted(lookups.order_status_ids.items(), key=lambda kv: kv[1]):
            if status_id in self.rows[ORDER_STATUS]:
                continue
            self._insert(
                ORDER_STATUS,
                {
                    "StatusID": status_id,
                    "StatusName": status,
                    "StatusDisplayName": status.replace("_", " ").title(),
                    "StatusOrder": status_id,
                    "StatusEnabled": True,
                    "StatusOrderIsPaid": status in ("processing", "shipped", "delivered"),
                    "StatusSiteID": self.site_id,
                },
            )
        for table, prefix, ids in (
            (SHIPPING_OPTION, "ShippingOption", lookups.shipping_option_ids),
            (PAYMENT_OPTION, "PaymentOption", lookups.payment_option_ids),
        ):
            for option, option_id in sorted(ids.items(), key=lambda kv: kv[1]):
                self._insert(
                    table,
                    {
                        f"{prefix}ID": option_id,
                        f"{prefix}Name": option,
                        f"{prefix}DisplayName": option.title(),
                        f"{prefix}Enabled": True,
                        f"{prefix}SiteID": self.site_id,
                    },
                )
        for n, product in enumerate(SEED_PRODUCTS, start=1):
            self._insert(
                SKU,
                {
                    "SKUID": n,
                    "SKUNumber": product.sku,
                    "SKUName": product.name,
                    "SKUDescription": product.description,
                    "SKUPrice": product.price,
                    "SKUEnabled": True,
                    "SKUAvailableItems": product.on_hand,
                    "SKUTrackInventory": "ByProduct",
                    "SKUWeight": product.weight_kg,
                    "SKUSiteID": self.site_id,
                },
            )
        for n, seed in enumerate(SEED_CUSTOMERS, start=1):
            self._insert(
                CUSTOMER,
                {
                    "CustomerID": n,
                    "CustomerFirstName": seed.first_name,
                    "CustomerLastName": seed.last_name,
                    "CustomerEmail": seed.email,
                    "CustomerPhone": seed.phone,
                    "CustomerCompany": seed.company,
                    "CustomerEnabled": True,
                    "CustomerSiteID": self.site_id,
                },
            )
            self._insert(
                ADDRESS,
                {
                    "AddressID": n,
                    "AddressName": f"{seed.first_name} {seed.last_name}, {seed.line1}, {seed.city}",
                    "AddressCustomerID": n,
                    "AddressPersonalName": f"{seed.first_name} {seed.last_name}",
                    "AddressLine1": seed.line1,
                    "AddressLine2": "",
                    "AddressCity": seed.city,
                    "AddressZip": seed.postal_code,
                    "AddressPhone": seed.phone,
                    "AddressCountryID": self._country_id(seed.country),
                    "AddressStateID": self._state_id(self._country_id(seed.country), seed.region),
                    "AddressIsBilling": True,
                    "AddressIsShipping": True,
                },
            )

    def state(self) -> dict[str, Any]:
        skip = {COUNTRY, STATE}
        out: dict[str, Any] = {
            object_type: [self._public(TABLES[object_type], row) for row in rows.values()]
            for object_type, rows in self.rows.items()
            if object_type not in skip
        }
        out["stock"] = {
            row["SKUNumber"]: row["SKUAvailableItems"] for row in self.rows[SKU].values()
        }
        return exactjson.loads(exactjson.dumps(out))  # type: ignore[no-any-return]

    # ---- row helpers ------------------------------------------------------------

    def _insert(self, object_type: str, values: Row) -> Row:
        table = TABLES[object_type]
        row: Row = dict.fromkeys(table.columns)
        row.update(values)
        row_id = row.get(table.id_field) or self.next_ids[object_type]
        row[table.id_field] = row_id
        self.next_ids[object_type] = max(self.next_ids[object_type], row_id + 1)
        now = _now()
        if table.guid_field and not row.get(table.guid_field):
            row[table.guid_field] = str(uuid.uuid4())
        if table.created_field and row.get(table.created_field) is None:
            row[table.created_field] = now
        if table.modified_field:
            row[table.modified_field] = now
        if table.site_field and row.get(table.site_field) is None:
            row[table.site_field] = self.site_id
        self.rows[object_type][row_id] = row
        return row

    def _touch(self, object_type: str, row: Row, changes: Row) -> Row:
        table = TABLES[object_type]
        row.update(changes)
        if table.modified_field:
            row[table.modified_field] = _now()
        return row

    def _public(self, table: Table, row: Row, columns: Iterable[str] | None = None) -> Row:
        names = list(columns) if columns is not None else list(table.columns)
        return {
            name: format_datetime(row[name])
            if table.columns[name] == DATETIME and row.get(name) is not None
            else row.get(name)
            for name in names
        }

    def _country_id(self, code: str) -> int:
        code = code.strip().upper()
        for row in self.rows[COUNTRY].values():
            if code in (row["CountryTwoLetterCode"], row["CountryThreeLetterCode"]):
                return int(row["CountryID"])
        raise HTTPException(status_code=422, detail=f"unknown country {code!r}")

    def _state_id(self, country_id: int, region: str) -> int | None:
        wanted = region.strip().casefold()
        if not wanted:
            return None
        for row in self.rows[STATE].values():
            if row["StateCountryID"] == country_id and wanted in (
                str(row["StateCode"]).casefold(),
                str(row["StateDisplayName"]).casefold(),
            ):
                return int(row["StateID"])
        return None

    def _sku_by_number(self, number: str) -> Row | None:
        for row in self.rows[SKU].values():
            if str(row["SKUNumber"]).casefold() == number.casefold():
                return row
        return None

    # ---- responses --------------------------------------------------------------

    def error_response(
        self, status: int, message: str, retry_after_s: float | None = None
    ) -> Response:
        headers = {}
        if retry_after_s is not None:
            headers["Retry-After"] = str(max(0, round(retry_after_s)))
        return PlainTextResponse(message, status_code=status, headers=headers)

    def _json(
        self, body: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        return Response(
            exactjson.dumps(body),
            status_code=status,
            media_type="application/json",
            headers=headers,
        )

    def _one(self, table: Table, row: Row) -> Response:
        return self._json({table.class_name: [self._public(table, row)]})

    def _written(self, table: Table, row: Row, request: Request | None) -> Response:
        """The answer to a create, update (201 + Location) or delete (200 when `request`
        is None): only the object's id and GUID.

        Kentico's CMS.WebServices `BaseRESTService.SetObjectInternal` calls
        `SetStatusAsCreated(<base>/<id>)` after `SubmitChanges` for both POST and PUT, and
        `GetResponse` writes a `DataContainer` of `IDColumn` and `GUIDColumn` named after
        the table (public copy of the Kentico 12/13 source). The JSON wrapper of that
        container (an object, not the one-element list of a GET) is [INFERRED].
        """
        body: Row = {table.id_field: row[table.id_field]}
        if table.guid_field:
            body[table.guid_field] = row[table.guid_field]
        if request is None:
            return self._json({table.class_name: body})
        location = (
            f"{str(request.base_url).rstrip('/')}/rest/{table.object_type}/{row[table.id_field]}"
        )
        return self._json({table.class_name: body}, status=201, headers={"Location": location})

    # ---- the REST service -------------------------------------------------------

    def add_api_routes(self, app: FastAPI) -> None:
        @app.api_route("/rest/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
        async def rest(request: Request, path: str) -> Response:
            if not self._authorized(request.headers.get("authorization")):
                return self.error_response(403, "Access denied. Authentication failed.")
            try:
                return await self._rest(request, path)
            except _NotFoundError:
                return Response(status_code=404)
            except _RequestError:
                return _request_error()

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        return bool(sep) and (
            hmac.compare_digest(user.encode(), self.username.encode())
            & hmac.compare_digest(password.encode(), self.password.encode())
        )

    async def _rest(self, request: Request, path: str) -> Response:
        parts = [part for part in path.split("/") if part]
        if not parts or parts[0].lower() not in TABLES:
            raise _NotFoundError  # `ModuleManager.GetObject` knows no such type
        table = TABLES[parts[0].lower()]
        rest = parts[1:]
        fmt = request.query_params.get("format", "json").lower()
        if fmt != "json":
            raise _RequestError  # the sandbox speaks JSON only
        scoped = True
        if rest in ([], ["all"]):
            scoped = False
        elif rest == ["currentsite"]:
            scoped = True
        elif len(rest) == 2 and rest[0].lower() == "site":
            if rest[1].casefold() != self.site_name.casefold():
                raise _NotFoundError  # `ReturnSiteNotFoundStatus`
        elif len(rest) == 1:
            row = self._find(table, rest[0])
            if request.method == "GET":
                return self._one(table, row)
            if request.method == "PUT":
                self._update(table, row, await self._body(request, table))
                return self._written(table, row, request)
            if request.method == "DELETE":
                answer = self._written(table, row, None)
                self._delete(table, row)
                return answer
            return Response(status_code=405)
        else:
            raise _NotFoundError
        if request.method == "GET":
            return self._list(table, request, scoped)
        if request.method == "POST":
            created = self._create(table, await self._body(request, table))
            return self._written(table, created, request)
        return Response(status_code=405)

    def _find(self, table: Table, key: str) -> Row:
        rows = self.rows[table.object_type]
        if key.isdigit() and int(key) in rows:
            return rows[int(key)]
        if table.guid_field:
            for row in rows.values():
                if str(row.get(table.guid_field, "")).lower() == key.lower():
                    return row
        raise _NotFoundError

    def _list(self, table: Table, request: Request, scoped: bool) -> Response:
        params = request.query_params
        try:
            predicate = parse_where(params.get("where", ""), table.columns)
            order = parse_orderby(params["orderby"], table.columns) if params.get("orderby") else []
        except QueryError:
            raise _RequestError from None  # SQL Server refuses the query; it throws
        columns = list(table.columns)
        if params.get("columns"):
            lowered = {name.lower(): name for name in table.columns}
            columns = []
            for name in params["columns"].split(","):
                key = name.strip().strip("[]").lower()
                if key not in lowered:
                    raise _RequestError  # "Invalid column name" from SQL Server
                columns.append(lowered[key])
        rows = [
            row
            for row in self.rows[table.object_type].values()
            if predicate(row)
            and not (scoped and table.site_field and row.get(table.site_field) != self.site_id)
        ]
        rows = sort_rows(sorted(rows, key=lambda r: r[table.id_field]), order)
        total = len(rows)
        if params.get("topn"):
            try:
                topn = int(params["topn"])
            except ValueError:
                raise _RequestError from None
            rows = rows[: max(topn, 0)]
        return self._json(
            {
                table.list_key: [
                    {table.class_name: [self._public(table, row, columns) for row in rows]},
                    {"TotalRecords": [{"TotalRecords": str(total)}]},
                ]
            }
        )

    async def _body(self, request: Request, table: Table) -> Row:
        try:
            body = exactjson.loads(await request.body())
        except ValueError:
            raise _RequestError from None  # `HierarchyHelper.LoadObjectFromJSON` throws
        if isinstance(body, dict) and len(body) == 1:
            ((key, inner),) = body.items()
            if key in (table.class_name, table.object_type):
                body = inner[0] if isinstance(inner, list) and len(inner) == 1 else inner
        if not isinstance(body, dict):
            raise _RequestError
        return body

    def _typed(self, table: Table, body: Row) -> Row:
        """The body as the table's typed values; what the database itself would refuse
        raises `_RequestError`.

        - A column the table does not have is dropped [INFERRED]: the REST service loads
          the body with `HierarchyHelper.LoadObjectFromJSON` into the info object, which
          only has the class's columns; that helper's source is not public, and the
          documentation says only that the service validates nothing.
        - A value the column's SQL type cannot hold (text in an int column) fails when
          the object is saved, and so does a foreign key to a row that does not exist
          (the `COM_*` tables' FK constraints) [INFERRED: the error is SQL Server's; what
          the client sees is WCF's generic page, `_request_error`].
        """
        lowered = {name.lower(): name for name in table.columns}
        values: Row = {}
        for key, raw in body.items():
            name = lowered.get(key.lower())
            if name is None:
                continue
            try:
                values[name] = coerce(raw, table.columns[name], name)
            except ValueError:
                raise _RequestError from None
        for name, target in table.foreign_keys.items():
            ref = values.get(name)
            if ref is not None and ref not in self.rows[target]:
                raise _RequestError
        return values

    def _create(self, table: Table, body: Row) -> Row:
        """Stores the object as sent: no required field is checked (KEN-REST,
        Manipulating data: "does not perform any validation"); the service sets the
        system fields, id and timestamps (KEN-REST, Managing objects using REST:
        "The service automatically sets the system fields of the new object")."""
        values = self._typed(table, body)
        values.pop(table.id_field, None)
        for name in (table.created_field, table.modified_field):
            if name:
                values.pop(name, None)
        return self._insert(table.object_type, values)

    def _update(self, table: Table, row: Row, body: Row) -> Row:
        """Writes the fields sent, unchecked. An id in the body is ignored, not refused:
        `SetObjectInternal` sets `info.ObjectID = oldId` after loading the body."""
        values = self._typed(table, body)
        values.pop(table.id_field, None)
        if table.modified_field:
            values.pop(table.modified_field, None)
        return self._touch(table.object_type, row, values)

    def _delete(self, table: Table, row: Row) -> None:
        row_id = row[table.id_field]
        children = _CHILDREN.get(table.object_type, ())
        child_types = {child for child, _ in children}
        for other in TABLES.values():
            if other.object_type in child_types:
                continue
            for name, target in other.foreign_keys.items():
                if target != table.object_type:
                    continue
                if any(r.get(name) == row_id for r in self.rows[other.object_type].values()):
                    raise _RequestError  # the REFERENCE constraint refuses the DELETE
        for child, column in children:
            rows = self.rows[child]
            for child_id in [k for k, r in rows.items() if r.get(column) == row_id]:
                del rows[child_id]
        del self.rows[table.object_type][row_id]

    # ---- events -----------------------------------------------------------------

    def configure_webhooks(self, target: WebhookTarget) -> None:
        if not target.secret or not target.secret.startswith("whsec_"):
            raise ValueError(
                "kentico delivers Standard Webhooks: the target needs a whsec_... secret"
            )
        self.webhook_target = target

    def delivery_request(
        self, event: SandboxEvent, target: WebhookTarget
    ) -> tuple[str, dict[str, str]]:
        headers = {"content-type": "application/json"}
        if target.secret:
            headers.update(sign_standard_webhook(target.secret, event.id, _now(), event.body))
        return target.url, headers

    def _fire(self, event_type: str, object_id: int) -> SandboxEvent:
        payload = {
            "type": event_type,
            "timestamp": _event_time(_now()),
            "data": {"id": str(object_id), "store": "kentico"},
        }
        return self.fire(event_type, payload, subject=str(object_id))

    # ---- the shopper (control plane) ---------------------------------------------

    def add_control_routes(self, router: APIRouter) -> None:
        @router.post("/orders")
        async def place_order(body: ShopperOrder) -> dict[str, str]:
            order = self._place_order(body)
            event = self._fire("order.created", order["OrderID"])
            return {"id": str(order["OrderID"]), "event_id": event.id}

        @router.put("/orders/{order_id}")
        async def edit_order(order_id: int, body: ShopperOrderEdit) -> dict[str, str]:
            order = self.rows[ORDER].get(order_id)
            if order is None:
                raise HTTPException(status_code=404, detail=f"no order {order_id}")
            if body.shipping_address is not None:
                fields = self._address_fields(body.shipping_address)
                for row in self.rows[ORDER_ADDRESS].values():
                    if (
                        row["AddressOrderID"] == order_id
                        and row["AddressType"] == ADDRESS_TYPE_SHIPPING
                    ):
                        name = fields["AddressPersonalName"] or row["AddressPersonalName"]
                        phone = fields["AddressPhone"] or row["AddressPhone"]
                        changes = {**fields, "AddressPersonalName": name, "AddressPhone": phone}
                        self._touch(ORDER_ADDRESS, row, changes)
            self._touch(ORDER, order, {"OrderNote": body.note} if body.note is not None else {})
            event = self._fire("order.updated", order_id)
            return {"id": str(order_id), "event_id": event.id}

        @router.post("/orders/{order_id}/cancel")
        async def cancel_order(order_id: int) -> dict[str, str]:
            order = self.rows[ORDER].get(order_id)
            if order is None:
                raise HTTPException(status_code=404, detail=f"no order {order_id}")
            self._touch(ORDER, order, {"OrderStatusID": self.lookups.order_status_ids["cancelled"]})
            event = self._fire("order.cancelled", order_id)
            return {"id": str(order_id), "event_id": event.id}

        @router.post("/returns")
        async def request_return(body: ShopperReturn) -> dict[str, str]:
            item = self._request_return(body)
            event = self._fire("return.requested", item["ItemID"])
            return {"id": str(item["ItemID"]), "event_id": event.id}

        @router.post("/customers")
        async def register(body: ShopperProfile) -> dict[str, str]:
            if not body.email:
                raise HTTPException(status_code=422, detail="email is required")
            customer = self._insert(CUSTOMER, {"CustomerEnabled": True})
            self._edit_profile(customer, body)
            event = self._fire("customer.created", customer["CustomerID"])
            return {"id": str(customer["CustomerID"]), "event_id": event.id}

        @router.put("/customers/{customer_id}")
        async def edit_profile(customer_id: int, body: ShopperProfile) -> dict[str, str]:
            customer = self.rows[CUSTOMER].get(customer_id)
            if customer is None:
                raise HTTPException(status_code=404, detail=f"no customer {customer_id}")
            self._edit_profile(customer, body)
            event = self._fire("customer.updated", customer_id)
            return {"id": str(customer_id), "event_id": event.id}

    def _edit_profile(self, customer: Row, body: ShopperProfile) -> None:
        changes = {
            column: value
            for column, value in (
                ("CustomerEmail", body.email),
                ("CustomerFirstName", body.first_name),
                ("CustomerLastName", body.last_name),
                ("CustomerPhone", body.phone),
                ("CustomerCompany", body.company),
            )
            if value is not None
        }
        self._touch(CUSTOMER, customer, changes)
        if body.address is not None:
            fields = self._address_fields(body.address)
            existing = [
                row
                for row in self.rows[ADDRESS].values()
                if row["AddressCustomerID"] == customer["CustomerID"]
            ]
            name = " ".join(
                part
                for part in (customer["CustomerFirstName"], customer["CustomerLastName"])
                if part
            )
            fields["AddressPersonalName"] = fields["AddressPersonalName"] or name
            fields["AddressName"] = f"{fields['AddressPersonalName']}, {fields['AddressLine1']}"
            if existing:
                self._touch(ADDRESS, existing[0], fields)
            else:
                self._insert(
                    ADDRESS,
                    {
                        **fields,
                        "AddressCustomerID": customer["CustomerID"],
                        "AddressIsBilling": True,
                        "AddressIsShipping": True,
                    },
                )

    def _address_fields(self, address: ShopperAddress) -> Row:
        country_id = self._country_id(address.country)
        return {
            "AddressPersonalName": address.name,
            "AddressLine1": address.line1,
            "AddressLine2": address.line2,
            "AddressCity": address.city,
            "AddressZip": address.postal_code,
            "AddressPhone": address.phone,
            "AddressCountryID": country_id,
            "AddressStateID": self._state_id(country_id, address.region),
        }

    def _place_order(self, body: ShopperOrder) -> Row:
        lookups = self.lookups
        currency_id = lookups.currency_ids.get(body.currency.upper())
        if currency_id is None:
            raise HTTPException(status_code=422, detail=f"unknown currency {body.currency!r}")
        shipping_id = None
        if body.shipping_method:
            shipping_id = lookups.shipping_option_ids.get(body.shipping_method)
            if shipping_id is None:
                raise HTTPException(
                    status_code=422, detail=f"unknown shipping method {body.shipping_method!r}"
                )
        payment_id = None
        if body.payment is not None:
            payment_id = lookups.payment_option_ids.get(body.payment.method)
            if payment_id is None:
                raise HTTPException(
                    status_code=422, detail=f"unknown payment method {body.payment.method!r}"
                )
        shipping_fields = self._address_fields(body.shipping_address)
        billing_fields = (
            self._address_fields(body.billing_address) if body.billing_address else shipping_fields
        )
        # check every line before changing anything
        wanted: dict[int, int] = {}
        priced: list[tuple[Row, ShopperLine, Decimal]] = []
        for line in body.lines:
            sku = self._sku_by_number(line.sku)
            if sku is None or not sku["SKUEnabled"]:
                raise HTTPException(status_code=422, detail=f"unknown SKU {line.sku!r}")
            wanted[sku["SKUID"]] = wanted.get(sku["SKUID"], 0) + line.quantity
            price = line.unit_price if line.unit_price is not None else sku["SKUPrice"]
            priced.append((sku, line, price))
        for sku_id, quantity in wanted.items():
            sku = self.rows[SKU][sku_id]
            tracked = sku["SKUTrackInventory"] not in (None, "", "Disabled")
            if tracked and (sku["SKUAvailableItems"] or 0) < quantity:
                raise HTTPException(
                    status_code=422, detail=f"not enough stock of {sku['SKUNumber']}"
                )

        customer = self._shopper_customer(body)
        subtotal = sum((price * line.quantity for _, line, price in priced), Decimal("0"))
        grand = subtotal + body.shipping_total + body.tax_total - body.discount_total
        now = _now()
        paid = body.payment is not None and body.payment.paid
        payment_result = None
        if body.payment is not None:
            payment_result = dump_payment_result(
                {
                    "date": format_datetime(now),
                    "method": body.payment.method,
                    "transactionid": body.payment.reference,
                    "completed": "1" if paid else "0",
                    "status": "completed" if paid else "pending",
                }
            )
        custom: dict[str, str] = {}
        if body.discount_total:
            custom["DiscountTotal"] = str(body.discount_total)
        order = self._insert(
            ORDER,
            {
                "OrderDate": now,
                "OrderStatusID": lookups.order_status_ids["pending"],
                "OrderCustomerID": customer["CustomerID"],
                "OrderCurrencyID": currency_id,
                "OrderShippingOptionID": shipping_id,
                "OrderPaymentOptionID": payment_id,
                "OrderTotalPrice": grand,
                "OrderTotalPriceInMainCurrency": grand,
                "OrderGrandTotal": grand,
                "OrderGrandTotalInMainCurrency": grand,
                "OrderTotalShipping": body.shipping_total,
                "OrderTotalTax": body.tax_total,
                "OrderIsPaid": paid,
                "OrderPaymentResult": payment_result,
                "OrderTrackingNumber": "",
                "OrderNote": body.note,
                "OrderCustomData": dump_custom_data(custom),
            },
        )
        order["OrderInvoiceNumber"] = str(order["OrderID"])
        for sku, line, price in priced:
            item_custom = {"TaxAmount": str(line.tax)} if line.tax is not None else {}
            self._insert(
                ORDER_ITEM,
                {
                    "OrderItemOrderID": order["OrderID"],
                    "OrderItemSKUID": sku["SKUID"],
                    "OrderItemSKUName": sku["SKUName"],
                    "OrderItemUnitCount": line.quantity,
                    "OrderItemUnitPrice": price,
                    "OrderItemTotalPrice": price * line.quantity,
                    "OrderItemTotalPriceInMainCurrency": price * line.quantity,
                    "OrderItemCustomData": dump_custom_data(item_custom),
                },
            )
            if sku["SKUTrackInventory"] not in (None, "", "Disabled"):
                self._touch(
                    SKU, sku, {"SKUAvailableItems": (sku["SKUAvailableItems"] or 0) - line.quantity}
                )
        default_name = f"{body.customer.first_name} {body.customer.last_name}".strip()
        for address_type, fields, phone in (
            (ADDRESS_TYPE_BILLING, billing_fields, body.customer.phone),
            (ADDRESS_TYPE_SHIPPING, shipping_fields, body.customer.phone),
        ):
            self._insert(
                ORDER_ADDRESS,
                {
                    **fields,
                    "AddressPersonalName": fields["AddressPersonalName"] or default_name,
                    "AddressPhone": fields["AddressPhone"] or phone,
                    "AddressOrderID": order["OrderID"],
                    "AddressType": address_type,
                },
            )
        return order

    def _shopper_customer(self, body: ShopperOrder) -> Row:
        email = body.customer.email.casefold()
        for row in sorted(self.rows[CUSTOMER].values(), key=lambda r: r["CustomerID"]):
            if str(row.get("CustomerEmail") or "").casefold() == email:
                return row
        data = body.customer
        customer = self._insert(
            CUSTOMER,
            {
                "CustomerFirstName": data.first_name,
                "CustomerLastName": data.last_name,
                "CustomerEmail": data.email,
                "CustomerPhone": data.phone,
                "CustomerCompany": data.company or body.shipping_address.company,
                "CustomerEnabled": True,
            },
        )
        name = f"{data.first_name} {data.last_name}".strip()
        pairs = [(body.shipping_address, True, body.billing_address is None)]
        if body.billing_address is not None:
            pairs.append((body.billing_address, False, True))
        for address, is_shipping, is_billing in pairs:
            fields = self._address_fields(address)
            personal = fields["AddressPersonalName"] or name
            self._insert(
                ADDRESS,
                {
                    **fields,
                    "AddressPersonalName": personal,
                    "AddressPhone": fields["AddressPhone"] or data.phone,
                    "AddressName": f"{personal}, {address.line1}, {address.city}",
                    "AddressCustomerID": customer["CustomerID"],
                    "AddressIsShipping": is_shipping,
                    "AddressIsBilling": is_billing,
                },
            )
        return customer

    def _request_return(self, body: ShopperReturn) -> Row:
        if not body.order.isdigit() or int(body.order) not in self.rows[ORDER]:
            raise HTTPException(status_code=404, detail=f"no order {body.order}")
        order_id = int(body.order)
        ordered: dict[str, int] = {}
        for item in self.rows[ORDER_ITEM].values():
            if item["OrderItemOrderID"] == order_id:
                sku = self.rows[SKU].get(item["OrderItemSKUID"])
                number = str(sku["SKUNumber"]) if sku else ""
                ordered[number] = ordered.get(number, 0) + int(item["OrderItemUnitCount"])
        asked: dict[str, int] = {}
        for line in body.lines:
            asked[line.sku] = asked.get(line.sku, 0) + line.quantity
        for sku_number, quantity in asked.items():
            if quantity > ordered.get(sku_number, 0):
                raise HTTPException(
                    status_code=422,
                    detail=f"order {order_id} has {ordered.get(sku_number, 0)} of {sku_number}",
                )
        lines = [line.model_dump() for line in body.lines]
        return self._insert(
            RETURN_REQUEST,
            {
                "ReturnOrderID": order_id,
                "ReturnLines": exactjson.dumps(lines),
                "ReturnReason": body.reason,
                "ReturnStatus": "requested",
                "ItemOrder": len(self.rows[RETURN_REQUEST]) + 1,
            },
        )


def create_sandbox(settings: Settings) -> KenticoSandbox:
    """The Kentico sandbox accepting the REST user the connector is configured with."""
    return KenticoSandbox(
        username=settings.kentico.username,
        password=settings.kentico.password.get_secret_value(),
        site_name=settings.kentico.site_name,
    )
