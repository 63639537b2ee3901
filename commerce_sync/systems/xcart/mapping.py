"""X-Cart 5 native records <-> canonical models. Pure functions, no I/O.

Native shapes are the REST module's *default schema* (`_schema=default`) as the
sandbox serves them (docs/systems/xcart.md §3):

- order: `order_id`, `orderNumber`, `date`/`lastRenewDate` (unix seconds), `total`,
  `subtotal`, `tracking`, `trackingNumbers[{tracking_id, value, creationDate}]`,
  `notes`, `adminNotes`, `shipping_id`, `shipping_method_name`, `payment_method_name`,
  `profile` (the order's copy of the customer profile, with its addresses),
  `orig_profile` (`{"profile_id"}` of the customer's own profile, or null for guests),
  `paymentStatus{id,code,position}`, `shippingStatus{id,code,position}`, `items[]`,
  `surcharges[]`, `payment_transactions[]`, `currency{currency_id,code,...}`;
- order item: `item_id`, `sku`, `name`, `price`, `amount` (quantity), `subtotal`,
  `total`, `object{product_id}`, `surcharges[{type: "tax", code, value}]`;
- profile: `profile_id`, `login` (the e-mail), `status` (`E` enabled / `D` disabled),
  `added`, `updateDate` (unix), `addresses[]`;
- address: X-Cart keeps addresses as address-field values; the REST output flattens
  them by field service name: `firstname`, `lastname`, `street`, `city`, `state`,
  `country_code`, `zipcode`, `phone`, plus `company` and `street2`, two custom
  address fields this installation defines (X-Cart lets a merchant add address
  fields); `is_billing` / `is_shipping` flag the default billing and shipping address;
- product: `product_id`, `sku`, `price`, `amount` (stock), `enabled`, `weight`,
  `updateDate`, `translations[{code, name, description, briefDescription}]`;
- return (`xc-returns-orderreturn`, project-defined module model): `id`,
  `order{order_id}`, `orderNumber`, `date`, `status`, `reason`, `adminNotes`,
  `items[{sku, amount, reason}]`.

What X-Cart cannot hold, and so does not survive a round trip:
- a customer's name, phone and company live only on the customer's addresses: they
  are read from the billing address (or the first address);
- canonical `on_hold` has no shipping status of its own (it is written as New and
  read back as `pending`);
- the ERP order number has no field: it is kept in `adminNotes` on a line
  `ERP order: <ref>` (see `ERP_REF_PREFIX`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from commerce_sync.domain.countries import alpha2
from commerce_sync.domain.models import (
    Address,
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Origin,
    Payment,
    PaymentKind,
    Product,
    ReturnLine,
    ReturnRequest,
    StockLevel,
)
from commerce_sync.systems.xcart.lookups import XCartLookups

SYSTEM = "xcart"
ERP_REF_PREFIX = "ERP order: "
_ERP_REF_RE = re.compile(r"^ERP order: (\S+)\s*$", re.MULTILINE)

SHIPPING_STATUS_CODES: dict[int, str] = {1: "N", 2: "P", 3: "S", 4: "D", 5: "WND", 6: "R"}
PAYMENT_STATUS_IDS: dict[str, int] = {"Q": 1, "A": 2, "PP": 3, "P": 4, "D": 5, "C": 6, "R": 7}

Native = dict[str, Any]


# ---- scalars ----------------------------------------------------------------------


def money(value: Any) -> Decimal:
    """A native amount (JSON number parsed as Decimal, float, int or string) as Decimal."""
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def from_unix(value: Any) -> datetime | None:
    if value is None or value == "" or value == 0:
        return None
    return datetime.fromtimestamp(int(value), UTC)


def to_unix(value: datetime | None) -> int:
    return int(value.timestamp()) if value is not None else 0


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _split_name(name: str, first: str = "", last: str = "") -> tuple[str, str]:
    """`"Jane Doe"` -> (`Jane`, `Doe`); the given first/last win when they make up the name."""
    if (first or last) and " ".join(part for part in (first, last) if part) == name:
        return first, last
    head, _, tail = name.partition(" ")
    return head, tail


def _join_name(first: str, last: str) -> str:
    return " ".join(part for part in (first, last) if part)


# ---- addresses and customers --------------------------------------------------------


def address_from_native(native: Mapping[str, Any]) -> Address:
    return Address(
        name=_join_name(_text(native.get("firstname")), _text(native.get("lastname"))),
        company=_text(native.get("company")),
        line1=_text(native.get("street")),
        line2=_text(native.get("street2")),
        city=_text(native.get("city")),
        region=_text(native.get("state")),
        postal_code=_text(native.get("zipcode")),
        country=alpha2(_text(native.get("country_code"))),
        phone=_text(native.get("phone")),
    )


def address_to_native(
    address: Address,
    *,
    is_billing: bool,
    is_shipping: bool,
    address_id: int | None = None,
    first_name: str = "",
    last_name: str = "",
) -> Native:
    first, last = _split_name(address.name, first_name, last_name)
    native: Native = {
        "is_billing": is_billing,
        "is_shipping": is_shipping,
        "address_type": "R",
        "firstname": first,
        "lastname": last,
        "company": address.company,
        "street": address.line1,
        "street2": address.line2,
        "city": address.city,
        "state": address.region,
        "zipcode": address.postal_code,
        "country_code": alpha2(address.country),
        "phone": address.phone,
    }
    if address_id is not None:
        native["address_id"] = address_id
    return native


def _pick_addresses(addresses: list[Native]) -> tuple[Native | None, Native | None]:
    billing = next((a for a in addresses if a.get("is_billing")), None)
    shipping = next((a for a in addresses if a.get("is_shipping")), None)
    return billing, shipping


def addresses_to_native(
    billing: Address | None,
    shipping: Address | None,
    *,
    first_name: str = "",
    last_name: str = "",
) -> list[Native]:
    """One address with both flags when billing and shipping are the same."""
    if billing is not None and shipping is not None and billing == shipping:
        return [
            address_to_native(
                billing,
                is_billing=True,
                is_shipping=True,
                first_name=first_name,
                last_name=last_name,
            )
        ]
    out: list[Native] = []
    if billing is not None:
        out.append(
            address_to_native(
                billing,
                is_billing=True,
                is_shipping=False,
                first_name=first_name,
                last_name=last_name,
            )
        )
    if shipping is not None:
        out.append(address_to_native(shipping, is_billing=False, is_shipping=True))
    return out


def customer_from_native(profile: Mapping[str, Any], *, origin_id: Any = None) -> Customer:
    """A profile (a customer's own, or an order's copy) as a Customer.

    Names, phone and company come from the billing address, else the first address.
    `origin_id` overrides the profile id (an order's copy points at `orig_profile`).
    """
    addresses: list[Native] = list(profile.get("addresses") or [])
    billing, shipping = _pick_addresses(addresses)
    contact = billing or (addresses[0] if addresses else {})
    profile_id = origin_id if origin_id is not None else profile.get("profile_id")
    return Customer(
        origin=Origin(system=SYSTEM, external_id=str(profile_id)) if profile_id else None,
        email=_text(profile.get("login")),
        first_name=_text(contact.get("firstname")),
        last_name=_text(contact.get("lastname")),
        phone=_text(contact.get("phone")),
        company=_text(contact.get("company")),
        billing_address=address_from_native(billing) if billing else None,
        shipping_address=address_from_native(shipping) if shipping else None,
        active=profile.get("status", "E") != "D",
        created_at=from_unix(profile.get("added")),
        updated_at=from_unix(profile.get("updateDate")),
    )


def customer_to_native(customer: Customer) -> Native:
    """A profile body for create/update (`login`, `status`, `addresses`)."""
    return {
        "login": customer.email,
        "status": "E" if customer.active else "D",
        "addresses": addresses_to_native(
            customer.billing_address,
            customer.shipping_address,
            first_name=customer.first_name,
            last_name=customer.last_name,
        ),
    }


ADDRESS_CONTENT = (
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


def address_content(address: Native) -> tuple[str, ...]:
    """What an address says (its fields, trimmed, any case): X-Cart addresses have no
    reference field, so two addresses of one profile saying the same are one address."""
    return tuple(str(address.get(name) or "").strip().casefold() for name in ADDRESS_CONTENT)


def without_twins(addresses: list[Native]) -> list[Native]:
    """`addresses` less those repeating the content of an older one (lower id): the
    twins a late address create leaves; the oldest keeps the roles of all."""
    kept: dict[tuple[str, ...], Native] = {}
    for address in sorted(addresses, key=lambda a: int(a.get("address_id") or 0)):
        content = address_content(address)
        first = kept.get(content)
        if first is None:
            kept[content] = dict(address)
            continue
        for flag in ("is_billing", "is_shipping"):
            first[flag] = bool(first.get(flag)) or bool(address.get(flag))
    return list(kept.values())


def merge_addresses(existing: list[Native], wanted: list[Native]) -> list[Native]:
    """Keep the ids of the existing billing/shipping addresses the wanted ones replace,
    or of an existing address saying the same as a wanted one (an earlier attempt's).

    Addresses that are neither billing nor shipping are kept as they are.
    """
    old_billing, old_shipping = _pick_addresses(existing)
    out: list[Native] = []
    used: set[Any] = set()
    for address in wanted:
        previous = old_billing if address.get("is_billing") else old_shipping
        if previous is None or previous.get("address_id") in used:
            previous = next(
                (
                    a
                    for a in existing
                    if a.get("address_id") not in used
                    and address_content(a) == address_content(address)
                ),
                None,
            )
        if previous is not None and previous.get("address_id") not in used:
            address = {**address, "address_id": previous.get("address_id")}
            used.add(previous.get("address_id"))
        out.append(address)
    for address in existing:
        if address.get("is_billing") or address.get("is_shipping"):
            continue
        if address.get("address_id") not in used:
            out.append(dict(address))
    return out


# ---- statuses ---------------------------------------------------------------------


TRACKING_TEXT_MAX = 32
"""The order's legacy `tracking` column is `string, length=32` (XC-5.3.2 Model/Order.php,
`@Column (type="string", length=32)`)."""


def tracking_text(carrier: str, numbers: list[str]) -> str:
    """The legacy `tracking` text within its 32 characters: the carrier and as many whole
    numbers as fit, `+N` for the ones left out; else the first number alone; else nothing.
    A number is never cut: every number is an `ordertrackingnumber` record anyway."""
    candidates = [
        f"{carrier} {', '.join(numbers[:shown])}".strip()
        + (f" +{len(numbers) - shown}" if shown < len(numbers) else "")
        for shown in range(len(numbers), 0, -1)
    ]
    if numbers:
        candidates.append(numbers[0])
    else:
        candidates.append(carrier)
    return next((text for text in candidates if len(text) <= TRACKING_TEXT_MAX), "")


def shipping_status_id(status: OrderStatus | str, lookups: XCartLookups) -> int:
    key = OrderStatus(status).value
    if key not in lookups.shipping_status_ids:
        raise ValueError(f"no X-Cart shipping status for order status {key!r}")
    return lookups.shipping_status_ids[key]


def payment_status_code(state: str, lookups: XCartLookups) -> str:
    """A payment state (`paid`, `refunded`, ...) or a native code as an X-Cart code."""
    if state in lookups.payment_status_codes:
        return lookups.payment_status_codes[state]
    if state in PAYMENT_STATUS_IDS:
        return state
    raise ValueError(f"no X-Cart payment status for {state!r}")


def order_status_from_native(
    shipping_id: int | None, payment_code: str | None, lookups: XCartLookups
) -> OrderStatus:
    if payment_code and payment_code in lookups.order_status_by_payment_code:
        return OrderStatus(lookups.order_status_by_payment_code[payment_code])
    if shipping_id is not None and shipping_id in lookups.order_status_by_shipping_status_id:
        return OrderStatus(lookups.order_status_by_shipping_status_id[shipping_id])
    return OrderStatus.PENDING


def _status_payment_code(order: Order) -> str:
    if order.status == OrderStatus.REFUNDED:
        return "R"
    if order.status == OrderStatus.CANCELLED:
        return "C"
    if order.status == OrderStatus.REJECTED:
        return "D"
    return "P" if order.payment is not None else "Q"


def status_ref(status_id: int, code: str) -> Native:
    return {"id": status_id, "code": code, "position": status_id * 10}


def erp_ref_from_notes(admin_notes: str) -> str:
    found = _ERP_REF_RE.findall(admin_notes or "")
    return str(found[-1]) if found else ""


def notes_with(admin_notes: str, *, erp_ref: str | None = None, note: str | None = None) -> str:
    """`adminNotes` with the ERP reference line set (replacing an older one) and `note` appended.

    Idempotent: a note equal to the last line is not appended twice (Temporal retries).
    """
    lines = [line for line in (admin_notes or "").splitlines()]
    if erp_ref:
        lines = [line for line in lines if not _ERP_REF_RE.match(line)]
        lines.insert(0, f"{ERP_REF_PREFIX}{erp_ref}")
    if note:
        note = " ".join(note.split())
        if not lines or lines[-1] != note:
            lines.append(note)
    return "\n".join(lines)


# ---- orders -----------------------------------------------------------------------


def _surcharge_sum(surcharges: list[Native], kind: str) -> Decimal:
    return sum((money(s.get("value")) for s in surcharges if s.get("type") == kind), Decimal("0"))


def order_line_from_native(item: Mapping[str, Any]) -> OrderLine:
    surcharges: list[Native] = list(item.get("surcharges") or [])
    taxes = [s for s in surcharges if s.get("type") == "tax"]
    return OrderLine(
        sku=_text(item.get("sku")),
        name=_text(item.get("name")),
        quantity=int(item.get("amount") or 0),
        unit_price=money(item.get("price")),
        tax=_surcharge_sum(surcharges, "tax"),
        tax_code=_text(taxes[0].get("code")) if taxes else "",
        external_line_id=_text(item.get("item_id")),
    )


def order_line_to_native(line: OrderLine, item_id: int) -> Native:
    subtotal = line.unit_price * line.quantity
    surcharges: list[Native] = []
    if line.tax or line.tax_code:
        surcharges.append(
            {"type": "tax", "code": line.tax_code, "value": line.tax, "name": line.tax_code}
        )
    return {
        "item_id": int(line.external_line_id) if line.external_line_id.isdigit() else item_id,
        "sku": line.sku,
        "name": line.name,
        "price": line.unit_price,
        "amount": line.quantity,
        "subtotal": subtotal,
        "total": subtotal + line.tax,
        "object": None,
        "surcharges": surcharges,
    }


def payment_from_native(
    transaction: Mapping[str, Any], currency: str, order_number: str
) -> Payment:
    return Payment(
        origin=Origin(system=SYSTEM, external_id=str(transaction.get("transaction_id"))),
        kind=PaymentKind.REFUND if transaction.get("type") == "refund" else PaymentKind.RECEIPT,
        method=_text(transaction.get("method_name")),
        reference=_text(transaction.get("publicTxnId")),
        amount=money(transaction.get("value")),
        currency=_text(transaction.get("currency")) or currency,
        paid_at=from_unix(transaction.get("date")),
        order_ref=order_number,
    )


def order_from_native(native: Mapping[str, Any], lookups: XCartLookups) -> Order:
    profile: Native = dict(native.get("profile") or {})
    orig = native.get("orig_profile") or {}
    orig_id = orig.get("profile_id") if isinstance(orig, Mapping) else orig
    customer = customer_from_native(profile, origin_id=orig_id or None)
    if not orig_id:
        customer.origin = None
    customer.created_at = customer.updated_at = None
    billing, shipping = customer.billing_address, customer.shipping_address
    if billing is None and shipping is None:
        raise ValueError(f"X-Cart order {native.get('order_id')} has no address")
    billing = billing or shipping
    shipping = shipping or billing
    assert billing is not None and shipping is not None
    currency_raw = native.get("currency")
    currency = (
        _text(currency_raw.get("code"))
        if isinstance(currency_raw, Mapping)
        else _text(currency_raw)
    ) or lookups.currency
    number = _text(native.get("orderNumber"))
    surcharges: list[Native] = list(native.get("surcharges") or [])
    payments = [
        t
        for t in native.get("payment_transactions") or []
        if t.get("type", "sale") in ("sale", "capture", "auth") and t.get("status", "S") == "S"
    ]
    shipping_status = native.get("shippingStatus") or {}
    payment_status = native.get("paymentStatus") or {}
    return Order(
        origin=Origin(system=SYSTEM, external_id=str(native.get("order_id"))),
        number=number,
        status=order_status_from_native(
            shipping_status.get("id"), payment_status.get("code"), lookups
        ),
        placed_at=from_unix(native.get("date")) or datetime.fromtimestamp(0, UTC),
        updated_at=from_unix(native.get("lastRenewDate")),
        currency=currency,
        customer=customer,
        billing_address=billing,
        shipping_address=shipping,
        lines=[order_line_from_native(item) for item in native.get("items") or []],
        shipping_method=_text(native.get("shipping_method_name")),
        shipping_total=_surcharge_sum(surcharges, "shipping"),
        tax_total=_surcharge_sum(surcharges, "tax"),
        discount_total=-_surcharge_sum(surcharges, "discount"),
        total=money(native.get("total")),
        payment=payment_from_native(payments[0], currency, number) if payments else None,
        tracking_numbers=[
            _text(t.get("value")) if isinstance(t, Mapping) else _text(t)
            for t in native.get("trackingNumbers") or []
        ],
        erp_ref=erp_ref_from_notes(_text(native.get("adminNotes"))),
        store_notes=str(native.get("adminNotes") or ""),
    )


def order_to_native(order: Order, lookups: XCartLookups) -> Native:
    """The default-schema record X-Cart would hold for `order` (sandbox and tests)."""
    ship_id = shipping_status_id(order.status, lookups)
    pay_code = _status_payment_code(order)
    customer = order.customer
    profile: Native = {
        "login": customer.email,
        "status": "E",
        "addresses": addresses_to_native(
            order.billing_address,
            order.shipping_address,
            first_name=customer.first_name,
            last_name=customer.last_name,
        ),
    }
    surcharges: list[Native] = []
    if order.shipping_total:
        surcharges.append({"type": "shipping", "code": "SHIPPING", "value": order.shipping_total})
    if order.tax_total:
        surcharges.append({"type": "tax", "code": "TAX", "value": order.tax_total})
    if order.discount_total:
        surcharges.append({"type": "discount", "code": "DCOUPON", "value": -order.discount_total})
    transactions: list[Native] = []
    if order.payment is not None:
        payment = order.payment
        origin_id = payment.origin.external_id if payment.origin else "1"
        transactions.append(
            {
                "transaction_id": int(origin_id) if origin_id.isdigit() else 1,
                "date": to_unix(payment.paid_at),
                "method_name": payment.method,
                "publicTxnId": payment.reference,
                "status": "S",
                "type": "refund" if payment.kind == PaymentKind.REFUND else "sale",
                "value": payment.amount,
                "currency": payment.currency,
                "note": "",
            }
        )
    orig_id = customer.origin.external_id if customer.origin else None
    return {
        "order_id": int(order.origin.external_id) if order.origin.external_id.isdigit() else 0,
        "orderNumber": order.number,
        "date": to_unix(order.placed_at),
        "lastRenewDate": to_unix(order.updated_at),
        "total": order.total,
        "subtotal": sum((line.net for line in order.lines), Decimal("0")),
        "tracking": "",
        "trackingNumbers": [
            {"tracking_id": n, "value": value, "creationDate": 0}
            for n, value in enumerate(order.tracking_numbers, start=1)
        ],
        "notes": "",
        "adminNotes": notes_with("", erp_ref=order.erp_ref or None),
        "shipping_id": 1,
        "shipping_method_name": order.shipping_method,
        "payment_method_name": order.payment.method if order.payment else "",
        "profile": profile,
        "orig_profile": {"profile_id": int(orig_id)} if orig_id and orig_id.isdigit() else None,
        "paymentStatus": status_ref(PAYMENT_STATUS_IDS[pay_code], pay_code),
        "shippingStatus": status_ref(ship_id, SHIPPING_STATUS_CODES.get(ship_id, "")),
        "items": [order_line_to_native(line, n) for n, line in enumerate(order.lines, start=1)],
        "surcharges": surcharges,
        "payment_transactions": transactions,
        "currency": {"code": order.currency},
    }


# ---- products and stock -------------------------------------------------------------


def _translation(native: Mapping[str, Any], language: str) -> Native:
    translations: list[Native] = list(native.get("translations") or [])
    chosen = next((t for t in translations if t.get("code") == language), None)
    return chosen or (translations[0] if translations else {})


def product_from_native(native: Mapping[str, Any], lookups: XCartLookups) -> Product:
    translation = _translation(native, lookups.language)
    return Product(
        origin=Origin(system=SYSTEM, external_id=str(native.get("product_id"))),
        sku=_text(native.get("sku")),
        name=_text(translation.get("name")),
        description=_text(translation.get("description")),
        price=money(native.get("price")),
        currency=lookups.currency,
        enabled=bool(native.get("enabled", True)),
        updated_at=from_unix(native.get("updateDate")),
    )


def product_to_native(product: Product, lookups: XCartLookups) -> Native:
    """A product body for create/update. The store's currency is fixed (lookups.currency)."""
    if product.currency != lookups.currency:
        raise ValueError(
            f"X-Cart prices in {lookups.currency}; product {product.sku} is in {product.currency}"
        )
    return {
        "sku": product.sku,
        "price": product.price,
        "enabled": product.enabled,
        "translations": [
            {
                "code": lookups.language,
                "name": product.name,
                "description": product.description,
                "briefDescription": "",
            }
        ],
    }


def stock_from_native(native: Mapping[str, Any]) -> StockLevel:
    amount = int(native.get("amount") or 0)
    return StockLevel(
        sku=_text(native.get("sku")),
        on_hand=amount,
        available=amount,
        as_of=from_unix(native.get("updateDate")),
    )


# ---- returns ----------------------------------------------------------------------


def return_from_native(native: Mapping[str, Any]) -> ReturnRequest:
    return ReturnRequest(
        origin=Origin(system=SYSTEM, external_id=str(native.get("id"))),
        order_number=_text(native.get("orderNumber")),
        lines=[
            ReturnLine(
                sku=_text(item.get("sku")),
                quantity=int(item.get("amount") or 0),
                reason=_text(item.get("reason")),
            )
            for item in native.get("items") or []
        ],
        reason=_text(native.get("reason")),
        requested_at=from_unix(native.get("date")),
    )


def return_to_native(request: ReturnRequest) -> Native:
    return {
        "id": int(request.origin.external_id) if request.origin.external_id.isdigit() else 0,
        "orderNumber": request.order_number,
        "date": to_unix(request.requested_at),
        "status": "requested",
        "reason": request.reason,
        "adminNotes": "",
        "items": [
            {"sku": line.sku, "amount": line.quantity, "reason": line.reason}
            for line in request.lines
        ],
    }
