"""Per-pair X-Cart lookups, the `[pairs.<id>.xcart]` table of pairs.toml."""

from pydantic import BaseModel, ConfigDict


class XCartLookups(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # canonical OrderStatus value -> X-Cart shipping status id
    # (New=1, Processing=2, Shipped=3, Delivered=4, Will not deliver=5, Returned=6)
    shipping_status_ids: dict[str, int] = {
        "pending": 1,
        "on_hold": 1,
        "processing": 2,
        "shipped": 3,
        "delivered": 4,
        "cancelled": 5,
        "rejected": 5,
        "returned": 6,
        "refunded": 6,
    }
    # payment state -> X-Cart payment status code (A, PP, P, D, C, Q, R)
    payment_status_codes: dict[str, str] = {
        "authorized": "A",
        "paid": "P",
        "declined": "D",
        "cancelled": "C",
        "queued": "Q",
        "refunded": "R",
    }
    # Reading an order: X-Cart shipping status id -> canonical OrderStatus value ...
    order_status_by_shipping_status_id: dict[int, str] = {
        1: "pending",
        2: "processing",
        3: "shipped",
        4: "delivered",
        5: "cancelled",
        6: "returned",
    }
    # ... unless the payment status code is one of these, which wins.
    order_status_by_payment_code: dict[str, str] = {
        "R": "refunded",
        "C": "cancelled",
        "D": "rejected",
    }
    # The store's single currency (X-Cart 5 prices the catalog in one currency).
    currency: str = "USD"
    # The translation (language code) product names and descriptions are read from.
    language: str = "en"
    # canonical carrier code -> how it is written into the order's `tracking` text
    carrier_names: dict[str, str] = {"ups": "UPS", "usps": "USPS", "fedex": "FedEx", "dhl": "DHL"}
