"""Per-pair Brightpearl lookups, the `[pairs.<id>.brightpearl]` table of pairs.toml."""

from pydantic import BaseModel, ConfigDict


class BrightpearlLookups(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel_id: int = 1
    warehouse_id: int = 2
    location_id: int = 2
    price_list_id: int = 2
    # price list holding cost prices (stock corrections that add stock need a cost)
    cost_price_list_id: int = 1
    # the account's base currency, used when a product has no price in `price_list_id`
    base_currency: str = "USD"
    nominal_code: str = "4000"
    # nominal codes of the free-text rows that carry shipping and discount
    shipping_nominal_code: str = "4040"
    discount_nominal_code: str = "4041"
    payment_method_code: str = "1000"
    # our payment method name -> Brightpearl paymentMethodCode (others: payment_method_code)
    payment_method_codes: dict[str, str] = {"card": "1000", "paypal": "1001", "invoice": "1002"}
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
    # carrier code -> the shippingMethodId a goods-out note carries when shipped with it
    carrier_shipping_method_ids: dict[str, int] = {"ups": 8, "fedex": 9, "usps": 10, "dhl": 11}
    # our tax class -> Brightpearl tax code
    tax_codes: dict[str, str] = {"standard": "T20", "zero": "T0"}
    default_tax_code: str = "T20"
