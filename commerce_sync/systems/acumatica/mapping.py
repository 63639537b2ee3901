"""Acumatica (`Default/24.200.001`) <-> canonical models. Pure functions, no I/O.

Native records here are the *wire* shape: every field wrapped in `{"value": ...}`, as
the API sends and accepts them. Money is `Decimal` both ways (the connector parses JSON
numbers as `Decimal`). Codes that differ per merchant (order types, ship via, payment
methods, cash account, warehouse, statuses) come from `AcumaticaLookups`.

What Acumatica cannot hold and is therefore not round-tripped:
- `Order.placed_at` keeps its date only (`SalesOrder.Date` is a date);
- `OrderLine.tax` (Acumatica taxes per document: the order's tax lands in one
  `TaxDetails` row and `TaxTotal`);
- the order's `customer` beyond e-mail, phone and company (the order references the
  customer by `CustomerID`; `get_customer` reads the rest);
- `Order.origin` (a record read from Acumatica lives in Acumatica: origin
  `acumatica`/`{OrderType}/{OrderNbr}`); the store's id is kept in `ExternalRef`.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    Shipment,
    ShipmentLine,
    StockLevel,
)
from commerce_sync.systems.acumatica.lookups import AcumaticaLookups
from commerce_sync.systems.acumatica.schema import format_datetime, parse_datetime, value_of

SYSTEM = "acumatica"
EXTERNAL_TAX_ID = "EXTERNAL"
ORDER_DISCOUNT_CODE = "WEBDISC"

# Native SalesOrder statuses the per-pair map does not name.
_EXTRA_ORDER_STATUSES: dict[str, OrderStatus] = {
    "Back Order": OrderStatus.PROCESSING,
    "Shipping": OrderStatus.PROCESSING,
    "Credit Hold": OrderStatus.ON_HOLD,
    "Pending Approval": OrderStatus.ON_HOLD,
    "Pending Processing": OrderStatus.PENDING,
    "Awaiting Payment": OrderStatus.PENDING,
    "Invoiced": OrderStatus.SHIPPED,
    "Closed": OrderStatus.SHIPPED,
    "Rejected": OrderStatus.REJECTED,
}


def v(value: Any) -> dict[str, Any]:
    """One wrapped field."""
    if isinstance(value, datetime):
        return {"value": format_datetime(value)}
    return {"value": value}


def _str(record: dict[str, Any] | None, *path: str) -> str:
    value = value_of(record, *path)
    return "" if value is None else str(value)


def _dec(record: dict[str, Any] | None, *path: str) -> Decimal:
    value = value_of(record, *path)
    if value is None or value == "":
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def datetime_value(record: dict[str, Any] | None, *path: str) -> datetime | None:
    value = value_of(record, *path)
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, str) and value:
        return parse_datetime(value).astimezone(UTC)
    return None


def _compact(record: dict[str, Any]) -> dict[str, Any]:
    """Drop wrapped fields whose value is None (Acumatica would clear them)."""
    return {
        key: value
        for key, value in record.items()
        if not (isinstance(value, dict) and "value" in value and value["value"] is None)
    }


def order_ref(order_type: str, order_nbr: str) -> str:
    """The one-string form of a sales order's keys, `SO/000123`."""
    return f"{order_type}/{order_nbr}"


def parse_order_ref(ref: str, default_type: str = "SO") -> tuple[str, str]:
    """`SO/000123` -> ("SO", "000123"); a bare number takes `default_type`."""
    order_type, sep, nbr = ref.partition("/")
    return (order_type, nbr) if sep else (default_type, ref)


# ---- statuses, ship via, payment methods ------------------------------------------------


def status_to_native(status: OrderStatus, lookups: AcumaticaLookups) -> str:
    return lookups.order_statuses.get(status.value, "Open")


def status_from_native(status: str, lookups: AcumaticaLookups) -> OrderStatus:
    for canonical, native in lookups.order_statuses.items():
        if native == status:
            return OrderStatus(canonical)
    return _EXTRA_ORDER_STATUSES.get(status, OrderStatus.PROCESSING)


def ship_via_to_native(method: str, lookups: AcumaticaLookups) -> str:
    if not method:
        return ""
    return lookups.ship_via.get(method, lookups.ship_via.get(method.lower(), method.upper()))


def ship_via_from_native(code: str, lookups: AcumaticaLookups) -> str:
    for method, native in lookups.ship_via.items():
        if native == code:
            return method
    return code.lower()


def carrier_from_ship_via(code: str, lookups: AcumaticaLookups) -> str:
    return lookups.carriers.get(code, code.lower())


def payment_method_to_native(method: str, lookups: AcumaticaLookups) -> str:
    return lookups.payment_methods.get(method, lookups.payment_method)


def payment_method_from_native(code: str, lookups: AcumaticaLookups) -> str:
    for method, native in lookups.payment_methods.items():
        if native == code:
            return method
    return code.lower()


# ---- addresses and contacts -------------------------------------------------------------


def address_to_native(address: Address) -> dict[str, Any]:
    return {
        "AddressLine1": v(address.line1),
        "AddressLine2": v(address.line2),
        "City": v(address.city),
        "State": v(address.region),
        "PostalCode": v(address.postal_code),
        "Country": v(address.country),
    }


def doc_contact_to_native(address: Address, email: str) -> dict[str, Any]:
    return {
        "Attention": v(address.name),
        "BusinessName": v(address.company),
        "Email": v(email),
        "Phone1": v(address.phone),
    }


def address_from_native(
    address: dict[str, Any] | None,
    *,
    name: str = "",
    company: str = "",
    phone: str = "",
) -> Address | None:
    if not address or not _str(address, "AddressLine1"):
        return None
    country = _str(address, "Country")
    return Address(
        name=name,
        company=company,
        line1=_str(address, "AddressLine1"),
        line2=_str(address, "AddressLine2"),
        city=_str(address, "City"),
        region=_str(address, "State"),
        postal_code=_str(address, "PostalCode"),
        country=alpha2(country) if country else "US",
        phone=phone,
    )


def _doc_address(native: dict[str, Any], kind: str) -> Address | None:
    contact = native.get(f"{kind}Contact")
    return address_from_native(
        native.get(f"{kind}Address"),
        name=_str(contact, "Attention"),
        company=_str(contact, "BusinessName"),
        phone=_str(contact, "Phone1"),
    )


# ---- sales orders -----------------------------------------------------------------------


def order_line_to_native(
    line: OrderLine, lookups: AcumaticaLookups, operation: str = ""
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "InventoryID": v(line.sku),
        "OrderQty": v(Decimal(line.quantity)),
        "UnitPrice": v(line.unit_price),
        "ManualPrice": v(True),
        "WarehouseID": v(lookups.warehouse_id),
    }
    if line.name:
        row["LineDescription"] = v(line.name)
    if line.tax_code:
        row["TaxCategory"] = v(line.tax_code)
    if line.external_line_id:
        row["ExternalRef"] = v(line.external_line_id)
    if operation:
        row["Operation"] = v(operation)
    return row


def order_line_from_native(row: dict[str, Any]) -> OrderLine:
    return OrderLine(
        sku=_str(row, "InventoryID"),
        name=_str(row, "LineDescription"),
        quantity=int(_dec(row, "OrderQty")),
        unit_price=_dec(row, "UnitPrice"),
        tax_code=_str(row, "TaxCategory"),
        external_line_id=_str(row, "ExternalRef"),
    )


def order_to_native(order: Order, customer_id: str, lookups: AcumaticaLookups) -> dict[str, Any]:
    """A new `SalesOrder` for PUT (with `If-None-Match: *`)."""
    email = order.customer.email
    native: dict[str, Any] = {
        "OrderType": v(lookups.order_type),
        "CustomerID": v(customer_id),
        "CustomerOrder": v(order.number),
        "ExternalRef": v(f"{order.origin.system}:{order.origin.external_id}"),
        "Date": v(order.placed_at),
        "Description": v(f"{order.origin.system} order {order.number}"),
        "CurrencyID": v(order.currency),
        "Hold": v(order.status == OrderStatus.ON_HOLD),
        "ControlTotal": v(order.total),
        "Details": [order_line_to_native(line, lookups) for line in order.lines],
        "BillToContactOverride": v(True),
        "BillToContact": doc_contact_to_native(order.billing_address, email),
        "BillToAddressOverride": v(True),
        "BillToAddress": address_to_native(order.billing_address),
        "ShipToContactOverride": v(True),
        "ShipToContact": doc_contact_to_native(order.shipping_address, email),
        "ShipToAddressOverride": v(True),
        "ShipToAddress": address_to_native(order.shipping_address),
    }
    if order.shipping_method:
        native["ShipVia"] = v(ship_via_to_native(order.shipping_method, lookups))
    if order.shipping_total:
        native["Totals"] = {"OverrideFreightAmount": v(True), "Freight": v(order.shipping_total)}
    if order.tax_total:
        native["DisableAutomaticTaxCalculation"] = v(True)
        native["TaxDetails"] = [
            {
                "TaxID": v(EXTERNAL_TAX_ID),
                "TaxAmount": v(order.tax_total),
                "TaxableAmount": v(sum((line.net for line in order.lines), Decimal(0))),
            }
        ]
    if order.discount_total:
        native["DiscountDetails"] = [
            {
                "DiscountCode": v(ORDER_DISCOUNT_CODE),
                "ManualDiscount": v(True),
                "DiscountAmount": v(order.discount_total),
                "Description": v("Store discount"),
            }
        ]
    if order.payment is not None:
        native["PaymentMethod"] = v(payment_method_to_native(order.payment.method, lookups))
        native["PaymentRef"] = v(order.payment.reference)
        native["CashAccount"] = v(lookups.cash_account)
    return native


def order_from_native(native: dict[str, Any], lookups: AcumaticaLookups) -> Order:
    order_type, order_nbr = _str(native, "OrderType"), _str(native, "OrderNbr")
    currency = _str(native, "CurrencyID") or "USD"
    bill_contact = native.get("BillToContact")
    billing = _doc_address(native, "BillTo")
    shipping = _doc_address(native, "ShipTo") or billing
    billing = billing or shipping
    if billing is None or shipping is None:
        raise ValueError(
            f"sales order {order_type} {order_nbr} has no address (expand BillToAddress)"
        )
    placed = (
        datetime_value(native, "Date") or datetime_value(native, "CreatedDate") or datetime.now(UTC)
    )
    customer = Customer(
        origin=Origin(system=SYSTEM, external_id=_str(native, "CustomerID")),
        email=_str(bill_contact, "Email"),
        phone=_str(bill_contact, "Phone1"),
        company=_str(bill_contact, "BusinessName"),
    )
    totals = native.get("Totals")
    freight = _dec(totals, "Freight")
    discount = sum(
        (_dec(row, "DiscountAmount") for row in native.get("DiscountDetails", [])), Decimal(0)
    )
    if not discount and totals is not None:
        discount = _dec(totals, "DiscountTotal")
    tax = (
        _dec(native, "TaxTotal")
        if value_of(native, "TaxTotal") is not None
        else sum((_dec(row, "TaxAmount") for row in native.get("TaxDetails", [])), Decimal(0))
    )
    total = (
        _dec(native, "OrderTotal")
        if value_of(native, "OrderTotal") is not None
        else _dec(native, "ControlTotal")
    )
    payment = None
    payments = [row for row in native.get("Payments", []) if _str(row, "DocType") != "Refund"]
    if payments:
        first = payments[0]
        payment = Payment(
            origin=Origin(
                system=SYSTEM, external_id=f"{_str(first, 'DocType')}/{_str(first, 'ReferenceNbr')}"
            ),
            method=payment_method_from_native(_str(first, "PaymentMethod"), lookups),
            reference=_str(first, "PaymentRef"),
            amount=_dec(first, "AppliedToOrder"),
            currency=_str(first, "Currency") or currency,
            paid_at=datetime_value(first, "ApplicationDate"),
            order_ref=order_ref(order_type, order_nbr),
        )
    elif _str(native, "PaymentRef"):
        payment = Payment(
            method=payment_method_from_native(_str(native, "PaymentMethod"), lookups),
            reference=_str(native, "PaymentRef"),
            amount=total,
            currency=currency,
            order_ref=order_ref(order_type, order_nbr),
        )
    return Order(
        origin=Origin(system=SYSTEM, external_id=order_ref(order_type, order_nbr)),
        number=_str(native, "CustomerOrder"),
        status=status_from_native(
            _str(native, "Status") or ("On Hold" if value_of(native, "Hold") else "Open"), lookups
        ),
        placed_at=placed,
        updated_at=datetime_value(native, "LastModified"),
        currency=currency,
        customer=customer,
        billing_address=billing,
        shipping_address=shipping,
        lines=[order_line_from_native(row) for row in native.get("Details", [])],
        shipping_method=ship_via_from_native(_str(native, "ShipVia"), lookups)
        if _str(native, "ShipVia")
        else "",
        shipping_total=freight,
        tax_total=tax,
        discount_total=discount,
        total=total,
        payment=payment,
        erp_ref=order_nbr,
    )


def return_order_to_native(
    parent: dict[str, Any],
    lines: Iterable[tuple[str, int, str]],
    rma_ref: str,
    lookups: AcumaticaLookups,
) -> dict[str, Any]:
    """A return (`RC`) order for `lines` of (sku, quantity, reason) of the parent order.

    Prices come from the parent's lines; each line is a `Receipt`.
    """
    prices = {_str(row, "InventoryID"): _dec(row, "UnitPrice") for row in parent.get("Details", [])}
    details = []
    for sku, quantity, reason in lines:
        if sku not in prices:
            raise ValueError(f"{sku} is not on order {_str(parent, 'OrderNbr')}")
        row = {
            "InventoryID": v(sku),
            "OrderQty": v(Decimal(quantity)),
            "UnitPrice": v(prices[sku]),
            "ManualPrice": v(True),
            "Operation": v("Receipt"),
            "WarehouseID": v(lookups.warehouse_id),
        }
        if reason:
            row["LineDescription"] = v(f"Return: {reason}"[:255])
        details.append(row)
    return {
        "OrderType": v(lookups.return_order_type),
        "CustomerID": v(_str(parent, "CustomerID")),
        "CustomerOrder": v(rma_ref),
        "ExternalRef": v(_str(parent, "ExternalRef")),
        "CurrencyID": v(_str(parent, "CurrencyID") or "USD"),
        "Description": v(
            f"Return {rma_ref} of {_str(parent, 'OrderType')} {_str(parent, 'OrderNbr')}"
        ),
        "Hold": v(False),
        "FinancialSettings": {
            "OriginalOrderType": v(_str(parent, "OrderType")),
            "OriginalOrderNbr": v(_str(parent, "OrderNbr")),
        },
        "Details": details,
    }


# ---- customers --------------------------------------------------------------------------


def _contact_with_address(address: Address, email: str) -> dict[str, Any]:
    return {
        "Attention": v(address.name),
        "CompanyName": v(address.company),
        "Phone1": v(address.phone),
        "Email": v(email),
        "Address": address_to_native(address),
    }


def customer_to_native(
    customer: Customer, lookups: AcumaticaLookups, customer_id: str = ""
) -> dict[str, Any]:
    name = customer.company or " ".join(p for p in (customer.first_name, customer.last_name) if p)
    main: dict[str, Any] = {
        "FirstName": v(customer.first_name),
        "LastName": v(customer.last_name),
        "Email": v(customer.email),
        "Phone1": v(customer.phone),
        "CompanyName": v(customer.company),
    }
    if customer.billing_address is not None:
        main["Address"] = address_to_native(customer.billing_address)
    native: dict[str, Any] = {
        "CustomerName": v(name or customer.email),
        "CustomerClass": v(lookups.customer_class),
        "Status": v("Active" if customer.active else "Inactive"),
        "MainContact": main,
    }
    if customer_id:
        native["CustomerID"] = v(customer_id)
    for kind, address in (
        ("Billing", customer.billing_address),
        ("Shipping", customer.shipping_address),
    ):
        native[f"{kind}ContactOverride"] = v(address is not None)
        native[f"{kind}AddressOverride"] = v(address is not None)
        if address is not None:
            native[f"{kind}Contact"] = _contact_with_address(address, customer.email)
    return native


def _contact_address(contact: dict[str, Any] | None) -> Address | None:
    if not contact:
        return None
    return address_from_native(
        contact.get("Address"),
        name=_str(contact, "Attention"),
        company=_str(contact, "CompanyName"),
        phone=_str(contact, "Phone1"),
    )


def customer_from_native(native: dict[str, Any]) -> Customer:
    main = native.get("MainContact") or {}
    billing = shipping = None
    if value_of(native, "BillingContactOverride") or value_of(native, "BillingAddressOverride"):
        billing = _contact_address(native.get("BillingContact"))
    elif main.get("Address"):
        billing = address_from_native(main.get("Address"))
    if value_of(native, "ShippingContactOverride") or value_of(native, "ShippingAddressOverride"):
        shipping = _contact_address(native.get("ShippingContact"))
    return Customer(
        origin=Origin(system=SYSTEM, external_id=_str(native, "CustomerID")),
        email=_str(main, "Email") or _str(native, "Email"),
        first_name=_str(main, "FirstName"),
        last_name=_str(main, "LastName"),
        phone=_str(main, "Phone1"),
        company=_str(main, "CompanyName"),
        billing_address=billing,
        shipping_address=shipping,
        active=_str(native, "Status") in ("Active", "One-Time", ""),
        created_at=datetime_value(native, "CreatedDateTime"),
        updated_at=datetime_value(native, "LastModifiedDateTime"),
    )


# ---- payments ---------------------------------------------------------------------------


def payment_to_native(
    payment: Payment,
    customer_id: str,
    lookups: AcumaticaLookups,
    *,
    order_type: str = "",
    order_nbr: str = "",
) -> dict[str, Any]:
    native: dict[str, Any] = {
        "Type": v("Refund" if payment.kind == PaymentKind.REFUND else "Payment"),
        "CustomerID": v(customer_id),
        "PaymentMethod": v(payment_method_to_native(payment.method, lookups)),
        "CashAccount": v(lookups.cash_account),
        "PaymentRef": v(payment.reference),
        "PaymentAmount": v(payment.amount),
        "CurrencyID": v(payment.currency),
        "Hold": v(False),
        "Description": v(f"Payment {payment.reference}"[:255]),
    }
    if payment.order_ref:
        native["ExternalRef"] = v(payment.order_ref[:40])
    if payment.paid_at is not None:
        native["ApplicationDate"] = v(payment.paid_at)
    if order_type and order_nbr:
        native["OrdersToApply"] = [
            {
                "OrderType": v(order_type),
                "OrderNbr": v(order_nbr),
                "AppliedToOrder": v(payment.amount),
            }
        ]
    return native


def payment_from_native(native: dict[str, Any], lookups: AcumaticaLookups) -> Payment:
    applied = native.get("OrdersToApply") or []
    ref = (
        order_ref(_str(applied[0], "OrderType"), _str(applied[0], "OrderNbr"))
        if applied
        else _str(native, "ExternalRef")
    )
    return Payment(
        origin=Origin(
            system=SYSTEM, external_id=f"{_str(native, 'Type')}/{_str(native, 'ReferenceNbr')}"
        ),
        kind=PaymentKind.REFUND if _str(native, "Type") == "Refund" else PaymentKind.RECEIPT,
        method=payment_method_from_native(_str(native, "PaymentMethod"), lookups),
        reference=_str(native, "PaymentRef"),
        amount=_dec(native, "PaymentAmount"),
        currency=_str(native, "CurrencyID") or "USD",
        paid_at=datetime_value(native, "ApplicationDate"),
        order_ref=ref,
    )


# ---- products, stock, shipments ---------------------------------------------------------


def product_from_native(native: dict[str, Any], currency: str = "USD") -> Product:
    return Product(
        origin=Origin(system=SYSTEM, external_id=_str(native, "InventoryID")),
        sku=_str(native, "InventoryID"),
        name=_str(native, "Description"),
        description=_str(native, "Content"),
        price=_dec(native, "DefaultPrice"),
        currency=currency,
        enabled=_str(native, "ItemStatus") in ("Active", "No Purchases", "No Request", ""),
        updated_at=datetime_value(native, "LastModifiedDateTime")
        or datetime_value(native, "LastModified"),
    )


def product_to_native(product: Product) -> dict[str, Any]:
    return {
        "InventoryID": v(product.sku),
        "Description": v(product.name),
        "Content": v(product.description),
        "DefaultPrice": v(product.price),
        "ItemStatus": v("Active" if product.enabled else "Inactive"),
    }


def stock_levels_from_summary(sku: str, rows: Iterable[dict[str, Any]]) -> list[StockLevel]:
    """`InventorySummaryInquiry.Results` rows -> one level per warehouse (locations summed)."""
    per_warehouse: dict[str, tuple[Decimal, Decimal]] = {}
    for row in rows:
        warehouse = _str(row, "WarehouseID")
        on_hand, available = per_warehouse.get(warehouse, (Decimal(0), Decimal(0)))
        per_warehouse[warehouse] = (
            on_hand + _dec(row, "QtyOnHand"),
            available + _dec(row, "QtyAvailable"),
        )
    return [
        StockLevel(sku=sku, on_hand=int(on_hand), available=int(available), warehouse=warehouse)
        for warehouse, (on_hand, available) in sorted(per_warehouse.items())
    ]


def shipment_from_native(
    native: dict[str, Any], lookups: AcumaticaLookups, order: tuple[str, str] | None = None
) -> Shipment:
    orders = native.get("Orders") or []
    if order is None and orders:
        order = (_str(orders[0], "OrderType"), _str(orders[0], "OrderNbr"))
    lines = [
        ShipmentLine(sku=_str(row, "InventoryID"), quantity=int(_dec(row, "ShippedQty")))
        for row in native.get("Details", [])
        if order is None or (_str(row, "OrderType"), _str(row, "OrderNbr")) == order
    ]
    return Shipment(
        origin=Origin(system=SYSTEM, external_id=_str(native, "ShipmentNbr")),
        order_ref=order_ref(*order) if order else "",
        tracking_numbers=[
            _str(package, "TrackingNbr")
            for package in native.get("Packages", [])
            if _str(package, "TrackingNbr")
        ],
        carrier=carrier_from_ship_via(_str(native, "ShipVia"), lookups)
        if _str(native, "ShipVia")
        else "",
        shipped_at=datetime_value(native, "ShipmentDate"),
        lines=lines,
    )


def shipment_to_native(
    shipment: Shipment, lookups: AcumaticaLookups, carrier_ship_via: str = ""
) -> dict[str, Any]:
    """A Shipment body carrying packages with tracking numbers (for tests and manual entry)."""
    order_type, order_nbr = parse_order_ref(shipment.order_ref, lookups.order_type)
    native: dict[str, Any] = {
        "ShipmentNbr": v(shipment.origin.external_id),
        "Orders": [{"OrderType": v(order_type), "OrderNbr": v(order_nbr)}],
        "Details": [
            {
                "OrderType": v(order_type),
                "OrderNbr": v(order_nbr),
                "InventoryID": v(line.sku),
                "ShippedQty": v(Decimal(line.quantity)),
            }
            for line in shipment.lines
        ],
        "Packages": [
            {"LineNbr": v(number), "TrackingNbr": v(tracking)}
            for number, tracking in enumerate(shipment.tracking_numbers, start=1)
        ],
    }
    ship_via = carrier_ship_via or next(
        (code for code, carrier in lookups.carriers.items() if carrier == shipment.carrier), ""
    )
    if ship_via:
        native["ShipVia"] = v(ship_via)
    if shipment.shipped_at is not None:
        native["ShipmentDate"] = v(shipment.shipped_at)
    return native


__all__ = [
    "SYSTEM",
    "address_from_native",
    "address_to_native",
    "customer_from_native",
    "customer_to_native",
    "order_from_native",
    "order_ref",
    "order_to_native",
    "parse_order_ref",
    "payment_from_native",
    "payment_to_native",
    "product_from_native",
    "product_to_native",
    "return_order_to_native",
    "shipment_from_native",
    "shipment_to_native",
    "status_from_native",
    "status_to_native",
    "stock_levels_from_summary",
]
