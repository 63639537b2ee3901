"""Helpers of the inventory push tests: the test pairs file, and views of the stack in
the terms the tests assert on (store stock, what the ERP can sell, the push run's
status, the API calls each sandbox received)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from commerce_sync.commands.inventory_control import push_status, wait_for_push
from commerce_sync.config.pairs import default_pairs_path, load_pairs
from commerce_sync.contracts.inventory import InventoryStatus, PushProgress
from commerce_sync.store.db import make_engine
from commerce_sync.store.models import DeadLetter
from tests.integration.orders.order_stack import (
    API_KEY,
    Stack,
    eventually,
    webhooks_nowhere,
)

PAIRS = {
    "kentico-brightpearl": ("kentico", "brightpearl"),
    "xcart-acumatica": ("xcart", "acumatica"),
}
SAFETY_STOCK = {"kentico-brightpearl": 2, "xcart-acumatica": 1}
BATCH_SIZE = 100
RETRY_AFTER_S = 2

INVENTORY_FOR_TESTS = f"""gather_window = "PT0.5S"
attempts = 2
retry_after = "PT{RETRY_AFTER_S}S"
order_overlap = "PT5S"
"""


def pairs_file_for_tests(directory: Path, rules: dict[str, int | str] | None = None) -> Path:
    """The packaged pairs.toml, with pushes that gather and retry within seconds, and a
    risk rule that sends every store order to approval (it stays out of the ERP);
    `rules` adds more inventory rules to every pair."""
    text = default_pairs_path().read_text(encoding="utf-8")
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in (rules or {}).items())
    text, gathers = re.subn(
        r"(?m)^gather_window = .*\n", (INVENTORY_FOR_TESTS + extra).replace("\\", "\\\\"), text
    )
    text, totals = re.subn(r'(?m)^total_over = ".*"$', 'total_over = "1.00"', text)
    path = directory / "pairs.toml"
    path.write_text(text, encoding="utf-8")
    pairs = load_pairs(path)
    assert gathers == totals == len(pairs) == len(PAIRS)
    for pair_id, pair in pairs.items():
        assert pair.inventory.safety_stock == SAFETY_STOCK[pair_id]
        assert pair.inventory.batch_size == BATCH_SIZE
        assert pair.inventory.retry_after.total_seconds() == RETRY_AFTER_S
    return path


Json = dict[str, Any]


@dataclass
class InventoryStack:
    stack: Stack

    @property
    def client(self) -> Client:
        return self.stack.client

    @property
    def sandbox(self) -> httpx.AsyncClient:
        return self.stack.sandbox

    @property
    def http(self) -> httpx.AsyncClient:
        return self.stack.http

    def headers(self, key: str = API_KEY) -> dict[str, str]:
        return self.stack.headers(key)

    # ---- the push run -----------------------------------------------------------------

    async def status(self, pair: str) -> InventoryStatus | None:
        """The run's status; None while there is none, or while no worker has polled its
        queue yet (the server refuses the query then: FAILED_PRECONDITION)."""
        try:
            return await push_status(self.client, pair)
        except RPCError as exc:
            if exc.status == RPCStatusCode.FAILED_PRECONDITION:
                return None
            raise

    async def wait_status(
        self, pair: str, what: str, check: Any, timeout_s: float = 60.0
    ) -> InventoryStatus:
        """Poll the run's status until `check(status)` holds."""

        async def probe() -> InventoryStatus | None:
            status = await self.status(pair)
            return status if status is not None and check(status) else None

        return await eventually(probe, timeout_s, what)

    async def wait_request(
        self, pair: str, request_id: str, timeout_s: float = 120.0
    ) -> PushProgress:
        async def probe() -> PushProgress | None:
            status = await self.status(pair)
            progress = status.request(request_id) if status else None
            return (
                progress if progress is not None and progress.phase in ("done", "failed") else None
            )

        return await eventually(probe, timeout_s, f"push request {request_id}")

    async def follow(self, pair: str, request_id: str, timeout_s: float = 120.0) -> PushProgress:
        """`wait_for_push`, as a benchmark or the CLI follows a request (bounded here)."""
        return await asyncio.wait_for(
            wait_for_push(self.client, pair, request_id, poll_s=0.2), timeout=timeout_s
        )

    # ---- the store -------------------------------------------------------------------

    async def store_stock(self, pair: str, sku: str) -> int | None:
        state = await self.stack.state_of(PAIRS[pair][0])
        value = state["stock"].get(sku)
        return None if value is None else int(value)

    async def store_stocks(self, pair: str) -> dict[str, int]:
        return await self.store_stocks_of(PAIRS[pair][0])

    async def store_stocks_of(self, store: str) -> dict[str, int]:
        state = await self.stack.state_of(store)
        return {sku: int(value) for sku, value in state["stock"].items() if value is not None}

    # ---- the ERP ---------------------------------------------------------------------

    async def erp_available(self, pair: str) -> dict[str, int]:
        """What the ERP can sell per SKU now, as its own state says (all warehouses)."""
        erp = PAIRS[pair][1]
        state = await self.stack.state_of(erp)
        available: dict[str, int] = {}
        if erp == "brightpearl":
            for product_id, warehouses in state["stock"].items():
                sku = state["products"][product_id]["identity"]["sku"]
                available[sku] = sum(int(f["onHand"]) for f in warehouses.values())
        else:
            for row in state["stock"]:
                sku = str(row["InventoryID"])
                available[sku] = available.get(sku, 0) + int(float(row["QtyAvailable"]))
        return available

    async def set_erp_stock(self, pair: str, sku: str, on_hand: int) -> str | None:
        """The warehouse counts `on_hand` of the SKU; the ERP fires its stock webhook."""
        erp = PAIRS[pair][1]
        response = await self.sandbox.post(
            f"/{erp}/_sandbox/stock", json={"sku": sku, "on_hand": on_hand}
        )
        assert response.status_code == 200, response.text
        event: str | None = response.json().get("event_id")
        return event

    def sellable(self, pair: str, available: int, held: int = 0) -> int:
        return max(0, available - SAFETY_STOCK[pair] - held)

    # ---- API calls and faults --------------------------------------------------------

    async def calls(self, system: str) -> list[Json]:
        response = await self.sandbox.get(f"/{system}/_sandbox/requests")
        response.raise_for_status()
        calls: list[Json] = response.json()["requests"]
        return calls

    async def forget_calls(self, system: str) -> None:
        (await self.sandbox.delete(f"/{system}/_sandbox/requests")).raise_for_status()

    async def fault(self, system: str, rule: Json) -> None:
        response = await self.sandbox.post(f"/{system}/_sandbox/faults", json=rule)
        assert response.status_code == 200, response.text

    async def clear_faults(self, system: str) -> None:
        (await self.sandbox.delete(f"/{system}/_sandbox/faults")).raise_for_status()

    async def fault_hits(self, system: str) -> int:
        response = await self.sandbox.get(f"/{system}/_sandbox/faults")
        response.raise_for_status()
        return sum(int(rule["hits"]) for rule in response.json()["faults"])

    async def hold_webhooks(self, system: str) -> None:
        """Deliveries of `system` go nowhere (a closed port refuses them at once, and one
        attempt is all they get) until `point_webhooks` points them at the API again."""
        await webhooks_nowhere(self.sandbox, self.stack.settings, system)

    # ---- the database ----------------------------------------------------------------

    def dead_letters(self, pair: str) -> list[DeadLetter]:
        engine = make_engine(self.stack.database_url)
        try:
            with Session(engine) as session:
                return list(
                    session.exec(
                        select(DeadLetter)
                        .where(DeadLetter.pair == pair, DeadLetter.process == "inventory")
                        .order_by(col(DeadLetter.id))
                    ).all()
                )
        finally:
            engine.dispose()


def stock_writes(store: str, calls: list[Json]) -> list[Json]:
    """The store API calls that wrote stock (Kentico: a PUT per SKU; X-Cart: update-many)."""
    if store == "kentico":
        return [
            c
            for c in calls
            if c["method"] == "PUT" and c["path"].startswith("/rest/ecommerce.sku/")
        ]
    return [
        c
        for c in calls
        if c["method"] == "PUT" and parse_qs(c["query"]).get("_path") == ["product"]
    ]


def erp_stock_reads(erp: str, calls: list[Json]) -> list[Json]:
    """The ERP API calls that read availability (one per batch)."""
    if erp == "brightpearl":
        return [c for c in calls if "/warehouse-service/product-availability/" in c["path"]]
    return [c for c in calls if c["path"].endswith("/InventoryQuantityAvailable")]


async def approve(inventory: InventoryStack, pair: str, order_id: str) -> None:
    """An operator approves the store order held for approval: it goes on to the ERP."""
    response = await inventory.http.post(
        f"{inventory.stack.api}/orders/{pair}/{order_id}/approval",
        json={"approved": True, "by": "ops"},
        headers=inventory.headers(),
    )
    assert response.status_code == 200, response.text
