"""A faithful local X-Cart 5 store (XC\\RESTAPI module) plus the sandbox control plane.

The REST API (docs/systems/xcart.md) is one route, `admin.php?target=RESTAPI`,
dispatching on `_path` (`entity[/id]`) and the method (`_method` and the
`X-HTTP-Method-Override` header tunnel other methods). `_key` must be the read/write
key, or the read-only key for reads: otherwise **403 with an empty body**.

Entities (`_path`): `order`, `order-item`, `product`, `profile`,
`ordertrackingnumber`, `xc-returns-orderreturn` and `commercesync-webhooks-event` (the
outbox of the store module that sends the events, emitters/xcart/: every event the
sandbox fires is a row there, `_cnd[createdSince]`). X-Cart 5's REST module has no
return model; `xc-returns-orderreturn` is a *project-defined* module model (like the
store webhooks), provided by the same small store module that sends the webhooks:
`id`, `order{order_id}`, `orderNumber`, `date`, `lastRenewDate`, `status`
(one of `RETURN_STATUSES`), `reason`, `adminNotes`, `items[{sku, amount, reason}]`.

Operations: list, get one (unknown id -> 200 `null`), create one (`POST entity` or
`POST entity/0` with an object), create many (`POST entity` with an array), update
one (`PUT entity/{id}`; unknown id -> 200 `null`), update many (`PUT entity` with an
array, each item carrying its key, e.g. `product_id`), delete one / all. Bodies are JSON
or `model[...]` form fields (`application/x-www-form-urlencoded`).

Update many: every item is validated first; one invalid item refuses the whole
request with 400 (nothing changes). An item whose key is missing or names no record
is skipped and answered as `null` at its position in the response array, while the
others are updated: callers find unknown records by the `null`s.

Errors: 404 (empty body) for an unknown entity; 400 with the message in the
`X-REST-Error` header for an unknown Content-Type (`Unknown Content-Type provided`),
unreadable input (`Input data is incorrect`), a bad value
(`Input data is incorrect: <field>: <reason>`) and an unknown field
(`Unknown field: <field>`).

Lists answer `X-Result-Count` (the number of matching records before `_cnd[limit]`)
and honour `_cnd[limit][0]` (offset) / `_cnd[limit][1]` (count),
`_cnd[orderBy][0]` (a Doctrine path with the repository's alias, e.g. `p.price`,
`o.order_id`; a bare field is a Doctrine error, answered 500) / `_cnd[orderBy][1]`
(`asc`/`desc`). Conditions: `_cnd[SKU]` (X-Cart's `LIKE %sku%`, Repo/Product.php
`prepareCndSKU`) and `_cnd[substring]` and `_cnd[inventory]=all|low|out|in` on products;
`_cnd[date][0]` / `[1]` (placed from / to, Unix seconds, Repo/Order.php `prepareCndDate`),
`_cnd[orderNumber]` and `_cnd[profileId]` on orders; there is no "updated since"
condition (docs/systems/xcart.md §4). Project-defined
conditions (a real store needs the sync module's repository conditions for them):
`_cnd[login]`
(e-mail, case-insensitive) and `_cnd[pattern]` (part of the login) on profiles; `_cnd[order]=<order_id>` on order items,
tracking numbers and returns. An order's `orig_profile` is writable
(`{"orig_profile": {"profile_id": N}}`, an existing profile): a merge of customers moves
open orders to the survivor. Unknown conditions are
ignored, as X-Cart does. `_schema=complex` gives the read-only complex shapes of
orders, products and profiles. Every response carries an `ETag` (md5 of the body);
`If-None-Match` with it answers 304. There is no rate limit.

Writes through the REST API fire no webhooks (they are the integration's own
writes); the storefront and admin actions of the control plane do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import pycountry
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from standardwebhooks.webhooks import Webhook

from commerce_sync.config.settings import Settings
from commerce_sync.intake.proofs import sign_standard_webhook
from sandboxes.kit import Sandbox, SandboxEvent, WebhookTarget
from sandboxes.seed import SEED_CURRENCY, SEED_CUSTOMERS, SEED_PRODUCTS

Native = dict[str, Any]

SEED_TIME = 1767225600  # 2026-01-01T00:00:00Z: seed records are older than any test write
ORDER_NUMBER_START = 10001
# The outbox of the store module that sends the events (emitters/xcart/, the entity
# XLite\Module\CommerceSync\Webhooks\Model\Event), read through the REST API by the
# module naming rule of docs/systems/xcart.md §1 [INFERRED: the REST module serving a
# module's own entity with its repository's conditions].
MODULE_EVENTS = "commercesync-webhooks-event"
ENTITIES = (
    "order",
    "order-item",
    "product",
    "profile",
    "ordertrackingnumber",
    "xc-returns-orderreturn",
    MODULE_EVENTS,
)
KEYS = {
    "order": "order_id",
    "order-item": "item_id",
    "product": "product_id",
    "profile": "profile_id",
    "ordertrackingnumber": "tracking_id",
    "xc-returns-orderreturn": "id",
    MODULE_EVENTS: "id",
}
SHIPPING_STATUSES: dict[int, tuple[str, str]] = {
    1: ("N", "New"),
    2: ("P", "Processing"),
    3: ("S", "Shipped"),
    4: ("D", "Delivered"),
    5: ("WND", "Will not deliver"),
    6: ("R", "Returned"),
}
PAYMENT_STATUSES: dict[int, tuple[str, str]] = {
    1: ("Q", "Awaiting payment"),
    2: ("A", "Authorized"),
    3: ("PP", "Partially paid"),
    4: ("P", "Paid"),
    5: ("D", "Declined"),
    6: ("C", "Cancelled"),
    7: ("R", "Refunded"),
}
RETURN_STATUSES = ("requested", "authorized", "declined", "received", "completed")
ADDRESS_FIELDS = (
    "address_type",
    "title",
    "firstname",
    "lastname",
    "company",
    "street",
    "street2",
    "city",
    "state",
    "zipcode",
    "country_code",
    "phone",
)
LOW_STOCK_LIMIT = 10


class RestError(Exception):
    """A 400 answered with the message in `X-REST-Error`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _bad(field: str, reason: str) -> RestError:
    return RestError(f"Input data is incorrect: {field}: {reason}")


def now_unix() -> int:
    return int(time.time())


# ---- input coercion (JSON values or form strings) ----------------------------------


def _dec(field: str, value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise _bad(field, "must be a number")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise _bad(field, "must be a number") from None
    if not number.is_finite() or number < 0:
        raise _bad(field, "must be a number not below 0")
    return number


def _int(field: str, value: Any, minimum: int | None = 0) -> int:
    if isinstance(value, bool) or value is None:
        raise _bad(field, "must be an integer")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not re.fullmatch(r"-?\d+", text):
            raise _bad(field, "must be an integer")
        number = int(text)
    if minimum is not None and number < minimum:
        raise _bad(field, f"must be at least {minimum}")
    return number


def _bool(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "y", "yes", "on"):
        return True
    if text in ("0", "false", "n", "no", "off", ""):
        return False
    raise _bad(field, "must be a boolean")


def _str(field: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise _bad(field, "must be a string")
    return str(value)


def _ref_id(field: str, value: Any, key: str) -> int:
    """`5`, `"5"` or `{"<key>": 5}`."""
    if isinstance(value, dict):
        value = value.get(key)
    return _int(field, value, minimum=1)


def _check_fields(data: Native, writable: set[str], ignored: set[str]) -> None:
    for name in data:
        if name not in writable and name not in ignored:
            raise RestError(f"Unknown field: {name}")


def _as_list(field: str, value: Any) -> list[Any]:
    if isinstance(value, dict):  # form bodies without numeric keys
        return [value]
    if not isinstance(value, list):
        raise _bad(field, "must be a list")
    return value


# ---- bracket parameters: model[a][b]=x and _cnd[limit][0]=x --------------------------


_BRACKETS = re.compile(r"\[([^\]]*)\]")


def parse_brackets(pairs: list[tuple[str, str]], root: str) -> Any:
    """`root[a][0][b]=x` pairs as nested data; dicts keyed 0..n become lists."""
    tree: dict[str, Any] = {}
    found = False
    for key, value in pairs:
        if not key.startswith(root + "["):
            continue
        rest = key[len(root) :]
        parts = _BRACKETS.findall(rest)
        if "".join(f"[{part}]" for part in parts) != rest:
            continue
        found = True
        node = tree
        for n, part in enumerate(parts):
            last = n == len(parts) - 1
            if part == "":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return _listify(tree) if found else None


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# ---- control plane bodies ---------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ShopperCustomer(_Body):
    email: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    company: str = ""


class ShopperAddress(_Body):
    name: str = ""
    company: str = ""
    line1: str
    line2: str = ""
    city: str
    region: str = ""
    postal_code: str
    country: str = Field(pattern=r"^[A-Za-z]{2}$")
    phone: str = ""


class ShopperLine(_Body):
    sku: str
    quantity: int = Field(ge=1)
    unit_price: Decimal | None = Field(default=None, ge=0)


class ShopperPayment(_Body):
    method: str = "card"
    reference: str = ""


class ShopperOrder(_Body):
    customer: ShopperCustomer
    shipping_address: ShopperAddress
    billing_address: ShopperAddress | None = None
    lines: list[ShopperLine] = Field(min_length=1)
    currency: str = Field(default=SEED_CURRENCY, pattern=r"^[A-Z]{3}$")
    shipping_method: str = "ground"
    shipping_total: Decimal = Field(default=Decimal("0"), ge=0)
    payment: ShopperPayment | None = None
    notes: str = ""


class ShopperReturnLine(_Body):
    sku: str
    quantity: int = Field(ge=1)
    reason: str = ""


class ShopperReturn(_Body):
    order: str
    lines: list[ShopperReturnLine] = Field(min_length=1)
    reason: str = ""


class ShopperProfile(_Body):
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    company: str | None = None
    address: ShopperAddress | None = None
    billing_address: ShopperAddress | None = None
    shipping_address: ShopperAddress | None = None


class XCartSandbox(Sandbox):
    name = "xcart"

    def __init__(self, *, rw_key: str, read_key: str) -> None:
        self.rw_key = rw_key
        self.read_key = read_key
        super().__init__()

    # ---- state ------------------------------------------------------------------

    def reset_state(self) -> None:
        self.products: dict[int, Native] = {}
        self.profiles: dict[int, Native] = {}
        self.orders: dict[int, Native] = {}
        self.tracking_numbers: dict[int, Native] = {}
        self.returns: dict[int, Native] = {}
        self.module_events: dict[int, Native] = {}
        # Order ids go on across resets, as a real store never reuses an order_id: workflow
        # ids are built from them (`order:{pair}:{id}`) and outlive a reset.
        last_order_id = getattr(self, "_ids", {}).get("order", 0)
        last_return_id = getattr(self, "_ids", {}).get("return", 0)  # `return:{pair}:{id}`
        self._ids: dict[str, int] = {
            "product": 0,
            "profile": 0,
            "address": 0,
            "order": last_order_id,
            "item": 0,
            "tracking": 0,
            "return": last_return_id,
            "transaction": 0,
            "surcharge": 0,
            "event": 0,
        }
        for seed in SEED_PRODUCTS:
            product_id = self._next("product")
            self.products[product_id] = {
                "product_id": product_id,
                "sku": seed.sku,
                "price": seed.price,
                "amount": seed.on_hand,
                "enabled": True,
                "weight": seed.weight_kg,
                "inventoryEnabled": True,
                "arrivalDate": SEED_TIME,
                "date": SEED_TIME,
                "updateDate": SEED_TIME,
                "categories": [],
                "translations": [
                    {
                        "code": "en",
                        "name": seed.name,
                        "description": seed.description,
                        "briefDescription": "",
                    }
                ],
            }
        for customer in SEED_CUSTOMERS:
            profile_id = self._next("profile")
            address = {
                "address_id": self._next("address"),
                "is_billing": True,
                "is_shipping": True,
                "address_type": "R",
                "title": "",
                "firstname": customer.first_name,
                "lastname": customer.last_name,
                "company": customer.company,
                "street": customer.line1,
                "street2": "",
                "city": customer.city,
                "state": customer.region,
                "zipcode": customer.postal_code,
                "country_code": customer.country,
                "phone": customer.phone,
            }
            self.profiles[profile_id] = {
                "profile_id": profile_id,
                "login": customer.email,
                "status": "E",
                "added": SEED_TIME,
                "updateDate": SEED_TIME,
                "lastLogin": 0,
                "addresses": [address],
            }

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def state(self) -> dict[str, Any]:
        tracking = self._tracking_by_order()
        orders = [self._render_order(order, tracking) for order in self.orders.values()]
        return {
            "products": list(self.products.values()),
            "stock": {p["sku"]: p["amount"] for p in self.products.values()},
            "profiles": list(self.profiles.values()),
            "orders": orders,
            "order_items": [item for order in orders for item in order["items"]],
            "tracking_numbers": list(self.tracking_numbers.values()),
            "payments": [
                {**transaction, "order_id": order["order_id"]}
                for order in orders
                for transaction in order["payment_transactions"]
            ],
            "returns": list(self.returns.values()),
        }

    # ---- errors -----------------------------------------------------------------

    def error_response(
        self, status: int, message: str, retry_after_s: float | None = None
    ) -> Response:
        """X-Cart answers errors with a status, an `X-REST-Error` message and no body."""
        headers = {"X-REST-Error": message} if status != 403 else {}
        if retry_after_s is not None:
            headers["Retry-After"] = str(max(0, round(retry_after_s)))
        return Response(status_code=status, headers=headers)

    # ---- webhooks ---------------------------------------------------------------

    def configure_webhooks(self, target: WebhookTarget) -> None:
        secret = target.secret or ""
        if not secret.startswith("whsec_"):
            raise ValueError(
                "X-Cart webhooks are signed with Standard Webhooks: a whsec_... secret is required"
            )
        try:
            Webhook(secret)
        except Exception as exc:
            raise ValueError(f"the webhook secret is not a valid whsec_ key: {exc}") from None
        self.webhook_target = target

    def delivery_request(
        self, event: SandboxEvent, target: WebhookTarget
    ) -> tuple[str, dict[str, str]]:
        headers = {"content-type": "application/json"}
        headers.update(
            sign_standard_webhook(target.secret or "", event.id, datetime.now(UTC), event.body)
        )
        return target.url, headers

    def _fire_store_event(self, event_type: str, record_id: int) -> SandboxEvent:
        """Fire the event as the store module does: a row in its outbox first (kept
        whether or not it is delivered, and read back through the REST API), then the
        signed delivery."""
        payload = {
            "type": event_type,
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": {"id": str(record_id), "store": "xcart"},
        }
        event = self.fire(event_type, payload, subject=str(record_id))
        row_id = self._next("event")
        self.module_events[row_id] = {
            "id": row_id,
            "eventId": event.id,
            "type": event_type,
            "recordId": str(record_id),
            "body": event.body.decode(),
            "createdAt": now_unix(),
            "_event": event,
        }
        return event

    @staticmethod
    def _render_module_event(row: Native) -> Native:
        """The module's outbox row (emitters/xcart/, Model/Event.php): its state follows
        the sandbox's own delivery of the event."""
        event: SandboxEvent = row["_event"]
        out = {key: value for key, value in row.items() if not key.startswith("_")}
        out.update(
            state="sent" if event.delivered else "pending",
            attempts=event.attempts,
            nextAttemptAt=0,
            sentAt=out["createdAt"] if event.delivered else 0,
            lastError=event.last_error or "",
        )
        return out

    # ---- rendering ----------------------------------------------------------------

    @staticmethod
    def _status(table: dict[int, tuple[str, str]], status_id: int) -> Native:
        code, name = table[status_id]
        return {"id": status_id, "code": code, "name": name, "position": status_id * 10}

    def _tracking_by_order(self, only: int | None = None) -> dict[int, list[Native]]:
        """Each order's tracking numbers as its `trackingNumbers` shows them, in the order
        they were made, or `only` one order's: one walk over them for a whole list of
        orders, not one per order rendered (O(page x tracking numbers) before)."""
        found: dict[int, list[Native]] = defaultdict(list)
        for t in self.tracking_numbers.values():
            order_id = t["order"]["order_id"]
            if only is None or order_id == only:
                found[order_id].append({k: v for k, v in t.items() if k != "order"})
        return found

    def _render_order(
        self, order: Native, tracking: dict[int, list[Native]] | None = None
    ) -> Native:
        """`tracking`: `_tracking_by_order()`, taken once for a list of orders."""
        out = {key: value for key, value in order.items() if not key.startswith("_")}
        out["shippingStatus"] = self._status(SHIPPING_STATUSES, order["_shipping_status"])
        out["paymentStatus"] = self._status(PAYMENT_STATUSES, order["_payment_status"])
        if tracking is None:
            tracking = self._tracking_by_order(only=order["order_id"])
        out["trackingNumbers"] = list(tracking.get(order["order_id"], []))
        out["items"] = [
            dict(item, order={"order_id": order["order_id"]}) for item in order["items"]
        ]
        return out

    def _render(
        self,
        entity: str,
        record: Native,
        schema: str,
        tracking: dict[int, list[Native]] | None = None,
    ) -> Native:
        if entity == "order":
            rendered = self._render_order(record, tracking)
            return self._complex_order(rendered) if schema == "complex" else rendered
        if entity == "product" and schema == "complex":
            return self._complex_product(record)
        if entity == "profile" and schema == "complex":
            return self._complex_profile(record)
        if entity == MODULE_EVENTS:
            return self._render_module_event(record)
        return record

    @staticmethod
    def _complex_address(address: Native | None) -> Native:
        return dict(address) if address else {}

    def _complex_order(self, order: Native) -> Native:
        surcharges = order["surcharges"]

        def total(kind: str) -> Decimal:
            return sum((s["value"] for s in surcharges if s["type"] == kind), Decimal("0"))

        addresses = order["profile"].get("addresses") or []
        billing = next((a for a in addresses if a.get("is_billing")), None)
        shipping = next((a for a in addresses if a.get("is_shipping")), None)
        contact = billing or {}
        return {
            "orderId": order["order_id"],
            "orderNumber": order["orderNumber"],
            "total": order["total"],
            "subtotal": order["subtotal"],
            "taxAmount": total("tax"),
            "shippingCost": total("shipping"),
            "paymentFee": Decimal("0"),
            "discountValue": -total("discount"),
            "currency": order["currency"]["code"],
            "items": [
                {
                    "sku": item["sku"],
                    "name": item["name"],
                    "price": item["price"],
                    "quantity": item["amount"],
                    "total": item["total"],
                }
                for item in order["items"]
            ],
            "shippingStatus": order["shippingStatus"]["name"],
            "paymentStatus": order["paymentStatus"]["name"],
            "orderDate": order["date"],
            "updateDate": order["lastRenewDate"],
            "trackingNumber": ", ".join(t["value"] for t in order["trackingNumbers"]),
            "customerNotes": order["notes"],
            "adminNotes": order["adminNotes"],
            "coupon": "",
            "customerInfo": {
                "profileId": (order["orig_profile"] or {}).get("profile_id"),
                "email": order["profile"]["login"],
                "firstname": contact.get("firstname", ""),
                "lastname": contact.get("lastname", ""),
            },
            "billingInfo": self._complex_address(billing),
            "shippingInfo": self._complex_address(shipping),
            "paymentMethod": order["payment_method_name"],
            "shippingMethod": order["shipping_method_name"],
        }

    @staticmethod
    def _complex_product(product: Native) -> Native:
        translation: Native = next(iter(product["translations"]), {})
        return {
            "sku": product["sku"],
            "productId": product["product_id"],
            "name": translation.get("name", ""),
            "description": translation.get("description", ""),
            "shortDescription": translation.get("briefDescription", ""),
            "price": product["price"],
            "weight": product["weight"],
            "quantity": product["amount"],
            "releaseDate": product["arrivalDate"],
            "images": [],
            "URL": f"cart.php?target=product&product_id={product['product_id']}",
            "enabled": product["enabled"],
            "freeShipping": False,
            "categories": product["categories"],
            "memberships": [],
            "translations": product["translations"],
        }

    @staticmethod
    def _complex_profile(profile: Native) -> Native:
        addresses = profile["addresses"]
        contact = next((a for a in addresses if a.get("is_billing")), None) or (
            addresses[0] if addresses else {}
        )
        return {
            "profileId": profile["profile_id"],
            "login": profile["login"],
            "email": profile["login"],
            "password": hashlib.sha256(f"sandbox:{profile['login']}".encode()).hexdigest(),
            "addresses": addresses,
            "addedDate": profile["added"],
            "membership": None,
            "roles": [],
            "firstname": contact.get("firstname", ""),
            "lastname": contact.get("lastname", ""),
        }

    # ---- the REST API -------------------------------------------------------------

    def add_api_routes(self, app: FastAPI) -> None:
        @app.api_route("/admin.php", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
        async def admin_php(request: Request) -> Response:
            return await self._rest(request)

    def _respond(
        self, request: Request, data: Any, headers: dict[str, str] | None = None
    ) -> Response:
        body = json.dumps(data, default=_json_default, separators=(",", ":")).encode()
        etag = '"' + hashlib.md5(body).hexdigest() + '"'
        all_headers = {"ETag": etag, **(headers or {})}
        if request.method == "GET" and request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=all_headers)
        return Response(content=body, media_type="application/json", headers=all_headers)

    def _authorized(self, key: str, write: bool) -> bool:
        if key and hmac.compare_digest(key.encode(), self.rw_key.encode()):
            return True
        return bool(key) and not write and hmac.compare_digest(key.encode(), self.read_key.encode())

    async def _rest(self, request: Request) -> Response:
        params = request.query_params
        if params.get("target") != "RESTAPI":
            return Response(status_code=404)
        method = (
            params.get("_method") or request.headers.get("x-http-method-override") or request.method
        ).upper()
        if method not in ("GET", "POST", "PUT", "DELETE"):
            return Response(status_code=405, headers={"Allow": "GET, POST, PUT, DELETE"})
        if not self._authorized(params.get("_key", ""), write=method != "GET"):
            return Response(status_code=403)
        entity, _, raw_id = params.get("_path", "").strip("/").partition("/")
        if entity not in ENTITIES:
            return Response(status_code=404)
        schema = params.get("_schema", "default")
        try:
            record_id = _int("_path", raw_id, minimum=0) if raw_id else None
            if schema == "complex" and method != "GET":
                raise RestError("Input data is incorrect: _schema: the complex schema is read-only")
            if method == "GET":
                return self._read(request, entity, record_id, schema)
            if method == "DELETE":
                return self._respond(request, self._delete(entity, record_id))
            body = await self._body(request)
            if method == "POST":
                return self._respond(request, self._create(entity, record_id, body))
            return self._respond(request, self._update(entity, record_id, body))
        except RestError as exc:
            return Response(status_code=400, headers={"X-REST-Error": exc.message})

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in ("application/json", "text/json") or content_type.endswith("+json"):
            try:
                data = json.loads(raw, parse_float=Decimal)
            except ValueError:
                raise RestError("Input data is incorrect") from None
        elif content_type == "application/x-www-form-urlencoded":
            data = parse_brackets(
                parse_qsl(raw.decode(errors="replace"), keep_blank_values=True), "model"
            )
        else:
            raise RestError("Unknown Content-Type provided")
        if not isinstance(data, (dict, list)) or not data:
            raise RestError("Input data is incorrect")
        return data

    # ---- read ---------------------------------------------------------------------

    def _store(self, entity: str) -> dict[int, Native]:
        if entity == "order-item":
            return {
                item["item_id"]: dict(item, order={"order_id": order["order_id"]})
                for order in self.orders.values()
                for item in order["items"]
            }
        return {
            "order": self.orders,
            "product": self.products,
            "profile": self.profiles,
            "ordertrackingnumber": self.tracking_numbers,
            "xc-returns-orderreturn": self.returns,
            MODULE_EVENTS: self.module_events,
        }[entity]

    def _read(self, request: Request, entity: str, record_id: int | None, schema: str) -> Response:
        store = self._store(entity)
        if record_id:
            record = store.get(record_id)
            return self._respond(request, self._render(entity, record, schema) if record else None)
        pairs = list(request.query_params.multi_items())
        cnd = parse_brackets(pairs, "_cnd")
        cnd = cnd if isinstance(cnd, dict) else {}
        records = [r for r in store.values() if self._matches(entity, r, cnd)]
        records.sort(key=lambda r: r[KEYS[entity]])
        order_by = cnd.get("orderBy")
        if order_by:
            spec = order_by if isinstance(order_by, list) else [order_by]
            alias, _, field = str(spec[0]).rpartition(".")
            if not alias:
                # X-Cart hands the field to Doctrine's addOrderBy as it is (Repo/*.php,
                # prepareCndOrderBy): a path without the query's alias is a semantical
                # error, which the REST module does not catch [INFERRED: a 500].
                return Response(
                    status_code=500,
                    content=f"[Semantical Error] Error: '{spec[0]}' is not defined.",
                )
            descending = len(spec) > 1 and str(spec[1]).lower() == "desc"
            records.sort(key=lambda r: _sort_key(r.get(field)), reverse=descending)
        count = len(records)
        limit = cnd.get("limit")
        if limit is not None:
            spec = limit if isinstance(limit, list) else [limit]
            offset = _int("_cnd[limit][0]", spec[0]) if spec else 0
            size = _int("_cnd[limit][1]", spec[1], minimum=1) if len(spec) > 1 else None
            records = records[offset : offset + size if size is not None else None]
        tracking = self._tracking_by_order() if entity == "order" and len(records) > 1 else None
        rendered = [self._render(entity, r, schema, tracking) for r in records]
        return self._respond(request, rendered, {"X-Result-Count": str(count)})

    def _matches(self, entity: str, record: Native, cnd: Native) -> bool:
        if entity == "product":
            # Repo/Product.php, prepareCndSKU: `p.sku LIKE %value%` (MySQL's default
            # collation ignores case). There is no exact-SKU and no "updated since"
            # condition: like every unknown condition, `sku` and `updatedSince` are ignored.
            like = str(cnd.get("SKU") or "").lower()
            if like and like not in record["sku"].lower():
                return False
            substring = str(cnd.get("substring") or "").lower()
            if substring:
                names = " ".join(t.get("name", "") for t in record["translations"])
                if substring not in f"{record['sku']} {names}".lower():
                    return False
            inventory = str(cnd.get("inventory") or "all")
            amount = record["amount"]
            if inventory == "out" and amount > 0:
                return False
            if inventory == "in" and amount <= 0:
                return False
            if inventory == "low" and not 0 < amount <= LOW_STOCK_LIMIT:
                return False
        if entity == "profile" and cnd.get("login") not in (None, ""):
            if record["login"].lower() != str(cnd["login"]).strip().lower():
                return False
        if entity == "profile" and cnd.get("pattern") not in (None, ""):
            # The profile repository's `pattern` condition: a LIKE %pattern% on the login
            # (and, in X-Cart, the address names; the sandbox matches the login only).
            if str(cnd["pattern"]).strip().lower() not in record["login"].lower():
                return False
        if entity == "order" and not self._placed_within(record, cnd.get("date")):
            return False
        if entity == MODULE_EVENTS and cnd.get("createdSince") not in (None, ""):
            # The module's repository condition (emitters/xcart/, Model/Repo/Event.php,
            # prepareCndCreatedSince): `e.createdAt >= value`.
            if record["createdAt"] < _int("_cnd[createdSince]", cnd["createdSince"]):
                return False
        if entity == "order" and cnd.get("orderNumber") not in (None, ""):
            # X-Cart 5.3.2 Repo/Order.php, prepareCndOrderNumber: `o.orderNumber = value`.
            if record["orderNumber"] != str(cnd["orderNumber"]):
                return False
        if entity == "order" and cnd.get("profileId") not in (None, ""):
            # The order repository's `profileId` condition: the customer's own profile
            # (X-Cart 5.3.2 Repo/Order.php, prepareCndProfileId: `o.orig_profile = profile`).
            orig = record.get("orig_profile") or {}
            if orig.get("profile_id") != _int("_cnd[profileId]", cnd["profileId"]):
                return False
        if entity in ("order-item", "ordertrackingnumber", "xc-returns-orderreturn"):
            wanted = cnd.get("order")
            if wanted not in (None, "") and record["order"]["order_id"] != _int(
                "_cnd[order]", wanted
            ):
                return False
        return True

    @staticmethod
    def _placed_within(order: Native, value: Any) -> bool:
        """X-Cart 5.3.2 Repo/Order.php, prepareCndDate: `_cnd[date][0]` and `[1]` (Unix
        seconds, either empty) bound `o.date`, the time the order was placed (the cart's
        last save, Cart::prepareBeforeSave). A value that is not a list is ignored."""
        if not isinstance(value, list) or not value:
            return True
        bounds = [_int("_cnd[date]", v) if v not in (None, "", "0") else 0 for v in value[:2]]
        start = bounds[0]
        end = bounds[1] if len(bounds) > 1 else 0
        return (not start or order["date"] >= start) and (not end or order["date"] <= end)

    # ---- write ----------------------------------------------------------------------

    def _create(self, entity: str, record_id: int | None, body: Any) -> Any:
        if record_id:
            raise RestError("Input data is incorrect: _path: create with entity or entity/0")
        creator: Callable[[Native], Callable[[], Native]] = {
            "product": self._create_product,
            "profile": self._create_profile,
            "ordertrackingnumber": self._create_tracking,
            "xc-returns-orderreturn": self._create_return,
        }.get(entity, self._not_creatable(entity))
        if isinstance(body, list):
            commits = [creator(self._object(item)) for item in body]  # validate all first
            return [self._render(entity, commit(), "default") for commit in commits]
        return self._render(entity, creator(self._object(body))(), "default")

    @staticmethod
    def _not_creatable(entity: str) -> Callable[[Native], Callable[[], Native]]:
        def refuse(_: Native) -> Callable[[], Native]:
            raise _bad(entity, "records of this entity are created by the storefront")

        return refuse

    @staticmethod
    def _object(item: Any) -> Native:
        if not isinstance(item, dict):
            raise RestError("Input data is incorrect")
        return item

    def _update(self, entity: str, record_id: int | None, body: Any) -> Any:
        updater: Callable[[Native, Native], Callable[[], Native]] = {
            "product": self._update_product,
            "profile": self._update_profile,
            "order": self._update_order,
            "ordertrackingnumber": self._update_tracking,
            "xc-returns-orderreturn": self._update_return,
        }.get(entity, self._not_updatable(entity))
        store = self._store(entity)
        key = KEYS[entity]
        if record_id:
            record = store.get(record_id)
            if record is None:
                return None
            return self._render(entity, updater(record, self._object(body))(), "default")
        items = body if isinstance(body, list) else [body]
        plans: list[Callable[[], Native] | None] = []
        for item in items:
            data = self._object(item)
            raw_key = data.get(key)
            target = None
            if raw_key not in (None, "", 0, "0"):
                target = store.get(_int(key, raw_key, minimum=1))
            plans.append(updater(target, data) if target is not None else None)
        results = [self._render(entity, plan(), "default") if plan else None for plan in plans]
        return results if isinstance(body, list) else results[0]

    @staticmethod
    def _not_updatable(entity: str) -> Callable[[Native, Native], Callable[[], Native]]:
        def refuse(_: Native, __: Native) -> Callable[[], Native]:
            raise _bad(entity, "read-only")

        return refuse

    def _delete(self, entity: str, record_id: int | None) -> Any:
        if entity in ("order-item",):
            raise _bad(entity, "read-only")
        store = self._store(entity)
        if record_id is None:
            deleted = len(store)
            store.clear()
            return deleted
        record = store.pop(record_id, None)
        if record is None:
            return None
        if entity == "ordertrackingnumber":
            self._touch_order(record["order"]["order_id"])
        return True

    def _touch_order(self, order_id: int) -> None:
        order = self.orders.get(order_id)
        if order is not None:
            order["lastRenewDate"] = now_unix()

    # products

    _PRODUCT_FIELDS = frozenset(
        {
            "sku",
            "price",
            "amount",
            "enabled",
            "weight",
            "translations",
            "inventoryEnabled",
            "arrivalDate",
            "categories",
        }
    )
    _PRODUCT_IGNORED = frozenset({"product_id", "date", "updateDate"})

    def _product_changes(self, data: Native, current: Native | None) -> Native:
        _check_fields(data, set(self._PRODUCT_FIELDS), set(self._PRODUCT_IGNORED))
        changes: Native = {}
        if "sku" in data:
            sku = _str("sku", data["sku"]).strip()
            if not sku:
                raise _bad("sku", "must not be empty")
            for other in self.products.values():
                if other["sku"] == sku and (current is None or other is not current):
                    raise _bad("sku", f"already used by product {other['product_id']}")
            changes["sku"] = sku
        if "price" in data:
            changes["price"] = _dec("price", data["price"])
        if "weight" in data:
            changes["weight"] = _dec("weight", data["weight"])
        if "amount" in data:
            changes["amount"] = _int("amount", data["amount"])
        if "arrivalDate" in data:
            changes["arrivalDate"] = _int("arrivalDate", data["arrivalDate"])
        for flag in ("enabled", "inventoryEnabled"):
            if flag in data:
                changes[flag] = _bool(flag, data[flag])
        if "categories" in data:
            changes["categories"] = _as_list("categories", data["categories"])
        if "translations" in data:
            merged = {t["code"]: dict(t) for t in (current or {}).get("translations", [])}
            for n, raw in enumerate(_as_list("translations", data["translations"])):
                if not isinstance(raw, dict):
                    raise _bad(f"translations[{n}]", "must be an object")
                _check_fields(
                    raw, {"code", "name", "description", "briefDescription"}, {"label_id", "id"}
                )
                code = _str(f"translations[{n}].code", raw.get("code", "en")) or "en"
                entry = merged.setdefault(
                    code, {"code": code, "name": "", "description": "", "briefDescription": ""}
                )
                for name in ("name", "description", "briefDescription"):
                    if name in raw:
                        entry[name] = _str(f"translations[{n}].{name}", raw[name])
            changes["translations"] = list(merged.values())
        return changes

    def _create_product(self, data: Native) -> Callable[[], Native]:
        changes = self._product_changes(data, None)

        def commit() -> Native:
            product_id = self._next("product")
            stamp = now_unix()
            record: Native = {
                "product_id": product_id,
                "sku": f"SKU{product_id}",
                "price": Decimal("0"),
                "amount": 0,
                "enabled": True,
                "weight": Decimal("0"),
                "inventoryEnabled": True,
                "arrivalDate": stamp,
                "date": stamp,
                "updateDate": stamp,
                "categories": [],
                "translations": [],
            }
            record.update(changes)
            self.products[product_id] = record
            return record

        return commit

    def _update_product(self, record: Native, data: Native) -> Callable[[], Native]:
        changes = self._product_changes(data, record)

        def commit() -> Native:
            record.update(changes)
            record["updateDate"] = now_unix()
            return record

        return commit

    # profiles

    _PROFILE_FIELDS = frozenset({"login", "status", "addresses", "password"})
    _PROFILE_IGNORED = frozenset({"profile_id", "added", "updateDate", "lastLogin"})

    def _address_changes(self, n: int, raw: Any, existing: dict[int, Native]) -> Native:
        where = f"addresses[{n}]"
        if not isinstance(raw, dict):
            raise _bad(where, "must be an object")
        _check_fields(
            raw, {*ADDRESS_FIELDS, "is_billing", "is_shipping"}, {"address_id", "profile"}
        )
        address_id = raw.get("address_id")
        base: Native
        if address_id not in (None, "", 0, "0"):
            found = existing.get(_int(f"{where}.address_id", address_id, minimum=1))
            if found is None:
                raise _bad(f"{where}.address_id", "no such address on this profile")
            base = dict(found)
        else:
            base = {"address_id": None, "is_billing": False, "is_shipping": False}
            base.update({name: "" for name in ADDRESS_FIELDS})
            base["address_type"] = "R"
        for name in ADDRESS_FIELDS:
            if name in raw:
                base[name] = _str(f"{where}.{name}", raw[name])
        for flag in ("is_billing", "is_shipping"):
            if flag in raw:
                base[flag] = _bool(f"{where}.{flag}", raw[flag])
        country = str(base["country_code"]).upper()
        if pycountry.countries.get(alpha_2=country) is None:
            raise _bad(f"{where}.country_code", f"unknown country {base['country_code']!r}")
        base["country_code"] = country
        return base

    def _profile_changes(self, data: Native, current: Native | None) -> Native:
        _check_fields(data, set(self._PROFILE_FIELDS), set(self._PROFILE_IGNORED))
        changes: Native = {}
        if "login" in data:
            login = _str("login", data["login"]).strip()
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", login):
                raise _bad("login", "must be an e-mail address")
            for other in self.profiles.values():
                if other["login"].lower() == login.lower() and other is not current:
                    raise _bad("login", f"already used by profile {other['profile_id']}")
            changes["login"] = login
        elif current is None:
            raise _bad("login", "is required")
        if "status" in data:
            status = _str("status", data["status"]).upper()
            if status not in ("E", "D"):
                raise _bad("status", "must be E or D")
            changes["status"] = status
        if "addresses" in data:
            existing = {a["address_id"]: a for a in (current or {}).get("addresses", [])}
            changes["addresses"] = [
                self._address_changes(n, raw, existing)
                for n, raw in enumerate(_as_list("addresses", data["addresses"]))
            ]
        return changes

    def _commit_addresses(self, addresses: list[Native]) -> list[Native]:
        for address in addresses:
            if not address.get("address_id"):
                address["address_id"] = self._next("address")
        return addresses

    def _create_profile(self, data: Native) -> Callable[[], Native]:
        changes = self._profile_changes(data, None)

        def commit() -> Native:
            profile_id = self._next("profile")
            stamp = now_unix()
            record: Native = {
                "profile_id": profile_id,
                "login": "",
                "status": "E",
                "added": stamp,
                "updateDate": stamp,
                "lastLogin": 0,
                "addresses": [],
            }
            record.update(changes)
            record["addresses"] = self._commit_addresses(record["addresses"])
            self.profiles[profile_id] = record
            return record

        return commit

    def _update_profile(self, record: Native, data: Native) -> Callable[[], Native]:
        changes = self._profile_changes(data, record)

        def commit() -> Native:
            record.update(changes)
            record["addresses"] = self._commit_addresses(record["addresses"])
            record["updateDate"] = now_unix()
            return record

        return commit

    # orders

    _ORDER_FIELDS = frozenset(
        {
            "shippingStatus",
            "paymentStatus",
            "tracking",
            "trackingNumbers",
            "notes",
            "adminNotes",
            "orig_profile",
        }
    )
    _ORDER_IGNORED = frozenset(
        {
            "order_id",
            "orderNumber",
            "date",
            "lastRenewDate",
            "total",
            "subtotal",
            "shipping_id",
            "shipping_method_name",
            "payment_method_name",
            "profile",
            "items",
            "surcharges",
            "payment_transactions",
            "currency",
            "details",
            "events",
        }
    )

    @staticmethod
    def _status_id(field: str, value: Any, table: dict[int, tuple[str, str]]) -> int:
        if isinstance(value, dict):
            if value.get("id") not in (None, ""):
                status_id = _int(f"{field}.id", value["id"], minimum=1)
                if status_id in table:
                    return status_id
                raise _bad(f"{field}.id", f"unknown status {status_id}")
            value = value.get("code")
        code = _str(field, value).upper()
        for status_id, (known, _) in table.items():
            if known == code:
                return status_id
        raise _bad(field, f"unknown status {value!r}")

    def _update_order(self, record: Native, data: Native) -> Callable[[], Native]:
        _check_fields(data, set(self._ORDER_FIELDS), set(self._ORDER_IGNORED))
        changes: Native = {}
        if "shippingStatus" in data:
            changes["_shipping_status"] = self._status_id(
                "shippingStatus", data["shippingStatus"], SHIPPING_STATUSES
            )
        if "paymentStatus" in data:
            changes["_payment_status"] = self._status_id(
                "paymentStatus", data["paymentStatus"], PAYMENT_STATUSES
            )
        for name in ("tracking", "notes", "adminNotes"):
            if name in data:
                changes[name] = _str(name, data[name])
        # `tracking` is a 32-character column (XC-5.3.2 Model/Order.php, `@Column
        # (type="string", length=32)`); a longer value is refused as the database refuses
        # it in MySQL's strict mode [INFERRED: the REST module does not check lengths].
        if len(changes.get("tracking", "")) > 32:
            raise _bad("tracking", "at most 32 characters")
        if "orig_profile" in data:
            changes["orig_profile"] = self._orig_profile(data["orig_profile"])
        numbers: list[tuple[int | None, str]] = []
        for n, raw in enumerate(_as_list("trackingNumbers", data.get("trackingNumbers", []))):
            value = raw.get("value") if isinstance(raw, dict) else raw
            text = _str(f"trackingNumbers[{n}]", value).strip()
            if not text:
                raise _bad(f"trackingNumbers[{n}]", "must not be empty")
            raw_id = raw.get("tracking_id") if isinstance(raw, dict) else None
            known = None
            if raw_id not in (None, "", 0):
                known = _int(f"trackingNumbers[{n}].tracking_id", raw_id, minimum=1)
            numbers.append((known, text))

        def commit() -> Native:
            record.update(changes)
            self._load_tracking(record["order_id"], numbers)
            record["lastRenewDate"] = now_unix()
            return record

        return commit

    def _orig_profile(self, value: Any) -> Native | None:
        """The order's customer account, an association set by its key (`{"profile_id": 5}`,
        or the bare id; null makes the order a guest's). The order's own copy of the
        profile, its addresses as placed, is not touched."""
        if value in (None, "", 0, "0"):
            return None
        raw = value.get("profile_id") if isinstance(value, dict) else value
        profile_id = _int("orig_profile.profile_id", raw, minimum=1)
        if profile_id not in self.profiles:
            raise _bad("orig_profile.profile_id", f"no profile {profile_id}")
        return {"profile_id": profile_id}

    def _load_tracking(self, order_id: int, numbers: list[tuple[int | None, str]]) -> None:
        """The order's `trackingNumbers` relation as the REST module loads a `PUT` body:
        `ARepo::loadRawFixture` hands each related record to `loadFixture`, which finds an
        existing row by its identifier (`tracking_id`) and updates it, or makes a new row
        (X-Cart 5.3.2 Model/Repo/ARepo.php; the module's `ASchema::loadData`). Rows the
        body does not name stay; a record without its id is always a new row. A
        `tracking_id` of no row is a new row too [INFERRED]."""
        for tracking_id, value in numbers:
            existing = self.tracking_numbers.get(tracking_id or 0)
            if existing is None:
                self._add_tracking(order_id, value)
            else:
                existing["value"] = value
                existing["order"] = {"order_id": order_id}

    def _add_tracking(self, order_id: int, value: str) -> Native:
        tracking_id = self._next("tracking")
        record = {
            "tracking_id": tracking_id,
            "value": value,
            "creationDate": now_unix(),
            "order": {"order_id": order_id},
        }
        self.tracking_numbers[tracking_id] = record
        return record

    # tracking numbers

    def _create_tracking(self, data: Native) -> Callable[[], Native]:
        _check_fields(data, {"value", "order"}, {"tracking_id", "creationDate"})
        if "order" not in data:
            raise _bad("order", "is required")
        order_id = _ref_id("order", data["order"], "order_id")
        if order_id not in self.orders:
            raise _bad("order", f"no order {order_id}")
        value = _str("value", data.get("value")).strip()
        if not value:
            raise _bad("value", "must not be empty")

        def commit() -> Native:
            record = self._add_tracking(order_id, value)
            self._touch_order(order_id)
            return record

        return commit

    def _update_tracking(self, record: Native, data: Native) -> Callable[[], Native]:
        _check_fields(data, {"value"}, {"tracking_id", "creationDate", "order"})
        value = _str("value", data.get("value", record["value"])).strip()
        if not value:
            raise _bad("value", "must not be empty")

        def commit() -> Native:
            record["value"] = value
            self._touch_order(record["order"]["order_id"])
            return record

        return commit

    # returns

    def _return_items(self, order: Native, raw_items: Any) -> list[Native]:
        ordered: dict[str, int] = {}
        for item in order["items"]:
            ordered[item["sku"]] = ordered.get(item["sku"], 0) + item["amount"]
        items: list[Native] = []
        for n, raw in enumerate(_as_list("items", raw_items)):
            if not isinstance(raw, dict):
                raise _bad(f"items[{n}]", "must be an object")
            _check_fields(raw, {"sku", "amount", "reason"}, set())
            sku = _str(f"items[{n}].sku", raw.get("sku"))
            amount = _int(f"items[{n}].amount", raw.get("amount"), minimum=1)
            if sku not in ordered:
                raise _bad(f"items[{n}].sku", f"{sku!r} is not on order {order['order_id']}")
            if amount > ordered[sku]:
                raise _bad(f"items[{n}].amount", f"more than the {ordered[sku]} ordered")
            items.append(
                {"sku": sku, "amount": amount, "reason": _str("reason", raw.get("reason"))}
            )
        if not items:
            raise _bad("items", "must not be empty")
        return items

    def _create_return(self, data: Native) -> Callable[[], Native]:
        _check_fields(
            data,
            {"order", "items", "reason", "status", "adminNotes"},
            {"id", "orderNumber", "date", "lastRenewDate"},
        )
        if "order" not in data:
            raise _bad("order", "is required")
        order_id = _ref_id("order", data["order"], "order_id")
        order = self.orders.get(order_id)
        if order is None:
            raise _bad("order", f"no order {order_id}")
        items = self._return_items(order, data.get("items"))
        status = _str("status", data.get("status", "requested"))
        if status not in RETURN_STATUSES:
            raise _bad("status", f"must be one of {', '.join(RETURN_STATUSES)}")
        reason = _str("reason", data.get("reason"))
        notes = _str("adminNotes", data.get("adminNotes"))

        def commit() -> Native:
            return self._add_return(order, items, reason, status, notes)

        return commit

    def _add_return(
        self,
        order: Native,
        items: list[Native],
        reason: str,
        status: str = "requested",
        notes: str = "",
    ) -> Native:
        return_id = self._next("return")
        stamp = now_unix()
        record: Native = {
            "id": return_id,
            "order": {"order_id": order["order_id"]},
            "orderNumber": order["orderNumber"],
            "date": stamp,
            "lastRenewDate": stamp,
            "status": status,
            "reason": reason,
            "adminNotes": notes,
            "items": items,
        }
        self.returns[return_id] = record
        return record

    def _update_return(self, record: Native, data: Native) -> Callable[[], Native]:
        _check_fields(
            data,
            {"status", "adminNotes", "reason"},
            {"id", "order", "orderNumber", "date", "lastRenewDate", "items"},
        )
        changes: Native = {}
        if "status" in data:
            status = _str("status", data["status"])
            if status not in RETURN_STATUSES:
                raise _bad("status", f"must be one of {', '.join(RETURN_STATUSES)}")
            changes["status"] = status
        for name in ("adminNotes", "reason"):
            if name in data:
                changes[name] = _str(name, data[name])

        def commit() -> Native:
            record.update(changes)
            record["lastRenewDate"] = now_unix()
            return record

        return commit

    # ---- the storefront (control plane) ---------------------------------------------

    @staticmethod
    def _address_record(
        address: ShopperAddress, customer: ShopperCustomer | None, *, billing: bool, shipping: bool
    ) -> Native:
        first = customer.first_name if customer else ""
        last = customer.last_name if customer else ""
        if address.name:
            first, _, last = address.name.partition(" ")
        return {
            "address_id": None,
            "is_billing": billing,
            "is_shipping": shipping,
            "address_type": "R",
            "title": "",
            "firstname": first,
            "lastname": last,
            "company": address.company or (customer.company if customer else ""),
            "street": address.line1,
            "street2": address.line2,
            "city": address.city,
            "state": address.region,
            "zipcode": address.postal_code,
            "country_code": address.country.upper(),
            "phone": address.phone or (customer.phone if customer else ""),
        }

    def _shopper_addresses(
        self,
        customer: ShopperCustomer | None,
        billing: ShopperAddress | None,
        shipping: ShopperAddress | None,
    ) -> list[Native]:
        for address in (billing, shipping):
            if (
                address is not None
                and pycountry.countries.get(alpha_2=address.country.upper()) is None
            ):
                raise HTTPException(422, f"unknown country {address.country!r}")
        if billing is None or shipping is None or billing == shipping:
            only = billing or shipping
            if only is None:
                return []
            return [self._address_record(only, customer, billing=True, shipping=True)]
        return [
            self._address_record(billing, customer, billing=True, shipping=False),
            self._address_record(shipping, customer, billing=False, shipping=True),
        ]

    def _find_profile(self, email: str) -> Native | None:
        return next(
            (p for p in self.profiles.values() if p["login"].lower() == email.strip().lower()),
            None,
        )

    def _find_order(self, ref: str) -> Native | None:
        if ref.isdigit() and int(ref) in self.orders:
            return self.orders[int(ref)]
        return next((o for o in self.orders.values() if o["orderNumber"] == ref), None)

    async def _place_order(self, body: ShopperOrder) -> Native:
        priced: list[tuple[Native, ShopperLine, Decimal]] = []
        needed: dict[str, int] = {}
        for line in body.lines:
            product = next((p for p in self.products.values() if p["sku"] == line.sku), None)
            if product is None:
                raise HTTPException(422, f"unknown SKU {line.sku!r}")
            needed[line.sku] = needed.get(line.sku, 0) + line.quantity
            if product["inventoryEnabled"] and product["amount"] < needed[line.sku]:
                raise HTTPException(409, f"not enough stock for {line.sku}")
            price = line.unit_price if line.unit_price is not None else product["price"]
            priced.append((product, line, price))
        billing = body.billing_address or body.shipping_address
        addresses = self._shopper_addresses(body.customer, billing, body.shipping_address)
        stamp = now_unix()
        profile = self._find_profile(body.customer.email)
        if profile is None:
            profile_id = self._next("profile")
            profile = {
                "profile_id": profile_id,
                "login": body.customer.email.strip(),
                "status": "E",
                "added": stamp,
                "updateDate": stamp,
                "lastLogin": stamp,
                "addresses": self._commit_addresses([dict(a) for a in addresses]),
            }
            self.profiles[profile_id] = profile
        order_id = self._next("order")
        items: list[Native] = []
        for product, line, price in priced:
            subtotal = price * line.quantity
            items.append(
                {
                    "item_id": self._next("item"),
                    "sku": product["sku"],
                    "name": _product_name(product),
                    "price": price,
                    "amount": line.quantity,
                    "subtotal": subtotal,
                    "total": subtotal,
                    "object": {"product_id": product["product_id"]},
                    "surcharges": [],
                }
            )
            if product["inventoryEnabled"]:
                product["amount"] -= line.quantity
                product["updateDate"] = stamp
        subtotal = sum((item["subtotal"] for item in items), Decimal("0"))
        surcharges: list[Native] = []
        if body.shipping_total:
            surcharges.append(
                {
                    "id": self._next("surcharge"),
                    "type": "shipping",
                    "code": "SHIPPING",
                    "value": body.shipping_total,
                    "include": False,
                    "available": True,
                    "name": "Shipping cost",
                }
            )
        total = subtotal + body.shipping_total
        transactions: list[Native] = []
        payment_status = 1
        if body.payment is not None:
            payment_status = 4
            transactions.append(
                {
                    "transaction_id": self._next("transaction"),
                    "date": stamp,
                    "method_name": body.payment.method,
                    "publicTxnId": body.payment.reference,
                    "status": "S",
                    "type": "sale",
                    "value": total,
                    "currency": body.currency,
                    "note": "",
                }
            )
        currency = pycountry.currencies.get(alpha_3=body.currency)
        order: Native = {
            "order_id": order_id,
            "orderNumber": str(ORDER_NUMBER_START + order_id - 1),
            "date": stamp,
            "lastRenewDate": stamp,
            "total": total,
            "subtotal": subtotal,
            "tracking": "",
            "notes": body.notes,
            "adminNotes": "",
            "shipping_id": 1,
            "shipping_method_name": body.shipping_method,
            "payment_method_name": body.payment.method if body.payment else "",
            "profile": {
                "profile_id": self._next("profile"),
                "login": profile["login"],
                "status": "E",
                "order": {"order_id": order_id},
                "addresses": [dict(a, address_id=self._next("address")) for a in addresses],
            },
            "orig_profile": {"profile_id": profile["profile_id"]},
            "items": items,
            "surcharges": surcharges,
            "payment_transactions": transactions,
            "currency": {
                "currency_id": int(currency.numeric) if currency else 0,
                "code": body.currency,
                "symbol": "$" if body.currency == "USD" else body.currency,
                "e": 2,
            },
            "_shipping_status": 1,
            "_payment_status": payment_status,
        }
        self.orders[order_id] = order
        return order

    def _apply_profile_body(self, profile: Native, body: ShopperProfile) -> None:
        addresses: list[Native] = profile["addresses"]
        billing_now = [a for a in addresses if a.get("is_billing")] or addresses
        contact: Native = billing_now[0] if billing_now else {}

        def pick(given: str | None, field: str) -> str:
            return given if given is not None else str(contact.get(field) or "")

        customer = ShopperCustomer(
            email=body.email or profile["login"],
            first_name=pick(body.first_name, "firstname"),
            last_name=pick(body.last_name, "lastname"),
            phone=pick(body.phone, "phone"),
            company=pick(body.company, "company"),
        )
        billing = body.billing_address or body.address
        shipping = body.shipping_address or body.address
        if billing is not None or shipping is not None:
            profile["addresses"] = self._commit_addresses(
                self._shopper_addresses(customer, billing, shipping)
            )
        for address in profile["addresses"]:
            if not address.get("is_billing") and len(profile["addresses"]) > 1:
                continue
            if body.first_name is not None:
                address["firstname"] = body.first_name
            if body.last_name is not None:
                address["lastname"] = body.last_name
            if body.phone is not None:
                address["phone"] = body.phone
            if body.company is not None:
                address["company"] = body.company
        if body.email is not None:
            profile["login"] = body.email.strip()
        profile["updateDate"] = now_unix()

    def add_control_routes(self, router: APIRouter) -> None:
        @router.post("/orders")
        async def place_order(body: ShopperOrder) -> Native:
            order = await self._place_order(body)
            event = self._fire_store_event("order.created", order["order_id"])
            return {
                "id": str(order["order_id"]),
                "number": order["orderNumber"],
                "event_id": event.id,
            }

        @router.post("/orders/{ref}/cancel")
        async def cancel_order(ref: str) -> Native:
            order = self._find_order(ref)
            if order is None:
                raise HTTPException(404, f"no order {ref}")
            if order["_shipping_status"] in (3, 4):
                raise HTTPException(409, "the order has shipped; request a return instead")
            if order["_shipping_status"] != 5:
                for item in order["items"]:
                    product = self.products.get((item.get("object") or {}).get("product_id", 0))
                    if product is not None and product["inventoryEnabled"]:
                        product["amount"] += item["amount"]
                        product["updateDate"] = now_unix()
            order["_shipping_status"] = 5
            order["_payment_status"] = 6
            order["lastRenewDate"] = now_unix()
            event = self._fire_store_event("order.cancelled", order["order_id"])
            return {"id": str(order["order_id"]), "event_id": event.id}

        @router.post("/returns")
        async def request_return(body: ShopperReturn) -> Native:
            order = self._find_order(body.order)
            if order is None:
                raise HTTPException(404, f"no order {body.order}")
            try:
                items = self._return_items(
                    order,
                    [{"sku": x.sku, "amount": x.quantity, "reason": x.reason} for x in body.lines],
                )
            except RestError as exc:
                raise HTTPException(422, exc.message) from None
            record = self._add_return(order, items, body.reason)
            event = self._fire_store_event("return.requested", record["id"])
            return {"id": str(record["id"]), "event_id": event.id}

        @router.post("/customers")
        async def register_customer(body: ShopperProfile) -> Native:
            if not body.email:
                raise HTTPException(422, "email is required")
            if self._find_profile(body.email) is not None:
                raise HTTPException(409, f"a profile with login {body.email} exists")
            stamp = now_unix()
            profile_id = self._next("profile")
            profile: Native = {
                "profile_id": profile_id,
                "login": body.email.strip(),
                "status": "E",
                "added": stamp,
                "updateDate": stamp,
                "lastLogin": stamp,
                "addresses": [],
            }
            self._apply_profile_body(profile, body)
            self.profiles[profile_id] = profile
            event = self._fire_store_event("customer.created", profile_id)
            return {"id": str(profile_id), "event_id": event.id}

        @router.put("/customers/{profile_id}")
        async def edit_customer(profile_id: int, body: ShopperProfile) -> Native:
            profile = self.profiles.get(profile_id)
            if profile is None:
                raise HTTPException(404, f"no profile {profile_id}")
            if body.email:
                other = self._find_profile(body.email)
                if other is not None and other is not profile:
                    raise HTTPException(409, f"a profile with login {body.email} exists")
            self._apply_profile_body(profile, body)
            event = self._fire_store_event("customer.updated", profile_id)
            return {"id": str(profile_id), "event_id": event.id}


def _product_name(product: Native) -> str:
    translation: Native = next(iter(product["translations"]), {})
    return str(translation.get("name") or product["sku"])


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float, Decimal)):
        return (0, value)
    if isinstance(value, dict):
        return (1, json.dumps(value, default=str, sort_keys=True))
    return (1, "" if value is None else str(value))


def create_sandbox(settings: Settings) -> XCartSandbox:
    """An X-Cart store accepting exactly the keys `settings.xcart` gives the connector."""
    return XCartSandbox(
        rw_key=settings.xcart.api_key.get_secret_value(),
        read_key=settings.xcart.read_key.get_secret_value(),
    )
