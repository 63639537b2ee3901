"""Many SKUs at once, made through each system's real API or control plane (never the
sandboxes' Python internals): in the ERP with stock, in the store without."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from commerce_sync.config.settings import Settings
from commerce_sync.domain.models import Product
from commerce_sync.systems.acumatica.client import AcumaticaClient
from commerce_sync.systems.brightpearl.client import BrightpearlClient
from commerce_sync.systems.kentico.client import KenticoClient
from commerce_sync.systems.kentico.mapping import product_to_native
from commerce_sync.systems.kentico.schema import SKU
from commerce_sync.systems.xcart.client import XCartClient
from tests.integration.inventory.inventory_stack import PAIRS, InventoryStack


def bulk_skus(count: int, prefix: str = "BULK") -> list[str]:
    return [f"{prefix}-{n:05d}" for n in range(1, count + 1)]


async def _gathered(jobs: list[Any], at_once: int = 32) -> None:
    gate = asyncio.Semaphore(at_once)

    async def one(job: Any) -> None:
        async with gate:
            await job

    await asyncio.gather(*(one(job) for job in jobs))


async def create_in_erp(
    inventory: InventoryStack, pair: str, skus: list[str], on_hand: int
) -> None:
    erp = PAIRS[pair][1]

    async def one(sku: str) -> None:
        if erp == "brightpearl":
            body: dict[str, Any] = {"sku": sku, "name": sku, "price": "9.99", "on_hand": on_hand}
        else:
            body = {"sku": sku, "name": sku, "price": "9.99"}
        response = await inventory.sandbox.post(f"/{erp}/_sandbox/products", json=body)
        assert response.status_code == 200, response.text

    await _gathered([one(sku) for sku in skus])
    if erp == "acumatica":
        await receive_in_acumatica(inventory.stack.settings, skus, on_hand, "bulk seed")


async def create_in_store(settings: Settings, store: str, skus: list[str], amount: int) -> None:
    """The store's own API: Kentico one SKU row per POST, X-Cart one create-many POST."""
    if store == "kentico":
        async with KenticoClient(settings.kentico) as kentico:
            await _gathered(
                [
                    kentico._create(
                        SKU,
                        {
                            **product_to_native(_product(sku), kentico.lookups),
                            "SKUTrackInventory": "ByProduct",
                            "SKUAvailableItems": amount,
                        },
                    )
                    for sku in skus
                ]
            )
        return
    async with XCartClient(settings.xcart) as xcart:
        body = [
            {
                "sku": sku,
                "price": "9.99",
                "amount": amount,
                "translations": [{"code": "en", "name": sku}],
            }
            for sku in skus
        ]
        created, _ = await xcart._call("POST", "product", body=body)
        assert len(created) == len(skus)


def _product(sku: str) -> Product:
    return Product(sku=sku, name=sku, price=Decimal("9.99"), currency="USD")


async def receive_in_acumatica(
    settings: Settings, skus: list[str], quantity: int, reference: str
) -> None:
    """One released inventory receipt with a line per SKU: one commit, one push."""
    async with AcumaticaClient(settings.acumatica) as acumatica:
        await acumatica.receive_stock([(sku, quantity) for sku in skus], reference)


async def add_in_brightpearl(settings: Settings, product_ids: list[int], quantity: int) -> None:
    """One stock correction with a line per product: one `on-hand-modified` event."""
    async with BrightpearlClient(settings.brightpearl) as brightpearl:
        corrections = [
            {
                "quantity": quantity,
                "productId": product_id,
                "reason": "bulk count",
                "locationId": 2,
                "cost": {"currency": "USD", "value": "1.00"},
            }
            for product_id in product_ids
        ]
        await brightpearl._request(
            "POST",
            "warehouse-service/warehouse/2/stock-correction",
            json={"corrections": corrections},
        )
