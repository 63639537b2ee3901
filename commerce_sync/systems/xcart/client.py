"""Async connector for X-Cart 5's REST API (XC\\RESTAPI module).

Every call goes to `{base_url}/admin.php?target=RESTAPI&_key=...&_path=entity[/id]`.
Reads use the read-only key, writes the read/write key (docs/systems/xcart.md §1). The key
travels in the query string, as X-Cart requires: the `httpx` log records are
redacted by `_RedactKeyFilter`, and no error message carries a URL.

Errors (the activity layer decides; only a GET answered 429/5xx is sent again here,
`systems/read_retries.py`):
- timeouts, connection errors, 5xx -> `TransientError` (503/429 with `Retry-After`
  -> `ThrottledError`);
- 400 -> `ValidationFailed` with the `X-REST-Error` message and the field it names;
- 401/403 -> `AuthenticationFailed`; 404 (unknown entity) and a `null` record -> `NotFound`.

Incremental reads page by id ascending and keep the records whose `lastRenewDate` /
`updateDate` is recent enough: X-Cart has no "updated since" condition. Sort fields carry
the repository's Doctrine alias (`ALIASES`), as X-Cart passes them to `addOrderBy`.
Orders placed since a time have a condition of their own (`_cnd[date]`), and the store
module's outbox (emitters/xcart/) lists what changed since a time where it is installed:
`changed_order_ids` of the port uses both before falling back to the full read.

Where commerce-sync writes into X-Cart:
- the ERP order number goes into the order's `adminNotes` on a line
  `ERP order: <ref>` (replaced, not repeated); a note is appended below it;
- tracking numbers are `ordertrackingnumber` records; the carrier and numbers are also
  written into the order's legacy `tracking` text (`UPS 1Z...`).
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import ExitStack
from datetime import datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any

import httpx
from pydantic import BaseModel, Field

from commerce_sync.config.settings import XCartSettings
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
from commerce_sync.systems.observe import RequestHook, ResponseHook
from commerce_sync.systems.read_retries import read_with_retries
from commerce_sync.systems.uncertain_creates import sending_create
from commerce_sync.systems.xcart import mapping
from commerce_sync.systems.xcart.lookups import XCartLookups

# The Doctrine alias of each entity's repository (`_cnd[orderBy]` needs it):
# Repo/Order.php queries as `o`, Repo/Product.php and Repo/Profile.php as `p`.
RETURNS = "xc-returns-orderreturn"
# The returns model's alias is X-Cart's default, the entity name's first letter
# (ARepo::getDefaultAlias) [INFERRED: no public source of the returns model was found].
ALIASES = {"order": "o", "product": "p", "profile": "p", RETURNS: "o"}
# The store module's outbox (emitters/xcart/, XLite\Module\CommerceSync\Webhooks\Model\Event),
# by the REST module's naming rule (docs/systems/xcart.md §1); its repository's alias is
# X-Cart's default, the entity name's first letter (ARepo::getDefaultAlias).
MODULE_EVENTS = "commercesync-webhooks-event"
MODULE_EVENTS_ALIAS = "e"
# The module deletes sent events a week after they were sent (emitters/xcart/,
# Core/Task/SendEvents.php, KEEP_SENT); a read reaching further back cannot rely on them.
MODULE_EVENTS_KEPT = timedelta(days=7)
SYSTEM = "xcart"
Native = dict[str, Any]

_FIELD_RE = re.compile(r"^(?:Unknown field|Input data is incorrect): ([\w\[\].-]+)")
_KEY_RE = re.compile(r"(_key=)[^&\s\"']+")


class _RedactKeyFilter(logging.Filter):
    """Masks `_key=...` in log records (httpx logs request URLs at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(
                _KEY_RE.sub(r"\1***", str(arg)) if "_key=" in str(arg) else arg for arg in args
            )
        if isinstance(record.msg, str) and "_key=" in record.msg:
            record.msg = _KEY_RE.sub(r"\1***", record.msg)
        return True


def _install_log_redaction() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactKeyFilter) for f in logger.filters):
            logger.addFilter(_RedactKeyFilter())


_install_log_redaction()


STOCK_READ_FIRST_AT_MOST = 1
"""A stock batch of at most this many SKUs reads their amounts first (`set_stock_many`)."""
PRODUCT_PAGE = 250
"""Products per page of the product listing that refreshes the SKU -> id cache."""


class StockPushResult(BaseModel):
    """What `set_stock_many` did: SKUs set, and SKUs refused with the reason."""

    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(
        default_factory=list, description="the store had that amount already: not sent"
    )
    failed: dict[str, str] = Field(default_factory=dict)


class XCartClient:
    """One pooled HTTP client per connector; use `async with` or call `aclose()`."""

    system = SYSTEM

    def __init__(
        self,
        settings: XCartSettings,
        *,
        timeout_s: float = 15.0,
        lookups: XCartLookups | None = None,
    ) -> None:
        self.settings = settings
        self.lookups = lookups or XCartLookups()
        self._http = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_s),
            headers={"Accept": "application/json"},
        )
        self._sku_ids: dict[str, int] = {}

    def with_lookups(self, lookups: XCartLookups) -> XCartClient:
        """The same connection pool, mapping with another pair's lookups (do not close it)."""
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

    async def __aenter__(self) -> XCartClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---- transport ------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        cnd: Mapping[str, Any] | None = None,
        body: Any = None,
        schema: str | None = None,
    ) -> tuple[Any, httpx.Headers]:
        """One call; a GET turned away for a moment is sent again (`read_retries`)."""

        def send() -> Awaitable[tuple[Any, httpx.Headers]]:
            return self._call_once(method, path, cnd=cnd, body=body, schema=schema)

        return await (read_with_retries(send) if method == "GET" else send())

    async def _call_once(
        self,
        method: str,
        path: str,
        *,
        cnd: Mapping[str, Any] | None,
        body: Any,
        schema: str | None,
    ) -> tuple[Any, httpx.Headers]:
        write = method != "GET"
        key = self.settings.api_key if write else self.settings.read_key
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("target", "RESTAPI"),
            ("_key", key.get_secret_value()),
            ("_path", path),
        ]
        if schema:
            params.append(("_schema", schema))
        for name, value in (cnd or {}).items():
            if isinstance(value, (list, tuple)):
                params.extend((f"_cnd[{name}][{n}]", str(v)) for n, v in enumerate(value))
            else:
                params.append((f"_cnd[{name}]", str(value)))
        content = None
        headers = {}
        if body is not None:
            content = json.dumps(body, default=_json_default).encode()
            headers["Content-Type"] = "application/json"
        what = f"{method} {path}"
        try:
            response = await self._http.request(
                method, "/admin.php", params=params, content=content, headers=headers
            )
        except httpx.TimeoutException:
            raise TransientError(SYSTEM, f"{what}: timed out") from None
        except httpx.HTTPError as exc:
            raise TransientError(SYSTEM, f"{what}: {type(exc).__name__}") from None
        self._raise_for_status(what, response)
        try:
            data = json.loads(response.content, parse_float=Decimal) if response.content else None
        except ValueError:
            raise TransientError(
                SYSTEM, f"{what}: the answer is not JSON", status=response.status_code
            ) from None
        return data, response.headers

    @staticmethod
    def _raise_for_status(what: str, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        message = response.headers.get("X-REST-Error") or response.reason_phrase or "error"
        retry_after = _retry_after(response.headers.get("Retry-After"))
        text = f"{what}: {message}"
        if status == 429 or (status == 503 and retry_after is not None):
            raise ThrottledError(SYSTEM, text, status=status, retry_after_s=retry_after)
        if status >= 500:
            raise TransientError(SYSTEM, text, status=status, retry_after_s=retry_after)
        if status in (401, 403):
            raise AuthenticationFailed(SYSTEM, f"{what}: key refused", status=status)
        if status == 404:
            raise NotFound(SYSTEM, text, status=status)
        if status in (400, 422):
            match = _FIELD_RE.match(message)
            raise ValidationFailed(
                SYSTEM, text, status=status, field=match.group(1) if match else None
            )
        raise PermanentError(SYSTEM, text, status=status)

    async def _get_one(self, entity: str, record_id: str | int) -> Native:
        data, _ = await self._call("GET", f"{entity}/{_id(entity, record_id)}")
        if not isinstance(data, dict):
            raise NotFound(SYSTEM, f"no {entity} {record_id}")
        return data

    async def _put_one(self, entity: str, record_id: str | int, body: Native) -> Native:
        data, _ = await self._call("PUT", f"{entity}/{_id(entity, record_id)}", body=body)
        if not isinstance(data, dict):
            raise NotFound(SYSTEM, f"no {entity} {record_id}")
        return data

    async def _list(self, entity: str, cnd: Mapping[str, Any]) -> list[Native]:
        data, _ = await self._call("GET", entity, cnd=cnd)
        if not isinstance(data, list):
            raise TransientError(SYSTEM, f"GET {entity}: expected a list")
        return [record for record in data if isinstance(record, dict)]

    async def _iter_changed(
        self, entity: str, key: str, stamp_field: str, since: datetime, page_size: int
    ) -> AsyncIterator[Native]:
        """Records whose `stamp_field` is at or after `since`, paging by id ascending.

        X-Cart's repositories have no "updated since" condition (unknown conditions are
        ignored), so this reads every record and filters here: its cost grows with the
        store. `orderBy` takes a Doctrine path with the repository's alias (`o.order_id`,
        `p.product_id`): X-Cart hands it to `addOrderBy` as it is."""
        since_unix = mapping.to_unix(since)
        offset = 0
        while True:
            page = await self._list(
                entity,
                {"orderBy": [f"{ALIASES[entity]}.{key}", "asc"], "limit": [offset, page_size]},
            )
            for record in page:
                if int(record.get(stamp_field) or 0) >= since_unix:
                    yield record
            if len(page) < page_size:
                return
            offset += page_size

    async def _iter_pages(
        self, entity: str, cnd: Mapping[str, Any], sort: str, page_size: int
    ) -> AsyncIterator[Native]:
        """Every record matching `cnd`, sorted by `sort` ascending, `page_size` at a time."""
        offset = 0
        while True:
            page = await self._list(
                entity, {**cnd, "orderBy": [sort, "asc"], "limit": [offset, page_size]}
            )
            for record in page:
                yield record
            if len(page) < page_size:
                return
            offset += page_size

    # ---- orders ---------------------------------------------------------------------

    async def iter_order_ids_placed_since(
        self, since: datetime, page_size: int = 100
    ) -> AsyncIterator[str]:
        """Ids of the orders placed at or after `since`, by id ascending.

        X-Cart 5.3.2 Repo/Order.php, `prepareCndDate`: `_cnd[date][0]` (and `[1]`, left
        out: no end) bound `o.date`, which the cart's every save and the checkout set, so
        it is when the order was placed (Model/Cart.php `prepareBeforeSave`). An order
        placed while we page has a higher id and joins the last page: none is skipped."""
        async for record in self._iter_pages(
            "order", {"date": [mapping.to_unix(since)]}, "o.order_id", page_size
        ):
            yield str(record["order_id"])

    async def iter_module_events_since(
        self, since: datetime, page_size: int = 100
    ) -> AsyncIterator[Native]:
        """The store module's outbox rows created at or after `since`, oldest first,
        whatever became of their delivery (`type`, `recordId`, `state`, ...).

        Raises `NotFound` where the module is not installed: the REST API answers an
        unknown entity with 404 (docs/systems/xcart.md §5)."""
        async for record in self._iter_pages(
            MODULE_EVENTS,
            {"createdSince": mapping.to_unix(since)},
            f"{MODULE_EVENTS_ALIAS}.id",
            page_size,
        ):
            yield record

    async def get_order(self, order_id: str | int) -> Order:
        return mapping.order_from_native(await self._get_one("order", order_id), self.lookups)

    async def iter_orders_changed_since(
        self, since: datetime, page_size: int = 100
    ) -> AsyncIterator[Order]:
        async for record in self._iter_changed(
            "order", "order_id", "lastRenewDate", since, page_size
        ):
            yield mapping.order_from_native(record, self.lookups)

    async def set_order_status(
        self,
        order_id: str | int,
        status: OrderStatus,
        erp_ref: str | None = None,
        note: str | None = None,
        *,
        admin_notes: str | None = None,
    ) -> str | None:
        """Shipping status from the lookups; the ERP number and a note into `adminNotes`.

        `admin_notes`: the order's `adminNotes` as the caller holds them (`Order.store_notes`,
        from its read of the order); given, the `PUT` merges into them and no `GET` comes
        first (one call instead of two). `adminNotes` is one text the `PUT` replaces, so
        a merchant's note added after the caller's read would be lost; a `GET` first only
        narrows that window (X-Cart's REST API documents no conditional write [INFERRED
        from its absence in XC-DOCS]). The order run passes its copy only while no
        `order.updated` came from the store since it read it (workflows/order_sync.py),
        and the same copy gives the same body on a retry. Returns the `adminNotes` written,
        or None when they were not written."""
        body: Native = {"shippingStatus": {"id": mapping.shipping_status_id(status, self.lookups)}}
        if erp_ref or note:
            if admin_notes is None:
                current = await self._get_one("order", order_id)
                admin_notes = str(current.get("adminNotes") or "")
            body["adminNotes"] = mapping.notes_with(admin_notes, erp_ref=erp_ref, note=note)
        await self._put_one("order", order_id, body)
        return str(body["adminNotes"]) if "adminNotes" in body else None

    async def set_tracking(
        self, order_id: str | int, tracking_numbers: list[str], carrier: str
    ) -> None:
        """Marks the order Shipped with its tracking text, then adds the tracking numbers
        it lacks. Idempotent. The `PUT` answers the order as stored, numbers included, so
        no read comes first: two calls, three only when the order already carries numbers
        the run does not know (then the text names them too, as before). The numbers do
        not ride in the `PUT` as the order's `trackingNumbers` relation: the REST module
        makes a new row of every related record sent without its id, so a `PUT` repeated
        after a lost answer would store them twice (docs/systems/xcart.md §2)."""
        wanted = list(dict.fromkeys(n.strip() for n in tracking_numbers if n.strip()))
        carrier_name = self.lookups.carrier_names.get(carrier.lower(), carrier)
        shipped_id = mapping.shipping_status_id(OrderStatus.SHIPPED, self.lookups)

        def text(numbers: list[str]) -> str:
            return mapping.tracking_text(carrier_name, numbers)

        stored = await self._put_one(
            "order", order_id, {"shippingStatus": {"id": shipped_id}, "tracking": text(wanted)}
        )
        known = [str(t.get("value")) for t in stored.get("trackingNumbers") or []]
        new = [n for n in wanted if n not in known]
        if new:
            await self._call(
                "POST",
                "ordertrackingnumber",
                body=[{"order": {"order_id": int(stored["order_id"])}, "value": n} for n in new],
            )
        others = [n for n in known if n not in wanted]
        if others:  # numbers someone else added stay named in the text
            await self._put_one("order", order_id, {"tracking": text([*others, *wanted])})

    async def set_payment_status(self, order_id: str | int, state: str) -> None:
        """`state` is a payment state of the lookups (`paid`, `refunded`, ...) or a native code."""
        code = mapping.payment_status_code(state, self.lookups)
        await self._put_one("order", order_id, {"paymentStatus": {"code": code}})

    async def get_order_record(self, order_id: str | int) -> Native:
        """The order record as X-Cart answers it (`orig_profile` included)."""
        return await self._get_one("order", order_id)

    async def set_order_orig_profile(self, order_id: str | int, profile_id: int) -> None:
        """Points the order's `orig_profile` (the customer's own profile) at this profile;
        the order's copy of the profile, its addresses as placed, stays."""
        await self._put_one("order", order_id, {"orig_profile": {"profile_id": profile_id}})

    async def list_orders_of_profile(
        self, profile_id: int, *, offset: int, limit: int
    ) -> list[Native]:
        """A page of order records by `_cnd[profileId]` (the order repository's condition on
        `orig_profile`), by `order_id` ascending. A store that ignores the condition answers
        every order: callers compare `orig_profile` themselves."""
        return await self._list(
            "order",
            {"profileId": profile_id, "orderBy": ["o.order_id", "asc"], "limit": [offset, limit]},
        )

    # ---- customers -----------------------------------------------------------------

    async def get_customer(self, customer_id: str | int) -> Customer:
        return mapping.customer_from_native(await self._get_one("profile", customer_id))

    async def find_customer_by_email(self, email: str) -> Customer | None:
        wanted = email.strip().lower()
        for record in await self._list("profile", {"login": email.strip(), "limit": [0, 10]}):
            if str(record.get("login", "")).lower() == wanted:
                return mapping.customer_from_native(record)
        return None

    async def create_customer(self, customer: Customer) -> str:
        data, _ = await self._call("POST", "profile", body=mapping.customer_to_native(customer))
        if not isinstance(data, dict) or "profile_id" not in data:
            raise TransientError(SYSTEM, "POST profile: no profile in the answer")
        return str(data["profile_id"])

    async def update_customer(
        self,
        customer_id: str | int,
        customer: Customer,
        *,
        memory: AttemptMemory = NO_MEMORY,
        settle: timedelta = timedelta(0),
    ) -> Customer:
        """Writes login, status and the billing/shipping addresses (ids kept).

        The profile PUT carries the profile's whole address list (XC-DOCS "update one";
        that the list given replaces the profile's is [INFERRED], as the sandbox does).
        An address without an `address_id` is a create, and a PUT whose answer is lost
        may land after its retry. X-Cart addresses have no reference field, so the
        address's content is the reference (`mapping.address_content`):
        - an existing address with the content of one to create is reused (its id sent);
        - a retry that finds none sends no address create until the pair's
          `duplicate_check_after` has passed since the uncertain PUT was sent
          (`uncertain_creates.sending_create`), then looks again: the landed PUT's
          address is then reused;
        - addresses of one content beyond the oldest are twins, left out of the list
          written (a replaced list drops them).
        """
        current = await self._get_one("profile", customer_id)
        existing = mapping.without_twins(list(current.get("addresses") or []))
        body = mapping.customer_to_native(customer)
        body["addresses"] = mapping.merge_addresses(existing, body["addresses"])
        with ExitStack() as sends:
            for address in body["addresses"]:
                if address.get("address_id") in (None, "", 0):
                    content = mapping.address_content(address)
                    reference = f"profile {customer_id} address {fingerprint(content)}"
                    sends.enter_context(
                        sending_create(memory, SYSTEM, reference, settle, what="profile address")
                    )
            written = await self._put_one("profile", customer_id, body)
        return mapping.customer_from_native(written)

    async def iter_customers_changed_since(
        self, since: datetime, page_size: int = 100
    ) -> AsyncIterator[Customer]:
        async for record in self._iter_changed(
            "profile", "profile_id", "updateDate", since, page_size
        ):
            yield mapping.customer_from_native(record)

    async def find_customers_by_login(self, login: str, *, limit: int) -> list[Customer]:
        """Profiles by `_cnd[login]`, at most `limit` of them."""
        records = await self._list("profile", {"login": login, "limit": [0, limit]})
        return [mapping.customer_from_native(record) for record in records]

    async def find_customers_by_pattern(self, pattern: str, *, limit: int) -> list[Customer]:
        """Profiles by `_cnd[pattern]` (the profile repository's LIKE %pattern% on the
        login), at most `limit` of them."""
        records = await self._list("profile", {"pattern": pattern, "limit": [0, limit]})
        return [mapping.customer_from_native(record) for record in records]

    # ---- products and stock ----------------------------------------------------------

    async def _products_with_sku(self, sku: str, page_size: int = 50) -> list[Native]:
        """Products whose SKU is exactly `sku`, lowest id first. X-Cart's product
        condition is `SKU`, a `LIKE %sku%` (Repo/Product.php, `prepareCndSKU`), so
        `WIDGET-1` also finds `WIDGET-10`: every page of matches is read and compared."""
        found: list[Native] = []
        offset = 0
        while True:
            page = await self._list(
                "product",
                {"SKU": sku, "orderBy": ["p.product_id", "asc"], "limit": [offset, page_size]},
            )
            found += [record for record in page if record.get("sku") == sku]
            if len(page) < page_size:
                return found
            offset += page_size

    async def get_product_by_sku(self, sku: str) -> Product | None:
        for record in await self._products_with_sku(sku):
            self._sku_ids[sku] = int(record["product_id"])
            return mapping.product_from_native(record, self.lookups)
        return None

    async def product_ids_with_sku(self, sku: str) -> list[str]:
        """Ids of every product whose SKU is exactly `sku`, lowest first."""
        records = await self._products_with_sku(sku)
        return sorted((str(record["product_id"]) for record in records), key=int)

    async def get_stock_level(self, sku: str) -> StockLevel | None:
        for record in await self._products_with_sku(sku):
            return mapping.stock_from_native(record)
        return None

    async def iter_products_changed_since(
        self, since: datetime, page_size: int = 100
    ) -> AsyncIterator[Product]:
        async for record in self._iter_changed(
            "product", "product_id", "updateDate", since, page_size
        ):
            yield mapping.product_from_native(record, self.lookups)

    async def create_product(self, product: Product) -> str:
        data, _ = await self._call(
            "POST", "product", body=mapping.product_to_native(product, self.lookups)
        )
        if not isinstance(data, dict) or "product_id" not in data:
            raise TransientError(SYSTEM, "POST product: no product in the answer")
        self._sku_ids[product.sku] = int(data["product_id"])
        return str(data["product_id"])

    async def update_product(self, product_id: str | int, product: Product) -> None:
        await self._put_one("product", product_id, mapping.product_to_native(product, self.lookups))
        self._sku_ids[product.sku] = int(product_id)

    async def delete_product(self, product_id: str | int) -> bool:
        """True when deleted, False when there was no such product (idempotent undo)."""
        data, _ = await self._call("DELETE", f"product/{_id('product', product_id)}")
        self._sku_ids = {s: i for s, i in self._sku_ids.items() if i != int(product_id)}
        return data is not None

    async def _product_ids(self, skus: list[str], page_size: int = 250) -> dict[str, int]:
        """SKU -> product_id, from the cache; one paged listing refreshes it on a miss."""
        ids, _ = await self._product_ids_and_amounts(skus, page_size)
        return ids

    async def _product_ids_and_amounts(
        self, skus: list[str], page_size: int = 250, *, refresh: bool = False
    ) -> tuple[dict[str, int], dict[str, int]]:
        """`_product_ids`, and each SKU's `amount` (its stock, §3) when the listing was
        made just now (a cache miss, or `refresh`): the listing answers whole product
        records."""
        amounts: dict[str, int] = {}
        if refresh or any(sku not in self._sku_ids for sku in skus):
            found: dict[str, int] = {}
            offset = 0
            while True:
                page = await self._list(
                    "product", {"orderBy": ["p.product_id", "asc"], "limit": [offset, page_size]}
                )
                for record in page:
                    sku = str(record.get("sku"))
                    found[sku] = int(record["product_id"])
                    if isinstance(record.get("amount"), int):
                        amounts[sku] = record["amount"]
                if len(page) < page_size:
                    break
                offset += page_size
            self._sku_ids = found
        ids = {sku: self._sku_ids[sku] for sku in skus if sku in self._sku_ids}
        return ids, {sku: amounts[sku] for sku in ids if sku in amounts}

    async def set_stock_many(
        self, quantities: Mapping[str, int], batch_size: int = 100
    ) -> StockPushResult:
        """Absolute stock per SKU, one update-many call per batch.

        SKUs unknown to the store (or gone when the batch lands) and negative
        quantities are reported in `failed`; the rest are set. A failed call raises
        (nothing of that batch is known to have landed; retrying is safe: the
        quantities are absolute).

        A SKU whose `amount` the store has already is left out of the `PUT` and reported
        `unchanged` (a store decrements its stock itself when an order is placed, so the
        push after that order usually finds the amount in place), and a batch with
        nothing to change sends no `PUT`: the inventory push then lists no orders again
        either (it does only after a write). The amounts come from the product listing
        when the id cache had to be refreshed (no extra call); for a batch of
        `STOCK_READ_FIRST_AT_MOST` SKU, from `GET product/{id}` (XC-DOCS "get one", §2);
        for a larger batch in a catalog the cache knows fits one page of that listing
        (`PRODUCT_PAGE`), from that page (XC-DOCS "Limiting the output", §4): one call
        where a `PUT` and the push's listing after it are two. A larger batch in a larger
        catalog is written as it is (a read per SKU, or a listing of several pages, would
        cost more than it saves; X-Cart has no condition to list products by id, §4).
        """
        result = StockPushResult()
        valid: dict[str, int] = {}
        for sku, quantity in quantities.items():
            if quantity < 0:
                result.failed[sku] = f"negative quantity {quantity}"
            else:
                valid[sku] = int(quantity)
        # A batch of several SKUs in a catalog of one listing page compares by that page:
        # one call where the PUT and the push's order listing after it are two.
        one_page = 0 < len(self._sku_ids) < PRODUCT_PAGE
        refresh = len(valid) > STOCK_READ_FIRST_AT_MOST and one_page
        ids, amounts = await self._product_ids_and_amounts(
            list(valid), PRODUCT_PAGE, refresh=refresh
        )
        for sku in valid:
            if sku not in ids:
                result.failed[sku] = "unknown SKU"
        todo = [sku for sku in valid if sku in ids]
        if not amounts and 0 < len(todo) <= STOCK_READ_FIRST_AT_MOST:
            for sku in todo:
                data, _ = await self._call("GET", f"product/{ids[sku]}")
                if isinstance(data, dict) and data.get("sku") == sku:
                    if isinstance(data.get("amount"), int):
                        amounts[sku] = data["amount"]
                else:  # gone (`null`, §2) or another product now: the PUT finds out
                    self._sku_ids.pop(sku, None)
        result.unchanged = [sku for sku in todo if amounts.get(sku) == valid[sku]]
        todo = [sku for sku in todo if sku not in result.unchanged]
        for start in range(0, len(todo), max(1, batch_size)):
            batch = todo[start : start + batch_size]
            body = [{"product_id": ids[sku], "amount": valid[sku]} for sku in batch]
            data, _ = await self._call("PUT", "product", body=body)
            answers = data if isinstance(data, list) else []
            for n, sku in enumerate(batch):
                answer = answers[n] if n < len(answers) else None
                if isinstance(answer, dict) and answer.get("sku") == sku:
                    result.updated.append(sku)
                else:
                    result.failed[sku] = "unknown SKU"
                    self._sku_ids.pop(sku, None)
        return result

    # ---- returns ----------------------------------------------------------------------

    async def get_return(self, return_id: str | int) -> ReturnRequest:
        return mapping.return_from_native(await self._get_one(RETURNS, return_id))

    async def set_return_status(
        self, return_id: str | int, status: str, note: str | None = None
    ) -> None:
        """`status`: requested, authorized, declined, received or completed."""
        body: Native = {"status": status}
        if note:
            current = await self._get_one(RETURNS, return_id)
            body["adminNotes"] = mapping.notes_with(str(current.get("adminNotes") or ""), note=note)
        await self._put_one(RETURNS, return_id, body)


def _id(entity: str, record_id: str | int) -> int:
    text = str(record_id).strip()
    if not text.isdigit() or int(text) < 1:
        raise NotFound(SYSTEM, f"no {entity} {record_id!r}: X-Cart ids are positive integers")
    return int(text)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _json_default(value: Any) -> Any:
    """Money goes out as a decimal string: exact, and X-Cart reads it as a number."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


__all__ = ["ConnectorError", "StockPushResult", "XCartClient"]
