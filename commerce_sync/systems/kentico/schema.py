"""The Kentico object types the connector and the sandbox use, with their columns.

Column names follow Kentico 12/13 (`docs/systems/kentico.md` §5); a few are from Kentico 8 and kept
because the sync needs them (`CustomerEnabled`, `AddressIsBilling`, `AddressIsShipping`).

Project-defined parts, not Kentico's:

- Return requests: Kentico has no return object. The store keeps them in a custom table,
  class `CommerceSync.ReturnRequest`, served by the REST service like any custom table item
  as object type `customtableitem.commercesync.returnrequest` (columns `ItemID`,
  `ReturnOrderID`, `ReturnLines` (JSON text `[{"sku", "quantity", "reason"}]`),
  `ReturnReason`, `ReturnStatus`, `ReturnNote`, `ItemCreatedWhen`, `ItemModifiedWhen`).
- `OrderCustomData` holds Kentico's custom-data XML (`<CustomData><Key>value</Key>...`);
  commerce-sync writes `ErpOrderNumber`, `StatusNote`, `Carrier` and `DiscountTotal` there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Column type names: how the sandbox reads and compares each object type's columns.
INT, DECIMAL, TEXT, BOOL, DATETIME, GUID = "int", "decimal", "text", "bool", "datetime", "guid"

ORDER = "ecommerce.order"
ORDER_ITEM = "ecommerce.orderitem"
ORDER_ADDRESS = "ecommerce.orderaddress"
ORDER_STATUS = "ecommerce.orderstatus"
CUSTOMER = "ecommerce.customer"
ADDRESS = "ecommerce.address"
SKU = "ecommerce.sku"
CURRENCY = "ecommerce.currency"
SHIPPING_OPTION = "ecommerce.shippingoption"
PAYMENT_OPTION = "ecommerce.paymentoption"
COUNTRY = "cms.country"
STATE = "cms.state"
RETURN_REQUEST = "customtableitem.commercesync.returnrequest"

# COM_OrderAddress.AddressType
ADDRESS_TYPE_BILLING = 1
ADDRESS_TYPE_SHIPPING = 2


@dataclass(frozen=True)
class Table:
    object_type: str
    class_name: str
    id_field: str
    columns: dict[str, str]
    site_field: str | None = None
    guid_field: str | None = None
    created_field: str | None = None
    modified_field: str | None = None
    # column -> object type it refers to (the sandbox refuses a key to no row, as the
    # database's FK constraint would)
    foreign_keys: dict[str, str] = field(default_factory=dict)
    # columns the connector will not create an object without (`writes.py`); Kentico
    # itself checks none of them (the REST service validates nothing)
    required: tuple[str, ...] = ()

    @property
    def list_key(self) -> str:
        """The JSON list wrapper: `ecommerce.order` -> `ecommerce_orders`, `cms.country` -> `cms_countries`."""
        base = self.object_type.replace(".", "_")
        if base.endswith(("s", "x")):
            return base + "es"
        if base.endswith("y") and base[-2:-1] not in ("a", "e", "i", "o", "u"):
            return base[:-1] + "ies"
        return base + "s"


TABLES: dict[str, Table] = {
    t.object_type: t
    for t in (
        Table(
            ORDER,
            "COM_Order",
            "OrderID",
            {
                "OrderID": INT,
                "OrderGUID": GUID,
                "OrderSiteID": INT,
                "OrderDate": DATETIME,
                "OrderStatusID": INT,
                "OrderCustomerID": INT,
                "OrderInvoiceNumber": TEXT,
                "OrderCurrencyID": INT,
                "OrderShippingOptionID": INT,
                "OrderPaymentOptionID": INT,
                "OrderTotalPrice": DECIMAL,
                "OrderTotalPriceInMainCurrency": DECIMAL,
                "OrderGrandTotal": DECIMAL,
                "OrderGrandTotalInMainCurrency": DECIMAL,
                "OrderTotalShipping": DECIMAL,
                "OrderTotalTax": DECIMAL,
                "OrderIsPaid": BOOL,
                "OrderPaymentResult": TEXT,
                "OrderTrackingNumber": TEXT,
                "OrderNote": TEXT,
                "OrderCustomData": TEXT,
                "OrderCreatedByUserID": INT,
                "OrderLastModified": DATETIME,
            },
            site_field="OrderSiteID",
            guid_field="OrderGUID",
            modified_field="OrderLastModified",
            foreign_keys={
                "OrderStatusID": ORDER_STATUS,
                "OrderCustomerID": CUSTOMER,
                "OrderCurrencyID": CURRENCY,
                "OrderShippingOptionID": SHIPPING_OPTION,
                "OrderPaymentOptionID": PAYMENT_OPTION,
            },
            required=("OrderCustomerID", "OrderCurrencyID"),
        ),
        Table(
            ORDER_ITEM,
            "COM_OrderItem",
            "OrderItemID",
            {
                "OrderItemID": INT,
                "OrderItemGUID": GUID,
                "OrderItemOrderID": INT,
                "OrderItemSKUID": INT,
                "OrderItemSKUName": TEXT,
                "OrderItemUnitCount": INT,
                "OrderItemUnitPrice": DECIMAL,
                "OrderItemTotalPrice": DECIMAL,
                "OrderItemTotalPriceInMainCurrency": DECIMAL,
                "OrderItemCustomData": TEXT,
                "OrderItemLastModified": DATETIME,
            },
            guid_field="OrderItemGUID",
            modified_field="OrderItemLastModified",
            foreign_keys={"OrderItemOrderID": ORDER, "OrderItemSKUID": SKU},
            required=("OrderItemOrderID", "OrderItemSKUID", "OrderItemUnitCount"),
        ),
        Table(
            ORDER_ADDRESS,
            "COM_OrderAddress",
            "AddressID",
            {
                "AddressID": INT,
                "AddressGUID": GUID,
                "AddressOrderID": INT,
                "AddressType": INT,
                "AddressPersonalName": TEXT,
                "AddressLine1": TEXT,
                "AddressLine2": TEXT,
                "AddressCity": TEXT,
                "AddressZip": TEXT,
                "AddressPhone": TEXT,
                "AddressCountryID": INT,
                "AddressStateID": INT,
                "AddressLastModified": DATETIME,
            },
            guid_field="AddressGUID",
            modified_field="AddressLastModified",
            foreign_keys={
                "AddressOrderID": ORDER,
                "AddressCountryID": COUNTRY,
                "AddressStateID": STATE,
            },
            required=("AddressOrderID", "AddressType", "AddressLine1", "AddressCountryID"),
        ),
        Table(
            ORDER_STATUS,
            "COM_OrderStatus",
            "StatusID",
            {
                "StatusID": INT,
                "StatusGUID": GUID,
                "StatusName": TEXT,
                "StatusDisplayName": TEXT,
                "StatusOrder": INT,
                "StatusEnabled": BOOL,
                "StatusOrderIsPaid": BOOL,
                "StatusSiteID": INT,
                "StatusLastModified": DATETIME,
            },
            site_field="StatusSiteID",
            guid_field="StatusGUID",
            modified_field="StatusLastModified",
            required=("StatusName",),
        ),
        Table(
            CUSTOMER,
            "COM_Customer",
            "CustomerID",
            {
                "CustomerID": INT,
                "CustomerGUID": GUID,
                "CustomerFirstName": TEXT,
                "CustomerLastName": TEXT,
                "CustomerEmail": TEXT,
                "CustomerPhone": TEXT,
                "CustomerCompany": TEXT,
                "CustomerUserID": INT,
                "CustomerSiteID": INT,
                "CustomerEnabled": BOOL,
                "CustomerCreated": DATETIME,
                "CustomerLastModified": DATETIME,
            },
            site_field="CustomerSiteID",
            guid_field="CustomerGUID",
            created_field="CustomerCreated",
            modified_field="CustomerLastModified",
        ),
        Table(
            ADDRESS,
            "COM_Address",
            "AddressID",
            {
                "AddressID": INT,
                "AddressGUID": GUID,
                "AddressName": TEXT,
                "AddressCustomerID": INT,
                "AddressPersonalName": TEXT,
                "AddressLine1": TEXT,
                "AddressLine2": TEXT,
                "AddressCity": TEXT,
                "AddressZip": TEXT,
                "AddressPhone": TEXT,
                "AddressCountryID": INT,
                "AddressStateID": INT,
                "AddressIsBilling": BOOL,
                "AddressIsShipping": BOOL,
                "AddressLastModified": DATETIME,
            },
            guid_field="AddressGUID",
            modified_field="AddressLastModified",
            foreign_keys={
                "AddressCustomerID": CUSTOMER,
                "AddressCountryID": COUNTRY,
                "AddressStateID": STATE,
            },
            required=("AddressCustomerID", "AddressLine1", "AddressCountryID"),
        ),
        Table(
            SKU,
            "COM_SKU",
            "SKUID",
            {
                "SKUID": INT,
                "SKUGUID": GUID,
                "SKUNumber": TEXT,
                "SKUName": TEXT,
                "SKUDescription": TEXT,
                "SKUPrice": DECIMAL,
                "SKUEnabled": BOOL,
                "SKUAvailableItems": INT,
                "SKUTrackInventory": TEXT,
                "SKUReorderAt": INT,
                "SKUWeight": DECIMAL,
                "SKUPublicStatusID": INT,
                "SKUSiteID": INT,
                "SKUCreated": DATETIME,
                "SKULastModified": DATETIME,
            },
            site_field="SKUSiteID",
            guid_field="SKUGUID",
            created_field="SKUCreated",
            modified_field="SKULastModified",
            required=("SKUName", "SKUPrice"),
        ),
        Table(
            CURRENCY,
            "COM_Currency",
            "CurrencyID",
            {
                "CurrencyID": INT,
                "CurrencyGUID": GUID,
                "CurrencyName": TEXT,
                "CurrencyDisplayName": TEXT,
                "CurrencyCode": TEXT,
                "CurrencyIsMain": BOOL,
                "CurrencyEnabled": BOOL,
                "CurrencySiteID": INT,
                "CurrencyLastModified": DATETIME,
            },
            site_field="CurrencySiteID",
            guid_field="CurrencyGUID",
            modified_field="CurrencyLastModified",
            required=("CurrencyCode",),
        ),
        Table(
            SHIPPING_OPTION,
            "COM_ShippingOption",
            "ShippingOptionID",
            {
                "ShippingOptionID": INT,
                "ShippingOptionGUID": GUID,
                "ShippingOptionName": TEXT,
                "ShippingOptionDisplayName": TEXT,
                "ShippingOptionEnabled": BOOL,
                "ShippingOptionSiteID": INT,
                "ShippingOptionLastModified": DATETIME,
            },
            site_field="ShippingOptionSiteID",
            guid_field="ShippingOptionGUID",
            modified_field="ShippingOptionLastModified",
            required=("ShippingOptionName",),
        ),
        Table(
            PAYMENT_OPTION,
            "COM_PaymentOption",
            "PaymentOptionID",
            {
                "PaymentOptionID": INT,
                "PaymentOptionGUID": GUID,
                "PaymentOptionName": TEXT,
                "PaymentOptionDisplayName": TEXT,
                "PaymentOptionEnabled": BOOL,
                "PaymentOptionSiteID": INT,
                "PaymentOptionLastModified": DATETIME,
            },
            site_field="PaymentOptionSiteID",
            guid_field="PaymentOptionGUID",
            modified_field="PaymentOptionLastModified",
            required=("PaymentOptionName",),
        ),
        Table(
            COUNTRY,
            "CMS_Country",
            "CountryID",
            {
                "CountryID": INT,
                "CountryGUID": GUID,
                "CountryName": TEXT,
                "CountryDisplayName": TEXT,
                "CountryTwoLetterCode": TEXT,
                "CountryThreeLetterCode": TEXT,
                "CountryLastModified": DATETIME,
            },
            guid_field="CountryGUID",
            modified_field="CountryLastModified",
            required=("CountryName",),
        ),
        Table(
            STATE,
            "CMS_State",
            "StateID",
            {
                "StateID": INT,
                "StateGUID": GUID,
                "StateName": TEXT,
                "StateDisplayName": TEXT,
                "StateCode": TEXT,
                "StateCountryID": INT,
                "StateLastModified": DATETIME,
            },
            guid_field="StateGUID",
            modified_field="StateLastModified",
            foreign_keys={"StateCountryID": COUNTRY},
            required=("StateName", "StateCountryID"),
        ),
        Table(
            RETURN_REQUEST,
            "CommerceSync_ReturnRequest",
            "ItemID",
            {
                "ItemID": INT,
                "ItemGUID": GUID,
                "ItemOrder": INT,
                "ReturnOrderID": INT,
                "ReturnLines": TEXT,
                "ReturnReason": TEXT,
                "ReturnStatus": TEXT,
                "ReturnNote": TEXT,
                "ItemCreatedWhen": DATETIME,
                "ItemModifiedWhen": DATETIME,
            },
            guid_field="ItemGUID",
            created_field="ItemCreatedWhen",
            modified_field="ItemModifiedWhen",
            foreign_keys={"ReturnOrderID": ORDER},
            required=("ReturnOrderID",),
        ),
    )
}
