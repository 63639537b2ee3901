"""Per-pair Brightpearl lookups, the `[pairs.<id>.brightpearl]` table of pairs.toml."""

from pydantic import BaseModel, ConfigDict


class BrightpearlLookups(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel_id: int = 1
    warehouse_id: int = 2
    location_id: int = 2
    price_list_id: int = 2
    nominal_code: str = "4000"
    payment_method_code: str = "1000"
    # canonical OrderStatus value -> Brightpearl orderStatusId
    order_status_ids: dict[str, int] = {
        "pending": 1,
        "on_hold": 2,
        "processing": 3,
        "shipped": 4,
        "delivered": 4,
        "cancelled": 5,
        "rejected": 5,
        "returned": 6,
        "refunded": 6,
    }
    # our shipping method name -> Brightpearl shippingMethodId
    shipping_method_ids: dict[str, int] = {"ground": 5, "express": 6, "pickup": 7}
    # our tax class -> Brightpearl tax code
    tax_codes: dict[str, str] = {"standard": "T20", "zero": "T0"}
    default_tax_code: str = "T20"
