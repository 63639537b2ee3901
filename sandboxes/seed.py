"""The default seed every sandbox loads on reset: the same ten SKUs and customers everywhere.

Each sandbox translates these into its own records (ids, field names); tests and
demos rely on `WIDGET-1` .. `WIDGET-10` existing in the store and the ERP of each pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class SeedProduct:
    sku: str
    name: str
    description: str
    price: Decimal
    on_hand: int
    weight_kg: Decimal


@dataclass(frozen=True)
class SeedCustomer:
    email: str
    first_name: str
    last_name: str
    phone: str
    company: str
    line1: str
    city: str
    region: str
    postal_code: str
    country: str


SEED_CURRENCY = "USD"

SEED_PRODUCTS: tuple[SeedProduct, ...] = tuple(
    SeedProduct(
        sku=f"WIDGET-{n}",
        name=f"Widget {n}",
        description=f"Widget number {n}, the sandbox's seed catalog.",
        price=Decimal(f"{4.99 + 5 * n:.2f}"),
        on_hand=100,
        weight_kg=Decimal("0.5") * n,
    )
    for n in range(1, 11)
)

SEED_CUSTOMERS: tuple[SeedCustomer, ...] = (
    SeedCustomer(
        email="rita.returning@example.com",
        first_name="Rita",
        last_name="Returning",
        phone="+1 512 555 0142",
        company="Returning Goods LLC",
        line1="42 Congress Ave",
        city="Austin",
        region="TX",
        postal_code="78701",
        country="US",
    ),
    SeedCustomer(
        email="otto.often@example.com",
        first_name="Otto",
        last_name="Often",
        phone="+1 206 555 0199",
        company="",
        line1="9 Pike St",
        city="Seattle",
        region="WA",
        postal_code="98101",
        country="US",
    ),
)
