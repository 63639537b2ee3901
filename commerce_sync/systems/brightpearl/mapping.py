"""Brightpearl native shapes <-> canonical models. Pure functions, no I/O.

Native shapes are those of docs/systems/brightpearl.md: legacy order create plus rows
posted separately, `GET order/{id}` with `orderRows` keyed by row id, contact-service
contacts with postal addresses, product-service products and prices, warehouse-service
availability and goods-out notes, accounting-service customer payments.

Conventions:
- Money travels as decimal strings (Brightpearl answers strings such as `"12.5000"`), so
  nothing passes through a float; `money()` reads strings and JSON numbers alike.
- Countries are alpha-3 in Brightpearl (`countryIsoCode`), alpha-2 in the canonical model.
- Addresses: `addressLine3` holds the city and `addressLine4` the region (Brightpearl's
  usual UK-style layout, [INFERRED]).
- Shipping and discount are free-text rows whose nominal codes come from the lookups.
- Availability: Brightpearl `inStock` is the physical quantity, `allocated` what open
  sales order rows reserve, and `onHand` = `inStock` - `allocated` (the example of
  docs/systems/brightpearl.md §7: 10 / 2 / 8). Canonical `on_hand` is the physical
  quantity (`inStock`) and `available` is `onHand`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from commerce_sync.domain.countries import alpha2, alpha3
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
    Shipment,
    ShipmentLine,
    StockLevel,
)
from commerce_sync.systems.brightpearl.lookups import BrightpearlLookups

SYSTEM = "brightpearl"
SHIPPING_ROW_NAME = "Shipping"
DISCOUNT_ROW_NAME = "Discount"

Json = dict[str, Any]


# ---- scalars ------------------------------------------------------------------------


def money(value: Any) -> Decimal:
    """A Brightpearl amount (string or JSON number) as an exact Decimal."""
    if value is None or value == "":
        return Decimal("0")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None


def money_str(value: Decimal) -> str:
    """An exact decimal string for the API (never through float)."""
    return format(value, "f")


def quantity(value: Any) -> int:
    number = money(value)
    if number != number.to_integral_value():
        raise ValueError(f"not a whole quantity: {value!r}")
    return int(number)


def bp_datetime(value: datetime) -> str:
    """ISO-8601 UTC with milliseconds, as Brightpearl writes timestamps."""
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_datetime(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _epoch() -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


# ---- lookups ------------------------------------------------------------------------


def status_id(status: OrderStatus | str, lookups: BrightpearlLookups) -> int:
    key = OrderStatus(status).value
    try:
        return lookups.order_status_ids[key]
    except KeyError:
        raise ValueError(f"no Brightpearl order status for {key!r} in the lookups") from None


def status_from_id(order_status_id: int, lookups: BrightpearlLookups) -> OrderStatus:
    """The first canonical status mapped to the id (aliases such as delivered -> shipped);
    an id the lookups do not know is a merchant-specific status: `processing`."""
    for name, value in lookups.order_status_ids.items():
        if value == order_status_id:
            return OrderStatus(name)
    return OrderStatus.PROCESSING


def tax_code(name: str, lookups: BrightpearlLookups) -> str:
    if not name:
        return lookups.default_tax_code
    if name in lookups.tax_codes:
        return lookups.tax_codes[name]
    if name in lookups.tax_codes.values():
        return name
    raise ValueError(f"unknown tax class {name!r}")


def tax_class(code: str, lookups: BrightpearlLookups) -> str:
    for name, value in lookups.tax_codes.items():
        if value == code:
            return name
    return code


def shipping_method_id(name: str, lookups: BrightpearlLookups) -> int | None:
    if not name:
        return None
    try:
        return lookups.shipping_method_ids[name]
    except KeyError:
        raise ValueError(f"unknown shipping method {name!r}") from None


def shipping_method_name(method_id: Any, lookups: BrightpearlLookups) -> str:
    if method_id in (None, ""):
        return ""
    for name, value in lookups.shipping_method_ids.items():
        if value == int(method_id):
            return name
    return str(method_id)


def carrier_name(method_id: Any, lookups: BrightpearlLookups) -> str:
    if method_id in (None, ""):
        return ""
    for name, value in lookups.carrier_shipping_method_ids.items():
        if value == int(method_id):
            return name
    return ""


def payment_method_code(method: str, lookups: BrightpearlLookups) -> str:
    return lookups.payment_method_codes.get(method, lookups.payment_method_code)


def payment_method_name(code: str, lookups: BrightpearlLookups) -> str:
    for name, value in lookups.payment_method_codes.items():
        if value == code:
            return name
    return code


# ---- addresses ----------------------------------------------------------------------


def address_to_party(address: Address, email: str = "") -> Json:
    """An order party (`parties.delivery` / `parties.billing`)."""
    return {
        "addressFullName": address.name,
        "companyName": address.company,
        "addressLine1": address.line1,
        "addressLine2": address.line2,
        "addressLine3": address.city,
        "addressLine4": address.region,
        "postalCode": address.postal_code,
        "countryIsoCode": alpha3(address.country),
        "telephone": address.phone,
        "mobileTelephone": "",
        "email": email,
    }


def party_to_address(party: Mapping[str, Any]) -> Address:
    return Address(
        name=_text(party.get("addressFullName")),
        company=_text(party.get("companyName")),
        line1=_text(party.get("addressLine1")),
        line2=_text(party.get("addressLine2")),
        city=_text(party.get("addressLine3")),
        region=_text(party.get("addressLine4")),
        postal_code=_text(party.get("postalCode")),
        country=alpha2(_text(party.get("countryIsoCode"))),
        phone=_text(party.get("telephone")) or _text(party.get("mobileTelephone")),
    )


def address_to_postal(address: Address) -> Json:
    """A contact-service `postal-address` (no name, company or phone: those live on the contact)."""
    return {
        "addressLine1": address.line1,
        "addressLine2": address.line2,
        "addressLine3": address.city,
        "addressLine4": address.region,
        "postalCode": address.postal_code,
        "countryIsoCode": alpha3(address.country),
    }


def postal_to_address(
    postal: Mapping[str, Any], *, name: str = "", company: str = "", phone: str = ""
) -> Address:
    return Address(
        name=name,
        company=company,
        line1=_text(postal.get("addressLine1")),
        line2=_text(postal.get("addressLine2")),
        city=_text(postal.get("addressLine3")),
        region=_text(postal.get("addressLine4")),
        postal_code=_text(postal.get("postalCode")),
        country=alpha2(_text(postal.get("countryIsoCode"))),
        phone=phone,
    )


def same_postal(a: Address, b: Address) -> bool:
    return address_to_postal(a) == address_to_postal(b)


# ---- contacts -----------------------------------------------------------------------


def customer_to_contact(
    customer: Customer, address_ids: Mapping[str, int], lookups: BrightpearlLookups
) -> Json:
    """`POST contact-service/contact` body; `address_ids` maps `DEF`/`BIL`/`DEL` to
    postal address ids created first. The nesting of `communication`, `organisation`,
    `relationshipToAccount`, `financialDetails` and `contactStatus.current` is as a public
    client lists Contact POST's parameters (github.com/langabi/Brightpearl-PHP
    src/resources/contact.php); https://api-docs.brightpearl.com/contact/contact/post.html
    names the fields."""
    telephones = {"PRI": customer.phone} if customer.phone else {}
    return {
        "firstName": customer.first_name,
        "lastName": customer.last_name,
        "postAddressIds": dict(address_ids),
        "communication": {
            "emails": {"PRI": {"email": customer.email}},
            "telephones": telephones,
        },
        "organisation": {"name": customer.company},
        "relationshipToAccount": {"isCustomer": True, "isSupplier": False, "isStaff": False},
        "financialDetails": {"priceListId": lookups.price_list_id},
        "contactStatus": {"current": {"contactStatusId": 1 if customer.active else 2}},
    }


CONTACT_PATCH_DOCS = "https://api-docs.brightpearl.com/contact/contact/patch.html"
"""Contact PATCH lists what it patches: `/salutation`, `/firstName`, `/lastName`,
`/communication/telephones/{PRI|SEC|MOB|FAX}`, `/communication/emails/{PRI|SEC|TER}/email`,
`/marketingDetails/isReceiveEmailNewsletter`, `/leadTime` and `/companyId`. Nothing else
(status, organisation name, postal address links) is patchable: each has its own
documented message (`contact_status_id`, `company_patch`, client.py's address links)."""


def contact_status_id(active: bool) -> int:
    """The contact status that marks a contact active (1) or inactive (2): the body of
    Contact Status PUT (`{"contactStatusId": n}`,
    https://api-docs.brightpearl.com/contact/contact-status/put.html). Status ids are per
    account [INFERRED: the sandbox's 1 and 2]."""
    return 1 if active else 2


def customer_patch(customer: Customer) -> list[Json]:
    """JSON-Patch `replace` operations of Contact PATCH, only on its documented paths
    (`CONTACT_PATCH_DOCS`): names, primary e-mail and primary telephone."""
    return [
        {"op": "replace", "path": "/firstName", "value": customer.first_name},
        {"op": "replace", "path": "/lastName", "value": customer.last_name},
        {"op": "replace", "path": "/communication/emails/PRI/email", "value": customer.email},
        {"op": "replace", "path": "/communication/telephones/PRI", "value": customer.phone},
    ]


def company_patch(company_id: int) -> Json:
    """Moves a contact into a company: Contact PATCH's documented `/companyId` (`replace`);
    Company POST (https://api-docs.brightpearl.com/contact/company/post.html) says a contact
    joins a company by a valid `companyId` given to contact POST, PUT or PATCH."""
    return {"op": "replace", "path": "/companyId", "value": int(company_id)}


def contact_from_native(contact: Mapping[str, Any]) -> Customer:
    communication = contact.get("communication") or {}
    emails = communication.get("emails") or {}
    telephones = communication.get("telephones") or {}
    first, last = _text(contact.get("firstName")), _text(contact.get("lastName"))
    company = _text((contact.get("organisation") or {}).get("name"))
    phone = _text(telephones.get("PRI")) or _text(telephones.get("MOB"))
    full_name = f"{first} {last}".strip()
    ids = contact.get("postAddressIds") or {}
    postal = contact.get("postalAddresses") or {}

    def address(kind: str) -> Address | None:
        address_id = ids.get(kind) or ids.get("DEF")
        found = postal.get(str(address_id)) if address_id is not None else None
        if not found:
            return None
        return postal_to_address(found, name=full_name, company=company, phone=phone)

    status = ((contact.get("contactStatus") or {}).get("current") or {}).get("contactStatusId")
    return Customer(
        origin=Origin(system=SYSTEM, external_id=str(contact["contactId"])),
        email=_text((emails.get("PRI") or {}).get("email")),
        first_name=first,
        last_name=last,
        phone=phone,
        company=company,
        billing_address=address("BIL"),
        shipping_address=address("DEL"),
        active=status in (None, 1),
        created_at=parse_datetime(contact.get("createdOn")),
        updated_at=parse_datetime(contact.get("updatedOn")),
    )


# ---- orders -------------------------------------------------------------------------


def order_to_native(
    order: Order,
    contact_id: int,
    lookups: BrightpearlLookups,
    *,
    order_type: str = "SO",
    parent_order_id: int | None = None,
) -> Json:
    """`POST order-service/order` body (legacy create; rows are posted separately)."""
    delivery: Json = {}
    method_id = shipping_method_id(order.shipping_method, lookups)
    if method_id is not None:
        delivery["shippingMethodId"] = method_id
    return {
        "orderTypeCode": order_type,
        "reference": order.number,
        "parentOrderId": parent_order_id,
        "priceListId": lookups.price_list_id,
        "priceModeCode": "EXC",
        "placedOn": bp_datetime(order.placed_at),
        "orderStatus": {"orderStatusId": status_id(order.status, lookups)},
        "delivery": delivery,
        "currency": {
            "orderCurrencyCode": order.currency,
            "fixedExchangeRate": True,
            "exchangeRate": "1",
        },
        "parties": {
            "customer": {"contactId": contact_id},
            "delivery": address_to_party(order.shipping_address, order.customer.email),
            "billing": address_to_party(order.billing_address, order.customer.email),
        },
        "assignment": {"current": {"channelId": lookups.channel_id}},
        "warehouseId": lookups.warehouse_id,
    }


def line_to_row(line: OrderLine, product_id: int | None, lookups: BrightpearlLookups) -> Json:
    """`POST order-service/order/{id}/row` body for one line (free text without a product)."""
    row: Json = {
        "quantity": {"magnitude": str(line.quantity)},
        "taxCode": tax_code(line.tax_code, lookups),
        "rowNet": {"value": money_str(line.net)},
        "rowTax": {"value": money_str(line.tax)},
        "nominalCode": lookups.nominal_code,
    }
    if product_id is not None:
        row["productId"] = product_id
        if line.name:
            row["productName"] = line.name
    else:
        row["productName"] = line.name or line.sku
    return row


def order_rows_to_native(
    order: Order, product_ids: Mapping[str, int], lookups: BrightpearlLookups
) -> list[Json]:
    """Rows for the order: one per line, then shipping and discount as free-text rows.

    Shipping carries the tax the lines do not (`tax_total` - sum of line taxes).
    """
    rows = [line_to_row(line, product_ids.get(line.sku), lookups) for line in order.lines]
    shipping_tax = order.tax_total - sum((line.tax for line in order.lines), Decimal("0"))
    if order.shipping_total or shipping_tax:
        rows.append(
            {
                "productName": SHIPPING_ROW_NAME,
                "quantity": {"magnitude": "1"},
                "taxCode": lookups.default_tax_code,
                "rowNet": {"value": money_str(order.shipping_total)},
                "rowTax": {"value": money_str(shipping_tax)},
                "nominalCode": lookups.shipping_nominal_code,
            }
        )
    if order.discount_total:
        rows.append(
            {
                "productName": DISCOUNT_ROW_NAME,
                "quantity": {"magnitude": "1"},
                "taxCode": lookups.default_tax_code,
                "rowNet": {"value": money_str(-order.discount_total)},
                "rowTax": {"value": "0"},
                "nominalCode": lookups.discount_nominal_code,
            }
        )
    return rows


def order_to_atomic(
    order: Order,
    contact_id: int,
    rows: list[Json],
    lookups: BrightpearlLookups,
    installed_integration_instance_id: int,
) -> Json:
    """`POST order-service/sales-order` body: the header and `rows` (the legacy row bodies,
    flattened) in one request. `externalRef` is the store order number: with the
    integration instance id it is Brightpearl's unique key, so the create is idempotent on
    the server. `ref` stays the number too (search column `customerRef`). The address and
    currency object shapes are [INFERRED]."""
    legacy = order_to_native(order, contact_id, lookups)
    return {
        "customer": {"id": contact_id},
        "billing": {"contactId": contact_id, "address": legacy["parties"]["billing"]},
        "delivery": {**legacy["delivery"], "address": legacy["parties"]["delivery"]},
        "ref": order.number,
        "externalRef": order.number,
        "installedIntegrationInstanceId": installed_integration_instance_id,
        "placedOn": legacy["placedOn"],
        "statusId": legacy["orderStatus"]["orderStatusId"],
        "warehouseId": legacy["warehouseId"],
        "channelId": lookups.channel_id,
        "priceListId": legacy["priceListId"],
        "priceModeCode": legacy["priceModeCode"],
        "currency": {
            "code": order.currency,
            "fixedExchangeRate": True,
            "exchangeRate": "1",
        },
        "rows": [atomic_row(row) for row in rows],
    }


def atomic_row(row: Mapping[str, Any]) -> Json:
    """A legacy row body (`quantity.magnitude`, `rowNet.value`, ...) in the atomic create's
    flat shape (`quantity`, `net`, `tax`; `name` for `productName`)."""
    atomic: Json = {
        "quantity": row["quantity"]["magnitude"],
        "taxCode": row["taxCode"],
        "net": row["rowNet"]["value"],
        "tax": row["rowTax"]["value"],
        "nominalCode": row["nominalCode"],
    }
    if row.get("productId") is not None:
        atomic["productId"] = row["productId"]
    if row.get("productName"):
        atomic["name"] = row["productName"]
    return atomic


def row_key(row: Mapping[str, Any]) -> tuple[str, int, Decimal, Decimal]:
    """What makes two rows the same, for either the create or the read shape."""
    value = row.get("rowValue") or row
    product = row.get("productId")
    ident = (
        f"p{int(product)}" if product not in (None, "", 0) else f"n{_text(row.get('productName'))}"
    )
    return (
        ident,
        quantity((row.get("quantity") or {}).get("magnitude")),
        money((value.get("rowNet") or {}).get("value")),
        money((value.get("rowTax") or {}).get("value")),
    )


def _sorted_rows(native: Mapping[str, Any]) -> list[Json]:
    rows = native.get("orderRows") or {}
    if isinstance(rows, list):
        return list(rows)
    return [
        {"id": int(key), **value} for key, value in sorted(rows.items(), key=lambda kv: int(kv[0]))
    ]


def order_from_native(native: Mapping[str, Any], lookups: BrightpearlLookups) -> Order:
    """A `GET order-service/order/{id}` entry as a canonical order (origin Brightpearl)."""
    lines: list[OrderLine] = []
    shipping = discount = tax_total = total = Decimal("0")
    for row in _sorted_rows(native):
        value = row.get("rowValue") or {}
        net = money((value.get("rowNet") or {}).get("value"))
        tax = money((value.get("rowTax") or {}).get("value"))
        qty = quantity((row.get("quantity") or {}).get("magnitude"))
        tax_total += tax
        total += net + tax
        nominal = _text(row.get("nominalCode"))
        if not row.get("productId") and nominal == lookups.shipping_nominal_code:
            shipping += net
            continue
        if not row.get("productId") and nominal == lookups.discount_nominal_code:
            discount -= net
            continue
        lines.append(
            OrderLine(
                sku=_text(row.get("productSku")),
                name=_text(row.get("productName")),
                quantity=qty,
                unit_price=net / qty if qty else net,
                tax=tax,
                tax_code=tax_class(_text(value.get("taxCode")), lookups),
                external_line_id=str(row.get("id", "")),
            )
        )
    parties = native.get("parties") or {}
    customer_party = parties.get("customer") or {}
    full_name = _text(customer_party.get("addressFullName"))
    first, _, last = full_name.partition(" ")
    currency = (native.get("currency") or {}).get("orderCurrencyCode") or lookups.base_currency
    status = (native.get("orderStatus") or {}).get("orderStatusId")
    order_id = str(native["id"])
    return Order(
        origin=Origin(system=SYSTEM, external_id=order_id),
        number=_text(native.get("reference")),
        status=status_from_id(int(status), lookups) if status is not None else OrderStatus.PENDING,
        placed_at=parse_datetime(native.get("placedOn") or native.get("createdOn")) or _epoch(),
        updated_at=parse_datetime(native.get("updatedOn")),
        currency=str(currency),
        customer=Customer(
            origin=Origin(system=SYSTEM, external_id=str(customer_party.get("contactId", ""))),
            email=_text(customer_party.get("email")),
            first_name=first,
            last_name=last,
            phone=_text(customer_party.get("telephone")),
            company=_text(customer_party.get("companyName")),
        ),
        billing_address=party_to_address(parties.get("billing") or {}),
        shipping_address=party_to_address(parties.get("delivery") or {}),
        lines=lines,
        shipping_method=shipping_method_name(
            (native.get("delivery") or {}).get("shippingMethodId"), lookups
        ),
        shipping_total=shipping,
        tax_total=tax_total,
        discount_total=discount,
        total=total,
        erp_ref=order_id,
    )


# ---- products and stock -------------------------------------------------------------


def product_price(
    prices: Mapping[str, Any] | None, price_list_id: int
) -> tuple[Decimal, str] | None:
    """Quantity-1 price and currency of `price_list_id` from a `product-price` entry."""
    for price_list in (prices or {}).get("priceLists") or []:
        if int(price_list.get("priceListId", 0)) == price_list_id:
            breaks = price_list.get("quantityPrice") or {}
            if not breaks:
                return None
            first = breaks.get("1", next(iter(breaks.values())))
            return money(first), str(price_list.get("currencyCode"))
    return None


def product_from_native(
    product: Mapping[str, Any], prices: Mapping[str, Any] | None, lookups: BrightpearlLookups
) -> Product:
    channels = product.get("salesChannels") or [{}]
    channel = channels[0] if channels else {}
    price = product_price(prices, lookups.price_list_id)
    amount, currency = price if price is not None else (Decimal("0"), lookups.base_currency)
    return Product(
        origin=Origin(system=SYSTEM, external_id=str(product["id"])),
        sku=_text((product.get("identity") or {}).get("sku")),
        name=_text(channel.get("productName")),
        description=_text((channel.get("description") or {}).get("text")),
        price=amount,
        currency=currency,
        enabled=product.get("status", "LIVE") == "LIVE",
        updated_at=parse_datetime(product.get("updatedOn")),
    )


def product_to_native(
    product: Product, product_id: int, lookups: BrightpearlLookups
) -> tuple[Json, Json]:
    """A product and its `product-price` entry, in the shapes `GET` answers."""
    native = {
        "id": product_id,
        "identity": {"sku": product.sku},
        "salesChannels": [
            {
                "salesChannelName": "Brightpearl",
                "productName": product.name,
                "description": {
                    "languageCode": "en",
                    "text": product.description,
                    "format": "HTML_FRAGMENT",
                },
            }
        ],
        "status": "LIVE" if product.enabled else "DISCONTINUED",
        "updatedOn": bp_datetime(product.updated_at) if product.updated_at else None,
    }
    prices = {
        "productId": product_id,
        "priceLists": [
            {
                "priceListId": lookups.price_list_id,
                "currencyCode": product.currency,
                "quantityPrice": {"1": money_str(product.price)},
            }
        ],
    }
    return native, prices


def availability_from_native(
    sku: str,
    entry: Mapping[str, Any],
    *,
    warehouse_id: int | None = None,
    as_of: datetime | None = None,
) -> StockLevel:
    """One product's `product-availability` entry: the total, or one warehouse's figures."""
    if warehouse_id is None:
        figures = entry.get("total") or {}
    else:
        figures = (entry.get("warehouses") or {}).get(str(warehouse_id)) or {}
    in_stock = quantity(figures.get("inStock", 0))
    on_hand = quantity(figures.get("onHand", in_stock - quantity(figures.get("allocated", 0))))
    return StockLevel(
        sku=sku,
        on_hand=in_stock,
        available=on_hand,
        warehouse="" if warehouse_id is None else str(warehouse_id),
        as_of=as_of,
    )


# ---- shipments ----------------------------------------------------------------------


def shipment_from_native(
    note_id: int | str,
    note: Mapping[str, Any],
    sku_by_row_id: Mapping[str, str],
    lookups: BrightpearlLookups,
) -> Shipment:
    """A goods-out note: `shipping.reference` is the tracking number."""
    shipping = note.get("shipping") or {}
    reference = _text(shipping.get("reference"))
    status = note.get("status") or {}
    shipped_at = parse_datetime(status.get("shippedOn")) if status.get("shipped") else None
    if status.get("shipped") and shipped_at is None:
        for event in note.get("events") or []:
            if event.get("eventCode") == "SHW":
                shipped_at = parse_datetime(event.get("occured"))
    lines: list[ShipmentLine] = []
    for row_id, products in (note.get("orderRows") or {}).items():
        for item in products:
            lines.append(
                ShipmentLine(
                    sku=sku_by_row_id.get(str(row_id), str(item.get("productId", ""))),
                    quantity=quantity(item.get("quantity")),
                )
            )
    return Shipment(
        origin=Origin(system=SYSTEM, external_id=str(note_id)),
        order_ref=str(note.get("orderId", "")),
        tracking_numbers=[part.strip() for part in reference.split(",") if part.strip()],
        carrier=carrier_name(shipping.get("shippingMethodId"), lookups),
        shipped_at=shipped_at,
        lines=lines,
    )


# ---- payments -----------------------------------------------------------------------


PAYMENT_TYPES = {PaymentKind.RECEIPT: "RECEIPT", PaymentKind.REFUND: "PAYMENT"}


def payment_to_native(
    payment: Payment,
    order_id: int,
    lookups: BrightpearlLookups,
    *,
    payment_type: str | None = None,
    paid_at: datetime | None = None,
) -> Json:
    """`POST accounting-service/customer-payment` body."""
    when = payment.paid_at or paid_at or datetime.now(UTC)
    return {
        "transactionRef": payment.reference,
        "transactionCode": payment.reference,
        "paymentMethodCode": payment_method_code(payment.method, lookups),
        "paymentType": payment_type or PAYMENT_TYPES[payment.kind],
        "orderId": order_id,
        "currencyIsoCode": payment.currency,
        "exchangeRate": "1",
        "amountPaid": money_str(payment.amount),
        "paymentDate": bp_datetime(when),
        "journalRef": f"Payment {payment.reference}"[:64],
    }


def payment_from_native(row: Mapping[str, Any], lookups: BrightpearlLookups) -> Payment:
    """A `customer-payment-search` result (as a column -> value dict)."""
    kind = PaymentKind.REFUND if row.get("paymentType") == "PAYMENT" else PaymentKind.RECEIPT
    return Payment(
        origin=Origin(system=SYSTEM, external_id=str(row.get("paymentId", ""))),
        kind=kind,
        method=payment_method_name(_text(row.get("paymentMethodCode")), lookups),
        reference=_text(row.get("transactionRef")),
        amount=money(row.get("amountPaid")),
        currency=_text(row.get("currencyCode")),
        paid_at=parse_datetime(row.get("paymentDate")),
        order_ref=str(row.get("orderId", "")),
    )


def search_rows(response: Mapping[str, Any]) -> list[Json]:
    """Positional search results as dicts keyed by `metaData.columns[].name`."""
    names = [column["name"] for column in response.get("metaData", {}).get("columns", [])]
    return [dict(zip(names, values, strict=False)) for values in response.get("results", [])]
