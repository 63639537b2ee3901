"""Kentico rows (REST JSON, column names of `schema.py`) <-> canonical models. Pure functions.

Choices (Kentico leaves them to the integration):

- Store order number: `OrderID` as text (Kentico's default invoice number is the same).
- The ERP order number goes into `OrderCustomData` (`<CustomData><ErpOrderNumber>`), next
  to `StatusNote` (the note of the last status change), `Carrier` (of the tracking
  numbers) and `DiscountTotal` (the order's discount, a decimal). Line tax and tax code
  live in `OrderItemCustomData` (`TaxAmount`, `TaxCode`): Kentico keeps taxes per order.
- Tracking numbers: `OrderTrackingNumber`, several joined with `", "`.
- Payment: present when `OrderIsPaid`; method from `OrderPaymentOptionID` (lookups),
  reference and date from the `OrderPaymentResult` XML, amount the grand total.
- Countries: `AddressCountryID` refers to `cms.country`; regions: `AddressStateID` to
  `cms.state` (`StateCode`, e.g. `TX`). `GeoTables` holds both (the client reads them once).
  A region the state table does not know is left out (Kentico only stores known states).
- Addresses keep no company (COM_Address/COM_OrderAddress have no such column); the
  customer's company is `CustomerCompany`. A customer's billing and shipping address are
  the `COM_Address` rows flagged `AddressIsBilling` / `AddressIsShipping` (lowest id first).
- Products: prices are in the site's main currency (`KenticoLookups.main_currency`);
  stock is `SKUAvailableItems` (on hand = available: Kentico keeps one number).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from commerce_sync.domain.models import (
    Address,
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Origin,
    Payment,
    Product,
    ReturnLine,
    ReturnRequest,
    StockLevel,
)
from commerce_sync.systems.kentico.formats import (
    dump_custom_data,
    dump_payment_result,
    format_datetime,
    parse_custom_data,
    parse_datetime,
    parse_payment_result,
)
from commerce_sync.systems.kentico.lookups import KenticoLookups
from commerce_sync.systems.kentico.schema import ADDRESS_TYPE_BILLING, ADDRESS_TYPE_SHIPPING

Row = Mapping[str, Any]
SYSTEM = "kentico"


class MappingError(ValueError):
    """A value has no counterpart on the other side; `field` names the canonical field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _decimal(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, float):  # never produced by exactjson; be exact anyway
        return Decimal(str(value))
    return Decimal(value)


def _origin(row_id: Any) -> Origin:
    return Origin(system=SYSTEM, external_id=str(row_id))


# ---- lookups ----------------------------------------------------------------------


def _reverse(mapping: Mapping[str, int], value: int | None, what: str) -> str:
    for key, mapped in mapping.items():
        if mapped == value:
            return key
    raise MappingError(what, f"no {what} is mapped to Kentico id {value}")


def status_to_id(status: OrderStatus, lookups: KenticoLookups) -> int:
    try:
        return lookups.order_status_ids[status.value]
    except KeyError:
        raise MappingError("status", f"no Kentico order status for {status.value!r}") from None


def status_from_id(status_id: int | None, lookups: KenticoLookups) -> OrderStatus:
    return OrderStatus(_reverse(lookups.order_status_ids, status_id, "status"))


def currency_to_id(currency: str, lookups: KenticoLookups) -> int:
    try:
        return lookups.currency_ids[currency]
    except KeyError:
        raise MappingError("currency", f"no Kentico currency for {currency!r}") from None


def currency_from_id(currency_id: int | None, lookups: KenticoLookups) -> str:
    return _reverse(lookups.currency_ids, currency_id, "currency")


def option_to_id(name: str, ids: Mapping[str, int], what: str) -> int | None:
    if not name:
        return None
    try:
        return ids[name]
    except KeyError:
        raise MappingError(what, f"no Kentico {what} option for {name!r}") from None


def option_from_id(option_id: int | None, ids: Mapping[str, int], what: str) -> str:
    if option_id is None:
        return ""
    return _reverse(ids, option_id, what)


# ---- countries and states ---------------------------------------------------------


@dataclass(frozen=True)
class GeoTables:
    """`cms.country` and `cms.state` as the connector needs them."""

    countries: dict[int, str]  # CountryID -> ISO alpha-2
    states: dict[int, tuple[int, str, str]] = field(
        default_factory=dict
    )  # id -> (country, code, name)

    @classmethod
    def from_rows(cls, countries: Iterable[Row], states: Iterable[Row] = ()) -> GeoTables:
        return cls(
            countries={
                int(row["CountryID"]): str(row["CountryTwoLetterCode"]).upper()
                for row in countries
                if row.get("CountryTwoLetterCode")
            },
            states={
                int(row["StateID"]): (
                    int(row["StateCountryID"]),
                    _text(row.get("StateCode")),
                    _text(row.get("StateDisplayName")),
                )
                for row in states
            },
        )

    def country_id(self, alpha2: str) -> int:
        wanted = alpha2.upper()
        for country_id, code in self.countries.items():
            if code == wanted:
                return country_id
        raise MappingError("country", f"Kentico has no country {alpha2!r}")

    def country_code(self, country_id: Any) -> str:
        try:
            return self.countries[int(country_id)]
        except (KeyError, TypeError, ValueError):
            raise MappingError("country", f"unknown Kentico country id {country_id!r}") from None

    def state_id(self, country_id: int, region: str) -> int | None:
        wanted = region.strip().casefold()
        if not wanted:
            return None
        for state_id, (state_country, code, name) in self.states.items():
            if state_country == country_id and wanted in (code.casefold(), name.casefold()):
                return state_id
        return None

    def state_code(self, state_id: Any) -> str:
        if state_id is None:
            return ""
        state = self.states.get(int(state_id))
        return state[1] if state else ""


# ---- addresses --------------------------------------------------------------------


def address_from_native(row: Row, geo: GeoTables) -> Address:
    """A COM_Address or COM_OrderAddress row."""
    return Address(
        name=_text(row.get("AddressPersonalName")),
        line1=_text(row.get("AddressLine1")),
        line2=_text(row.get("AddressLine2")),
        city=_text(row.get("AddressCity")),
        region=geo.state_code(row.get("AddressStateID")),
        postal_code=_text(row.get("AddressZip")),
        country=geo.country_code(row.get("AddressCountryID")),
        phone=_text(row.get("AddressPhone")),
    )


def address_to_native(address: Address, geo: GeoTables) -> dict[str, Any]:
    """The columns COM_Address and COM_OrderAddress share (no ids, types or flags)."""
    country_id = geo.country_id(address.country)
    return {
        "AddressPersonalName": address.name,
        "AddressLine1": address.line1,
        "AddressLine2": address.line2,
        "AddressCity": address.city,
        "AddressZip": address.postal_code,
        "AddressPhone": address.phone,
        "AddressCountryID": country_id,
        "AddressStateID": geo.state_id(country_id, address.region),
    }


def address_label(address: Address) -> str:
    """`AddressName`, the label Kentico shows for a customer address."""
    return ", ".join(part for part in (address.name, address.line1, address.city) if part)


# ---- customers --------------------------------------------------------------------


def _flagged(addresses: Iterable[Row], flag: str) -> Row | None:
    for row in sorted(addresses, key=lambda r: int(r.get("AddressID") or 0)):
        if row.get(flag):
            return row
    return None


def customer_from_native(row: Row, addresses: Iterable[Row], geo: GeoTables) -> Customer:
    """A COM_Customer row and its COM_Address rows."""
    rows = list(addresses)
    billing = _flagged(rows, "AddressIsBilling")
    shipping = _flagged(rows, "AddressIsShipping")
    return Customer(
        origin=_origin(row["CustomerID"]),
        email=_text(row.get("CustomerEmail")),
        first_name=_text(row.get("CustomerFirstName")),
        last_name=_text(row.get("CustomerLastName")),
        phone=_text(row.get("CustomerPhone")),
        company=_text(row.get("CustomerCompany")),
        billing_address=address_from_native(billing, geo) if billing else None,
        shipping_address=address_from_native(shipping, geo) if shipping else None,
        active=row.get("CustomerEnabled") is not False,
        created_at=parse_datetime(row.get("CustomerCreated")),
        updated_at=parse_datetime(row.get("CustomerLastModified")),
    )


def customer_to_native(customer: Customer) -> dict[str, Any]:
    """COM_Customer columns (addresses: `customer_addresses_to_native`)."""
    return {
        "CustomerFirstName": customer.first_name,
        "CustomerLastName": customer.last_name,
        "CustomerEmail": customer.email,
        "CustomerPhone": customer.phone,
        "CustomerCompany": customer.company,
        "CustomerEnabled": customer.active,
    }


def customer_addresses_to_native(customer: Customer, geo: GeoTables) -> list[dict[str, Any]]:
    """COM_Address rows (without `AddressCustomerID`) for the customer's addresses.

    The same address for billing and shipping is one row with both flags.
    """
    billing, shipping = customer.billing_address, customer.shipping_address
    out: list[dict[str, Any]] = []
    if billing is not None and billing == shipping:
        targets = [(billing, True, True)]
    else:
        targets = [(a, a is billing, a is shipping) for a in (billing, shipping) if a is not None]
    for address, is_billing, is_shipping in targets:
        out.append(
            {
                **address_to_native(address, geo),
                "AddressName": address_label(address),
                "AddressIsBilling": is_billing,
                "AddressIsShipping": is_shipping,
            }
        )
    return out


# ---- orders -----------------------------------------------------------------------


def split_tracking(text: Any) -> list[str]:
    return [part.strip() for part in _text(text).replace(";", ",").split(",") if part.strip()]


def join_tracking(numbers: Iterable[str]) -> str:
    return ", ".join(number.strip() for number in numbers if number.strip())


def order_from_native(
    order: Row,
    items: Iterable[Row],
    addresses: Iterable[Row],
    customer: Row,
    sku_numbers: Mapping[int, str],
    lookups: KenticoLookups,
    geo: GeoTables,
) -> Order:
    """A COM_Order row with its COM_OrderItem and COM_OrderAddress rows and its customer.

    `sku_numbers` maps `OrderItemSKUID` -> `SKUNumber`. The customer is the COM_Customer
    row with the order's own billing and shipping addresses, the addresses as placed (as
    X-Cart's order carries its own copy of the profile): the customer's address book
    (COM_Address) is not read for an order. The ERP customer an order run creates gets
    these addresses.
    """
    order_id = order["OrderID"]
    currency = currency_from_id(order.get("OrderCurrencyID"), lookups)
    custom = parse_custom_data(order.get("OrderCustomData"))
    address_rows = sorted(addresses, key=lambda r: int(r.get("AddressID") or 0))
    by_type: dict[int, Row] = {}
    for row in address_rows:
        by_type.setdefault(int(row.get("AddressType") or 0), row)
    shipping_row = by_type.get(ADDRESS_TYPE_SHIPPING) or by_type.get(ADDRESS_TYPE_BILLING)
    billing_row = by_type.get(ADDRESS_TYPE_BILLING) or shipping_row
    if billing_row is None or shipping_row is None:
        raise MappingError("shipping_address", f"Kentico order {order_id} has no address")
    billing_address = address_from_native(billing_row, geo)
    shipping_address = address_from_native(shipping_row, geo)
    lines = []
    for item in sorted(items, key=lambda r: int(r["OrderItemID"])):
        sku_id = item.get("OrderItemSKUID")
        if sku_id is None or int(sku_id) not in sku_numbers:
            raise MappingError("lines", f"order item {item['OrderItemID']} has no SKU number")
        item_custom = parse_custom_data(item.get("OrderItemCustomData"))
        lines.append(
            OrderLine(
                sku=sku_numbers[int(sku_id)],
                name=_text(item.get("OrderItemSKUName")),
                quantity=int(item.get("OrderItemUnitCount") or 0),
                unit_price=_decimal(item.get("OrderItemUnitPrice")),
                tax=_decimal(item_custom.get("TaxAmount")),
                tax_code=item_custom.get("TaxCode", ""),
                external_line_id=str(item["OrderItemID"]),
            )
        )
    total = _decimal(order.get("OrderGrandTotal"))
    payment = None
    if order.get("OrderIsPaid"):
        result = parse_payment_result(order.get("OrderPaymentResult"))
        method = option_from_id(
            order.get("OrderPaymentOptionID"), lookups.payment_option_ids, "payment"
        )
        payment = Payment(
            origin=_origin(order_id),
            method=method or result.get("method", ""),
            reference=result.get("transactionid", ""),
            amount=total,
            currency=currency,
            paid_at=parse_datetime(result.get("date")),
            order_ref=str(order_id),
        )
    placed_at = parse_datetime(order.get("OrderDate"))
    if placed_at is None:
        raise MappingError("placed_at", f"Kentico order {order_id} has no OrderDate")
    return Order(
        origin=_origin(order_id),
        number=str(order_id),
        status=status_from_id(order.get("OrderStatusID"), lookups),
        placed_at=placed_at,
        updated_at=parse_datetime(order.get("OrderLastModified")),
        currency=currency,
        customer=customer_from_native(customer, [], geo).model_copy(
            update={"billing_address": billing_address, "shipping_address": shipping_address}
        ),
        billing_address=billing_address,
        shipping_address=shipping_address,
        lines=lines,
        shipping_method=option_from_id(
            order.get("OrderShippingOptionID"), lookups.shipping_option_ids, "shipping"
        ),
        shipping_total=_decimal(order.get("OrderTotalShipping")),
        tax_total=_decimal(order.get("OrderTotalTax")),
        discount_total=_decimal(custom.get("DiscountTotal")),
        total=total,
        payment=payment,
        tracking_numbers=split_tracking(order.get("OrderTrackingNumber")),
        erp_ref=custom.get("ErpOrderNumber", ""),
        store_notes=str(order.get("OrderCustomData") or ""),
    )


@dataclass
class NativeOrder:
    """The rows one canonical order becomes (ids as in `Order.origin`)."""

    order: dict[str, Any]
    items: list[dict[str, Any]]
    addresses: list[dict[str, Any]]


def order_to_native(
    order: Order, sku_ids: Mapping[str, int], lookups: KenticoLookups, geo: GeoTables
) -> NativeOrder:
    """The COM_Order, COM_OrderItem and COM_OrderAddress rows for `order`.

    `order.origin.external_id` is the OrderID and the customer's origin its CustomerID;
    `sku_ids` maps SKU numbers to SKUIDs.
    """
    order_id = int(order.origin.external_id)
    customer_id = int(order.customer.origin.external_id) if order.customer.origin else None
    custom: dict[str, str] = {"ErpOrderNumber": order.erp_ref}
    if order.discount_total:
        custom["DiscountTotal"] = str(order.discount_total)
    payment = order.payment
    payment_result = None
    if payment is not None:
        payment_result = dump_payment_result(
            {
                "date": format_datetime(payment.paid_at) if payment.paid_at else "",
                "method": payment.method,
                "transactionid": payment.reference,
                "completed": "1",
            }
        )
    row = {
        "OrderID": order_id,
        "OrderInvoiceNumber": order.number,
        "OrderDate": format_datetime(order.placed_at),
        "OrderLastModified": format_datetime(order.updated_at) if order.updated_at else None,
        "OrderStatusID": status_to_id(order.status, lookups),
        "OrderCustomerID": customer_id,
        "OrderCurrencyID": currency_to_id(order.currency, lookups),
        "OrderShippingOptionID": option_to_id(
            order.shipping_method, lookups.shipping_option_ids, "shipping"
        ),
        "OrderPaymentOptionID": option_to_id(
            payment.method if payment else "", lookups.payment_option_ids, "payment"
        ),
        "OrderTotalPrice": order.total,
        "OrderGrandTotal": order.total,
        "OrderTotalShipping": order.shipping_total,
        "OrderTotalTax": order.tax_total,
        "OrderIsPaid": payment is not None,
        "OrderPaymentResult": payment_result,
        "OrderTrackingNumber": join_tracking(order.tracking_numbers),
        "OrderCustomData": dump_custom_data(custom),
    }
    items = []
    for n, line in enumerate(order.lines, start=1):
        try:
            sku_id = sku_ids[line.sku]
        except KeyError:
            raise MappingError("lines", f"Kentico has no SKU {line.sku!r}") from None
        line_custom = {"TaxCode": line.tax_code}
        if line.tax:
            line_custom["TaxAmount"] = str(line.tax)
        items.append(
            {
                "OrderItemID": int(line.external_line_id) if line.external_line_id.isdigit() else n,
                "OrderItemOrderID": order_id,
                "OrderItemSKUID": sku_id,
                "OrderItemSKUName": line.name,
                "OrderItemUnitCount": line.quantity,
                "OrderItemUnitPrice": line.unit_price,
                "OrderItemTotalPrice": line.net,
                "OrderItemCustomData": dump_custom_data(line_custom),
            }
        )
    addresses = [
        {**address_to_native(address, geo), "AddressOrderID": order_id, "AddressType": kind}
        for kind, address in (
            (ADDRESS_TYPE_BILLING, order.billing_address),
            (ADDRESS_TYPE_SHIPPING, order.shipping_address),
        )
    ]
    return NativeOrder(order=row, items=items, addresses=addresses)


# ---- products and stock -----------------------------------------------------------


def product_from_native(row: Row, lookups: KenticoLookups) -> Product:
    return Product(
        origin=_origin(row["SKUID"]),
        sku=_text(row.get("SKUNumber")),
        name=_text(row.get("SKUName")),
        description=_text(row.get("SKUDescription")),
        price=_decimal(row.get("SKUPrice")),
        currency=lookups.main_currency,
        enabled=row.get("SKUEnabled") is not False,
        updated_at=parse_datetime(row.get("SKULastModified")),
    )


def product_to_native(product: Product, lookups: KenticoLookups) -> dict[str, Any]:
    if product.currency != lookups.main_currency:
        raise MappingError(
            "currency",
            f"Kentico prices are in {lookups.main_currency}, not {product.currency}",
        )
    return {
        "SKUNumber": product.sku,
        "SKUName": product.name,
        "SKUDescription": product.description,
        "SKUPrice": product.price,
        "SKUEnabled": product.enabled,
    }


def stock_from_native(row: Row) -> StockLevel:
    quantity = int(row.get("SKUAvailableItems") or 0)
    return StockLevel(
        sku=_text(row.get("SKUNumber")),
        on_hand=quantity,
        available=quantity,
        as_of=parse_datetime(row.get("SKULastModified")),
    )


# ---- returns (project-defined custom table) ---------------------------------------


def return_from_native(row: Row) -> ReturnRequest:
    try:
        raw_lines = json.loads(_text(row.get("ReturnLines")) or "[]")
        lines = [
            ReturnLine(
                sku=str(line["sku"]),
                quantity=int(line["quantity"]),
                reason=str(line.get("reason") or ""),
            )
            for line in raw_lines
        ]
    except (ValueError, KeyError, TypeError):
        raise MappingError("lines", f"return {row.get('ItemID')} has unreadable lines") from None
    return ReturnRequest(
        origin=_origin(row["ItemID"]),
        order_number=str(row.get("ReturnOrderID") or ""),
        lines=lines,
        reason=_text(row.get("ReturnReason")),
        requested_at=parse_datetime(row.get("ItemCreatedWhen")),
    )


def return_to_native(request: ReturnRequest) -> dict[str, Any]:
    return {
        "ReturnOrderID": int(request.order_number),
        "ReturnLines": json.dumps(
            [{"sku": x.sku, "quantity": x.quantity, "reason": x.reason} for x in request.lines]
        ),
        "ReturnReason": request.reason,
        "ItemCreatedWhen": format_datetime(request.requested_at) if request.requested_at else None,
    }
