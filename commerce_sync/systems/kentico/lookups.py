"""Per-pair Kentico lookups, the `[pairs.<id>.kentico]` table of pairs.toml."""

from pydantic import BaseModel, ConfigDict


class KenticoLookups(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: int = 1
    # the site's main currency (ISO-4217): SKU prices are in it
    main_currency: str = "USD"
    # canonical OrderStatus value -> COM_OrderStatus.StatusID
    order_status_ids: dict[str, int] = {
        "pending": 1,
        "on_hold": 2,
        "processing": 3,
        "shipped": 4,
        "delivered": 5,
        "cancelled": 6,
        "rejected": 7,
        "returned": 8,
        "refunded": 9,
    }
    # ISO-4217 code -> COM_Currency.CurrencyID
    currency_ids: dict[str, int] = {"USD": 1, "EUR": 2, "GBP": 3}
    # our shipping method name -> COM_ShippingOption.ShippingOptionID
    shipping_option_ids: dict[str, int] = {"ground": 1, "express": 2, "pickup": 3}
    # our payment method name -> COM_PaymentOption.PaymentOptionID
    payment_option_ids: dict[str, int] = {"card": 1, "paypal": 2, "invoice": 3}
