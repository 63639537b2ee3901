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
