"""What an ERP sandbox holding a merchant's history costs per request.

The sandboxes serve tests, demos and a merchant's staging; a staging sandbox gathers
thousands of customers, orders, payments and shipments. For each ERP of `--erp`, this bench
fills its sandbox through the product's connector (the ERP port, over HTTP: a new
customer, its sales order and its payment, as an order run makes them; every second order
shipped through the control plane) and, each time the sandbox holds `--sizes` orders,
measures the requests the product makes of it, one after another:

- `order writes`: an order's three creates (customer, sales order, payment);
- `find customer`: the e-mail lookup every order run makes;
- `find order`: the store-order-number lookup of a retried create or a twin check;
- `shipments`: an order's shipments, read when the ERP announces one;
- `product`: one product read (catalog and SKU checks);
- `stock`: one SKU's availability, as the inventory push reads it.

`.venv/bin/python -m bench.erp_scale [--erp acumatica,brightpearl] [--sizes 250,1000,4000]
[--sample 20]`
prints, per size and request, the sandbox process's CPU milliseconds and the wall
milliseconds per request, then a JSON line, with the 1-minute load average at the end of
each size.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.cpu import process_cpu_s
from bench.orders import BenchError, ChildServer, bench_main, bounded, exit_skipping_teardown
from commerce_sync.config.pairs import PairConfig, load_pairs
from commerce_sync.config.settings import AcumaticaSettings, BrightpearlSettings, Settings
from commerce_sync.contracts.documents import ErpOrderHandle
from commerce_sync.domain.models import (
    Address,
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Origin,
    Payment,
)
from commerce_sync.systems.acumatica.port import AcumaticaErpPort
from commerce_sync.systems.acumatica.port import create_erp_port as acumatica_port
from commerce_sync.systems.brightpearl.port import BrightpearlErpPort
from commerce_sync.systems.brightpearl.port import create_erp_port as brightpearl_port

ErpPort = AcumaticaErpPort | BrightpearlErpPort
PORTS: dict[str, Callable[[Settings], ErpPort]] = {
    "acumatica": acumatica_port,
    "brightpearl": brightpearl_port,
}
PAIRS = {"acumatica": "xcart-acumatica", "brightpearl": "kentico-brightpearl"}
ADDRESS = Address(
    name="Jane Doe", line1="1 Main St", city="Austin", region="TX", postal_code="78701",
    country="US",
)  # fmt: skip
SKUS = [f"WIDGET-{n}" for n in range(1, 11)]


@dataclass
class Measured:
    erp: str
    size: int
    request: str
    sandbox_cpu_ms: float
    wall_ms: float
    load: float


def shopper_order(index: int) -> Order:
    line = OrderLine(
        sku=SKUS[index % len(SKUS)], name="Widget", quantity=1, unit_price=Decimal("9.99")
    )
    total = line.net + Decimal("5.00")
    return Order(
        origin=Origin(system="xcart", external_id=str(index)),
        number=f"SC-{index:06d}",
        status=OrderStatus.PENDING,
        placed_at=datetime(2026, 11, 22, 10, 30, tzinfo=UTC) + timedelta(seconds=index),
        currency="USD",
        customer=Customer(
            email=f"shopper{index}@example.com", first_name="Shopper", last_name=str(index)
        ),
        billing_address=ADDRESS,
        shipping_address=ADDRESS,
        lines=[line],
        shipping_method="ground",
        shipping_total=Decimal("5.00"),
        total=total,
        payment=Payment(method="card", reference=f"ch_{index}", amount=total, currency="USD"),
    )


class Filler:
    """Places orders in the sandbox through the connector, as order runs do."""

    def __init__(self, erp: str, port: ErpPort, control: httpx.AsyncClient, pair: PairConfig):
        self.erp, self.port, self.control, self.pair = erp, port, control, pair
        self.placed: list[tuple[Order, ErpOrderHandle]] = []

    async def place(self, index: int) -> None:
        order = shopper_order(index)
        customer_id = await self.port.create_customer(order.customer, self.pair)
        handle, _ = await self.port.create_order(
            order, customer_id, self.pair, first_attempt=True, first_run=True
        )
        assert order.payment is not None
        await self.port.record_payment(
            handle, order.payment, customer_id, self.pair, first_on_new_order=True
        )
        if index % 2 == 0:
            shipped = await self.control.post(
                f"/{self.erp}/_sandbox/shipments",
                json={"order": handle.number, "tracking": f"1Z{index:016d}", "carrier": "ups"},
            )
            if shipped.status_code != 200:
                raise BenchError(f"shipping order {handle.number}: {shipped.text[:200]}")
        self.placed.append((order, handle))


def requests(filler: Filler, *, first_extra: int) -> dict[str, Callable[[int], Awaitable[object]]]:
    """The requests measured, each given the index of its turn: reads spread over the
    orders placed so far; writes of orders numbered from `first_extra`."""
    port, pair, placed = filler.port, filler.pair, list(filler.placed)

    def order(turn: int) -> tuple[Order, ErpOrderHandle]:
        return placed[turn * 7 % len(placed)]

    return {
        "order writes": lambda turn: filler.place(first_extra + turn),
        "find customer": lambda turn: port.find_customer_by_email(
            order(turn)[0].customer.email, pair
        ),
        "find order": lambda turn: port.find_order(order(turn)[0].number, pair),
        "shipments": lambda turn: port.get_shipments(order(turn)[1], pair),
        "product": lambda turn: port.get_product(SKUS[turn % len(SKUS)], pair),
        "stock": lambda turn: port.read_stock([SKUS[turn % len(SKUS)]], pair),
    }


async def measure(
    erp: str,
    name: str,
    size: int,
    sample: int,
    sandbox_pid: int,
    call: Callable[[int], Awaitable[object]],
) -> Measured:
    cpu_before, started = process_cpu_s(sandbox_pid), time.monotonic()
    for index in range(sample):
        await call(index)
    wall = time.monotonic() - started
    cpu = process_cpu_s(sandbox_pid) - cpu_before
    return Measured(
        erp=erp,
        size=size,
        request=name,
        sandbox_cpu_ms=round(cpu / sample * 1000, 2),
        wall_ms=round(wall / sample * 1000, 2),
        load=os.getloadavg()[0],
    )


async def run(args: argparse.Namespace) -> list[Measured]:
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="commerce-sync-erp-scale-") as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp))
        sandbox = ChildServer("sandboxes", settings)
        url = sandbox.start()
        try:
            pid = sandbox.process.pid
            assert pid is not None
            pairs = load_pairs(settings.pairs_file)
            async with httpx.AsyncClient(base_url=url, timeout=120) as control:
                for erp in args.erp:
                    connected = settings.model_copy(
                        update={
                            "acumatica": AcumaticaSettings(base_url=f"{url}/acumatica"),
                            "brightpearl": BrightpearlSettings(base_url=f"{url}/brightpearl"),
                            "http_timeout_s": 120.0,
                        }
                    )
                    port: ErpPort = PORTS[erp](connected)
                    (await control.post(f"/{erp}/_sandbox/reset")).raise_for_status()
                    # The cost per request is the question, not the system's rate limit.
                    lifted = {"requests_per_minute": None}
                    (
                        await control.post(f"/{erp}/_sandbox/throttle", json=lifted)
                    ).raise_for_status()
                    filler = Filler(erp, port, control, pairs[PAIRS[erp]])
                    try:
                        results += await grow(filler, args.sizes, args.sample, pid)
                    finally:
                        await port.aclose()
        finally:
            sandbox.stop()
    return results


async def grow(filler: Filler, sizes: list[int], sample: int, pid: int) -> list[Measured]:
    """Fill the sandbox size by size, measuring the requests at each."""
    results: list[Measured] = []
    placed = 0
    for size in sizes:
        await bounded([functools.partial(filler.place, i) for i in range(placed, size)], limit=4)
        placed = size
        for name, call in requests(filler, first_extra=10**6 + size * 10).items():
            measured = await measure(filler.erp, name, size, sample, pid, call)
            results.append(measured)
            print(json.dumps(asdict(measured)), file=sys.stderr, flush=True)
    return results


def report(results: list[Measured], out: Console) -> None:
    table = Table(title="ERP sandboxes: cost per request by orders held")
    for column in ("ERP", "orders held", "request", "sandbox CPU ms", "wall ms", "load"):
        table.add_column(column, justify="right")
    for row in results:
        table.add_row(
            row.erp, str(row.size), row.request, f"{row.sandbox_cpu_ms:.2f}",
            f"{row.wall_ms:.2f}", f"{row.load:.2f}",
        )  # fmt: skip
    out.print(table)
    out.print(json.dumps({"bench": "erp_scale", "results": [asdict(r) for r in results]}))


def erps(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [erp for erp in chosen if erp not in PAIRS]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"ERPs are {', '.join(PAIRS)}; got {text!r}")
    return chosen


def sizes(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if not values or values != sorted(values) or values[0] < 10:
        raise argparse.ArgumentTypeError("sizes must rise, from 10 orders up")
    return values


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.erp_scale")
    parser.add_argument("--erp", type=erps, default=list(PAIRS))
    parser.add_argument("--sizes", type=sizes, default=[250, 1000, 4000])
    parser.add_argument("--sample", type=int, default=20, help="requests per measurement")
    return parser.parse_args(argv)


if __name__ == "__main__":
    exit_skipping_teardown(bench_main(sys.argv[1:], parse_args, run, report, width=100))
