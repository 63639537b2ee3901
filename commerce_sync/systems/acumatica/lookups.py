"""Per-pair Acumatica lookups, the `[pairs.<id>.acumatica]` table of pairs.toml."""

from pydantic import BaseModel, ConfigDict


class AcumaticaLookups(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_type: str = "SO"
    # Return order type codes depend on the customer's configuration (RC, CR, RM, ...).
    return_order_type: str = "RC"
    warehouse_id: str = "WHOLESALE"
    customer_class: str = "DEFAULT"
    payment_method: str = "CC"
    cash_account: str = "10250"
    tax_category: str = "TAXABLE"
    # store payment method -> Acumatica PaymentMethodID (unlisted methods use payment_method)
    payment_methods: dict[str, str] = {"card": "CC", "paypal": "PAYPAL", "cash": "CASH"}
    # Acumatica ShipVia code -> carrier name as the store knows it (tracking links)
    carriers: dict[str, str] = {
        "UPSGROUND": "ups",
        "UPS2DAY": "ups",
        "FEDEX2DAY": "fedex",
        "FEDEXGROUND": "fedex",
        "USPSPRIORITY": "usps",
        "PICKUP": "",
    }
    # our shipping method name -> Acumatica ShipVia code
    ship_via: dict[str, str] = {"ground": "UPSGROUND", "express": "FEDEX2DAY", "pickup": "PICKUP"}
    # canonical OrderStatus value -> Acumatica SalesOrder Status
    order_statuses: dict[str, str] = {
        "pending": "Open",
        "on_hold": "On Hold",
        "processing": "Open",
        "shipped": "Completed",
        "delivered": "Completed",
        "cancelled": "Canceled",
        "rejected": "Canceled",
        "returned": "Completed",
        "refunded": "Completed",
    }
