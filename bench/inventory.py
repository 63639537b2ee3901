"""Inventory push bench: N SKUs pushed from the ERP to the store, per pair.

`.venv/bin/python -m bench.inventory --skus 10000 --pair kentico-brightpearl` starts, in a temp dir it
deletes afterwards, a real Temporal dev server, the sandbox server in its own process
(both as `bench.orders` runs them) and the worker in this process. The push is asked
for and followed exactly as `commerce-sync resync inventory` does it
(`inventory_control.push_and_wait`, a full push of every SKU), so the API process is not
needed and is not started.

Per pair it seeds N SKUs (timed on its own, not part of any rate): in the ERP with stock
(`POST /{erp}/_sandbox/products`, Acumatica then one released receipt), in the store
through its own API with a stock figure that differs, so every SKU must be written.
Then:

1. lifted budgets (every sandbox throttle off, every task queue's rate high): one full
   push; SKUs per second from the run's own `started_at` -> `finished_at`, and the API
   calls each system received per 1,000 SKUs (`GET /{system}/_sandbox/requests`);
2. kentico-brightpearl only, under the Brightpearl budget: the sandbox throttle at 200
   requests a minute and the worker's Brightpearl task queue at
   `BrightpearlSettings.rate_per_second` (its default, 200/60); one stock correction
   changes every SKU, then one more full push: SKUs per second, the share of the
   200-a-minute budget the push used over its window, and the throttled (503) answers.

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from temporalio.client import Client

from bench.orders import (
    PAIRS,
    BenchError,
    ChildServer,
    DevServer,
    OrderWorker,
    bench_main,
    bench_settings,
    bounded,
    exit_skipping_teardown,
    positive_float,
    positive_int,
)
from commerce_sync.commands.inventory_control import push_and_wait
from commerce_sync.config.settings import BrightpearlSettings, Settings
from commerce_sync.contracts.inventory import PushPhase, PushProgress
from commerce_sync.domain.models import Product
from commerce_sync.ops.temporal_client import data_converter
from commerce_sync.store.db import make_engine, migrate
from commerce_sync.systems.acumatica.client import AcumaticaClient
from commerce_sync.systems.brightpearl.client import BrightpearlClient
from commerce_sync.systems.kentico.client import KenticoClient
from commerce_sync.systems.kentico.mapping import product_to_native
from commerce_sync.systems.kentico.schema import SKU
from commerce_sync.systems.xcart.client import XCartClient
from sandboxes.server import SANDBOX_SYSTEMS

PAIR_CHOICES = {"both": list(PAIRS)} | {p: [p] for p in PAIRS}
ON_HAND = 50  # what the ERP holds of every bench SKU
STORE_START = 0  # what the store shows before the first push: every SKU differs
CORRECTION = 7  # added to every SKU before the throttled push
BRIGHTPEARL_BUDGET_PER_MINUTE = 200
SEED_AT_ONCE = 32
XCART_CREATE_BATCH = 500
AUTH_PATHS = ("/identity/", "/entity/auth/")

err = Console(stderr=True, highlight=False)


def bench_skus(count: int) -> list[str]:
    return [f"INV-{n:06d}" for n in range(1, count + 1)]


async def sandbox_json(sandbox: httpx.AsyncClient, path: str) -> Any:
    response = await sandbox.get(path)
    if response.status_code != 200:
        raise BenchError(f"GET {path} answered {response.status_code}: {response.text[:200]}")
    return response.json()


async def control(sandbox: httpx.AsyncClient, method: str, path: str, body: Any = None) -> None:
    response = await sandbox.request(method, path, json=body)
    if response.status_code != 200:
        raise BenchError(f"{method} {path} answered {response.status_code}: {response.text[:200]}")


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# ---- seeding ----------------------------------------------------------------------------


async def seed_erp(
    sandbox: httpx.AsyncClient, settings: Settings, erp: str, skus: list[str]
) -> None:
    """ERP products with stock: the control plane's product endpoint, one SKU a call
    (Acumatica then receives the stock in one released receipt, through its API)."""

    def one(sku: str) -> Callable[[], Awaitable[None]]:
        body: dict[str, Any] = {"sku": sku, "name": sku, "price": "9.99"}
        if erp == "brightpearl":
            body["on_hand"] = ON_HAND
        return lambda: control(sandbox, "POST", f"/{erp}/_sandbox/products", body)

    await bounded((one(sku) for sku in skus), SEED_AT_ONCE)
    if erp == "acumatica":
        async with AcumaticaClient(settings.acumatica) as acumatica:
            await acumatica.receive_stock([(sku, ON_HAND) for sku in skus], "bench seed")


async def seed_store(settings: Settings, store: str, skus: list[str]) -> None:
    """Store products through the store's own API: Kentico a SKU row per POST, X-Cart
    create-many."""
    if store == "kentico":
        async with KenticoClient(settings.kentico) as kentico:

            def one(sku: str) -> Callable[[], Awaitable[Any]]:
                product = Product(sku=sku, name=sku, price=Decimal("9.99"), currency="USD")
                values = {
                    **product_to_native(product, kentico.lookups),
                    "SKUTrackInventory": "ByProduct",
                    "SKUAvailableItems": STORE_START,
                }
                return lambda: kentico._create(SKU, values)

            await bounded((one(sku) for sku in skus), SEED_AT_ONCE)
        return
    async with XCartClient(settings.xcart) as xcart:
        for part in chunks(skus, XCART_CREATE_BATCH):
            body = [
                {
                    "sku": sku,
                    "price": "9.99",
                    "amount": STORE_START,
                    "translations": [{"code": "en", "name": sku}],
                }
                for sku in part
            ]
            created, _ = await xcart._call("POST", "product", body=body)
            if len(created) != len(part):
                raise BenchError(f"X-Cart created {len(created)} of {len(part)} products")


async def correct_brightpearl(
    sandbox: httpx.AsyncClient, settings: Settings, skus: list[str]
) -> None:
    """One stock correction through the API adds `CORRECTION` to every SKU."""
    state = await sandbox_json(sandbox, "/brightpearl/_sandbox/state")
    wanted = set(skus)
    ids = [int(i) for i, p in state["products"].items() if p["identity"]["sku"] in wanted]
    if len(ids) != len(skus):
        raise BenchError(f"Brightpearl knows {len(ids)} of {len(skus)} bench SKUs")
    corrections = [
        {
            "quantity": CORRECTION,
            "productId": product_id,
            "reason": "bench count",
            "locationId": 2,
            "cost": {"currency": "USD", "value": "1.00"},
        }
        for product_id in ids
    ]
    async with BrightpearlClient(settings.brightpearl) as brightpearl:
        await brightpearl._request(
            "POST",
            "warehouse-service/warehouse/2/stock-correction",
            json={"corrections": corrections},
        )


# ---- measuring ----------------------------------------------------------------------


@dataclass
class SystemCalls:
    system: str
    requests: int
    auth: int
    throttled: int
    failed: int
    per_1000_skus: float


@dataclass
class PushFigures:
    pair: str
    budgets: str
    skus: int
    written: int
    unchanged: int
    rejected: int
    not_in_erp: int
    failed: int
    window_s: float
    skus_per_s: float
    calls: list[SystemCalls]
    budget_share: float | None = None
    """Brightpearl requests in the window / (200 a minute x the window)."""
    brightpearl_per_minute: float | None = None


async def forget_calls(sandbox: httpx.AsyncClient) -> None:
    for system in SANDBOX_SYSTEMS:
        await control(sandbox, "DELETE", f"/{system}/_sandbox/requests")


async def calls_of(
    sandbox: httpx.AsyncClient, systems: tuple[str, str], skus: int
) -> list[SystemCalls]:
    result: list[SystemCalls] = []
    for system in systems:
        log = (await sandbox_json(sandbox, f"/{system}/_sandbox/requests"))["requests"]
        auth = sum(1 for r in log if str(r["path"]).startswith(AUTH_PATHS))
        throttled = sum(1 for r in log if _throttle(system, r))
        failed = sum(1 for r in log if r["status"] >= 400) - throttled
        result.append(
            SystemCalls(system, len(log), auth, throttled, failed, len(log) * 1000 / skus)
        )
    return result


def _throttle(system: str, record: dict[str, Any]) -> bool:
    """A throttled answer: Brightpearl's 503, Acumatica's and the stores' 429."""
    status = int(record["status"])
    return status == (503 if system == "brightpearl" else 429)


async def measured_push(
    client: Client,
    sandbox: httpx.AsyncClient,
    settings: Settings,
    pair: str,
    budgets: str,
    timeout_s: float,
) -> PushFigures:
    await forget_calls(sandbox)
    last_shown = [0.0]

    def show(progress: PushProgress) -> None:
        if time.monotonic() - last_shown[0] > 10:
            last_shown[0] = time.monotonic()
            err.print(f"  {pair}: {progress.phase.value} {progress.done}/{progress.total or '?'}")

    try:
        progress = await asyncio.wait_for(
            push_and_wait(
                client, pair, settings.task_queue, requested_by="bench", on_progress=show
            ),
            timeout_s,
        )
    except TimeoutError:
        raise BenchError(f"the {pair} push did not finish in {timeout_s:.0f} s") from None
    if progress.phase != PushPhase.DONE or progress.total is None:
        raise BenchError(f"the {pair} push ended {progress.phase.value}: {progress.error}")
    if progress.started_at is None or progress.finished_at is None:
        raise BenchError(f"the {pair} push has no start or finish time")
    window = (progress.finished_at - progress.started_at).total_seconds()
    if window <= 0:
        raise BenchError(f"empty measurement window ({window:.3f} s)")
    counts = progress.counts
    calls = await calls_of(sandbox, PAIRS[pair], progress.total)
    figures = PushFigures(
        pair=pair,
        budgets=budgets,
        skus=progress.total,
        written=counts.written,
        unchanged=counts.unchanged,
        rejected=counts.rejected,
        not_in_erp=counts.not_in_erp,
        failed=counts.read_failed + counts.write_failed,
        window_s=window,
        skus_per_s=progress.total / window,
        calls=calls,
    )
    if budgets == "brightpearl 200/min":
        brightpearl = next(c for c in calls if c.system == "brightpearl")
        per_minute = brightpearl.requests * 60 / window
        figures.brightpearl_per_minute = per_minute
        figures.budget_share = per_minute / BRIGHTPEARL_BUDGET_PER_MINUTE
    return figures


async def set_throttles(sandbox: httpx.AsyncClient, brightpearl: int | None) -> None:
    for system in SANDBOX_SYSTEMS:
        limit = brightpearl if system == "brightpearl" else None
        await control(
            sandbox, "POST", f"/{system}/_sandbox/throttle", {"requests_per_minute": limit}
        )


# ---- the run ------------------------------------------------------------------------


@dataclass
class BenchResult:
    skus: int
    pairs: list[str]
    seed_s: dict[str, float]
    pushes: list[PushFigures]
    cpus: int
    load_before: float
    load_after: float
    wall_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {"bench": "inventory", **_rounded(data)}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


async def run(args: argparse.Namespace) -> BenchResult:
    began = time.monotonic()
    pairs = PAIR_CHOICES[args.pair]
    skus = bench_skus(args.skus)
    load_before = os.getloadavg()[0]
    seed_s: dict[str, float] = {}
    pushes: list[PushFigures] = []
    with tempfile.TemporaryDirectory(prefix="commerce-sync-bench-inventory-") as tmp:
        data_dir = Path(tmp)
        async with contextlib.AsyncExitStack() as stack:
            err.print("starting the Temporal dev server, the sandboxes and a worker ...")
            server = DevServer(data_dir)
            stack.callback(server.stop)
            server.start()
            sandboxes = ChildServer("sandboxes", Settings(_env_file=None))
            stack.callback(sandboxes.stop)
            sandbox_url = sandboxes.start()
            lifted = bench_settings(sandbox_url, data_dir, server.target, lift_budgets=True)
            client = await server.connect(data_converter(lifted))
            engine = make_engine(lifted.resolved_database_url)
            stack.callback(engine.dispose)
            migrate(engine)
            sandbox = await stack.enter_async_context(
                httpx.AsyncClient(base_url=sandbox_url, timeout=120.0)
            )
            for system in SANDBOX_SYSTEMS:
                await control(sandbox, "POST", f"/{system}/_sandbox/reset")
            await set_throttles(sandbox, None)

            for pair in pairs:
                store, erp = PAIRS[pair]
                err.print(f"seeding {len(skus)} SKUs in {erp} and {store} ...")
                started = time.monotonic()
                await seed_erp(sandbox, lifted, erp, skus)
                await seed_store(lifted, store, skus)
                seed_s[pair] = time.monotonic() - started

            worker = OrderWorker(client, lifted, engine)
            try:
                for pair in pairs:
                    err.print(f"pushing every SKU of {pair}, budgets lifted ...")
                    pushes.append(
                        await measured_push(client, sandbox, lifted, pair, "lifted", args.timeout)
                    )
            finally:
                await worker.close()

            if "kentico-brightpearl" in pairs:
                pair = "kentico-brightpearl"
                await correct_brightpearl(sandbox, lifted, skus)
                rate = BrightpearlSettings.model_fields["rate_per_second"].default
                real = lifted.model_copy(
                    update={
                        "brightpearl": lifted.brightpearl.model_copy(
                            update={"rate_per_second": rate}
                        )
                    }
                )
                await set_throttles(sandbox, BRIGHTPEARL_BUDGET_PER_MINUTE)
                worker = OrderWorker(client, real, engine)
                try:
                    err.print(
                        f"pushing every SKU of {pair} again under Brightpearl's "
                        f"{BRIGHTPEARL_BUDGET_PER_MINUTE}/min (task queue {rate:.2f}/s) ..."
                    )
                    pushes.append(
                        await measured_push(
                            client, sandbox, real, pair, "brightpearl 200/min", args.timeout
                        )
                    )
                finally:
                    await worker.close()
            err.print("stopping everything ...")
    return BenchResult(
        skus=len(skus),
        pairs=pairs,
        seed_s=seed_s,
        pushes=pushes,
        cpus=os.cpu_count() or 0,
        load_before=load_before,
        load_after=os.getloadavg()[0],
        wall_s=time.monotonic() - began,
    )


# ---- output -------------------------------------------------------------------------


DEFINITIONS = (
    "SKUs: every SKU the ERP lists (the bench's N plus the sandboxes' 10 seed SKUs), one "
    "full push each (`push_and_wait`, as `resync inventory`); seeding is timed apart.",
    "SKUs/s: SKUs / the push run's own started_at -> finished_at of the request.",
    "calls / 1,000 SKUs: every request in the system's sandbox log during the push "
    "(GET /{system}/_sandbox/requests), auth included, per 1,000 SKUs pushed.",
    "budget share: Brightpearl requests of the push, per minute of its window, over the "
    "200 a minute the sandbox's throttle allows; throttled: Brightpearl 503 answers "
    "(Acumatica and the stores: 429).",
    "Acumatica: one availability inquiry per batch (the calls above); by the inventory "
    "author's note each answer carries every item, so its size grows with the catalog; the "
    "bench counts calls, not bytes.",
)


def report(result: BenchResult, out: Console) -> None:
    table = Table(
        title=f"commerce-sync inventory push: {result.skus} SKUs per pair",
        title_justify="left",
    )
    for name in (
        "pair",
        "budgets",
        "SKUs",
        "written / unchanged",
        "failed / rejected",
        "window",
        "SKUs/s",
        "BP budget used",
    ):
        table.add_column(name, justify="left" if name in ("pair", "budgets") else "right")
    for p in result.pushes:
        share = (
            "-"
            if p.budget_share is None
            else f"{p.budget_share:.0%} ({p.brightpearl_per_minute:.0f}/min)"
        )
        table.add_row(
            p.pair,
            p.budgets,
            str(p.skus),
            f"{p.written} / {p.unchanged}",
            f"{p.failed} / {p.rejected}",
            f"{p.window_s:.1f} s",
            f"{p.skus_per_s:.1f}",
            share,
        )
    out.print(table)
    calls = Table(title="API calls per 1,000 SKUs, by system", title_justify="left")
    for name in (
        "pair",
        "budgets",
        "system",
        "requests",
        "auth",
        "per 1,000 SKUs",
        "throttled",
        "other non-2xx",
    ):
        calls.add_column(name, justify="left" if name in ("pair", "budgets", "system") else "right")
    for p in result.pushes:
        for c in p.calls:
            calls.add_row(
                p.pair,
                p.budgets,
                c.system,
                str(c.requests),
                str(c.auth),
                f"{c.per_1000_skus:.1f}",
                str(c.throttled),
                str(c.failed),
            )
    out.print(calls)
    seeds = ", ".join(f"{pair} {s:.0f} s" for pair, s in result.seed_s.items())
    out.print(
        f"seeding (not measured): {seeds}; machine: {result.cpus} cores, 1-min load "
        f"{result.load_before:.1f} -> {result.load_after:.1f}; wall {result.wall_s:.0f} s",
        soft_wrap=True,
    )
    for line in DEFINITIONS:
        out.print(f"[dim]- {line}[/]", soft_wrap=True)
    if result.load_before > result.cpus * 0.5:
        out.print(
            f"note: the machine was busy (1-min load {result.load_before:.1f} before the run on "
            f"{result.cpus} cores): figures are lower than on an idle machine",
            soft_wrap=True,
        )
    print(json.dumps(result.as_json(), separators=(",", ":")), flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.inventory",
        description="SKUs per second and API calls per 1,000 SKUs of a full inventory push, "
        "and the Brightpearl budget it uses under the sandbox's 200-a-minute throttle.",
    )
    parser.add_argument(
        "--skus", type=positive_int, default=10_000, help="SKUs per pair (default 10000)"
    )
    parser.add_argument(
        "--pair",
        choices=list(PAIR_CHOICES),
        default="kentico-brightpearl",
        help="kentico-brightpearl (default: the pair the Brightpearl budget applies to), "
        "xcart-acumatica or both (the Acumatica sandbox seeds slowly: its every product "
        "write recomputes its push-notification queries over every item)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=900.0,
        help="seconds each push may take before the bench gives up (default 900)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    exit_skipping_teardown(bench_main(sys.argv[1:], parse_args, run, report, width=130))
