"""Exactly once at scale: N orders per pair through lost answers and flaky systems.

`.venv/bin/python -m bench.chaos --orders 20` starts the same stack as `bench.orders` (a
real Temporal dev server, the sandboxes and the API in their own processes, a worker in
this one), with the connectors' timeout at 5 s and runs looking for twins 20 s after
their creates. In each ERP every create the order run makes (Brightpearl's postal
address, customer, sales order, payment) is held past the timeout for its first N
calls, so the answer is lost, the
activity retries, and the held request lands afterwards; all four systems answer one
call in ten with 503 and one in ten with 429. It places N orders per pair at once, waits
until every run waits for its shipment, gives the twin checks time to run, and counts
in the ERPs' own records, per store order:

- exactly once: one active customer, one live sales order, one live payment;
- duplicates: more than one of any (left after the runs' twin checks);
- lost: no live sales order; stuck: no run reached awaiting_shipment in time;
- orphans: Brightpearl postal addresses no contact refers to.

`tests/e2e/test_chaos.py` is the same in CI at two orders (and a killed worker); this is
the bench at a size CI has no time for. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bench.orders import (
    PAIRS,
    BenchError,
    ChildServer,
    DevServer,
    OrderWorker,
    bench_main,
    bench_settings,
    err,
    exit_skipping_teardown,
    positive_float,
    positive_int,
    prepare_sandboxes,
    shopper_order,
)
from commerce_sync.config.pairs import default_pairs_path
from commerce_sync.config.settings import Settings
from commerce_sync.contracts.orders import OrderSyncStatus
from commerce_sync.ops.temporal_client import data_converter
from commerce_sync.store.db import make_engine, migrate
from sandboxes.server import SANDBOX_SYSTEMS
from tests.e2e.test_chaos import (
    FLAKY,
    ORDER_CREATES,
    active,
    customers,
    live,
    live_payments,
    orders,
    orphan_addresses,
)

Json = dict[str, Any]
HTTP_TIMEOUT_S = 5.0
HELD_S = HTTP_TIMEOUT_S + 3.0
CHECK_AFTER_S = 20


@dataclass(frozen=True)
class Placed:
    pair: str
    order_id: str
    payment_reference: str


@dataclass
class PairResult:
    pair: str
    orders: int
    exactly_once: int
    duplicate_customers: int
    duplicate_orders: int
    duplicate_payments: int
    lost: int
    stuck: int
    orphan_addresses: int
    held_creates: int
    stuck_as: dict[str, int] = field(default_factory=dict)
    """The state each stuck run was last seen in (with its error, if any)."""


@dataclass
class ChaosResult:
    pairs: list[PairResult]
    wall_s: float
    cpus: int
    load_before: float
    load_after: float


def chaos_pairs_file(directory: Path) -> Path:
    text = default_pairs_path().read_text(encoding="utf-8")
    text = re.sub(
        r"(?m)^duplicate_check_after = .*$", f"duplicate_check_after = {CHECK_AFTER_S}", text
    )
    path = directory / "pairs.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def set_faults(sandbox: httpx.AsyncClient, per_pair: int, seed: int) -> None:
    """Each ERP create held for its first `per_pair` calls; every system flaky."""
    for offset, system in enumerate(SANDBOX_SYSTEMS):
        held = [
            {"match": match, "delay_s": HELD_S, "count": per_pair}
            for match in ORDER_CREATES.get(system, [])
        ]
        (await sandbox.delete(f"/{system}/_sandbox/faults")).raise_for_status()
        body = {"rules": held + FLAKY, "seed": seed + offset}
        (await sandbox.post(f"/{system}/_sandbox/faults", json=body)).raise_for_status()


async def held_calls(sandbox: httpx.AsyncClient, erp: str) -> int:
    faults = (await sandbox.get(f"/{erp}/_sandbox/faults")).json()["faults"]
    return sum(int(rule.get("hits", 0)) for rule in faults if rule.get("delay_s"))


async def place(sandbox: httpx.AsyncClient, pair: str, index: int) -> Placed:
    order = shopper_order(index)
    order["payment"]["reference"] = f"ch_chaos_{uuid.uuid4().hex[:12]}"
    response = await sandbox.post(f"/{PAIRS[pair][0]}/_sandbox/orders", json=order)
    if response.status_code not in (200, 201):
        raise BenchError(f"the store refused an order: {response.status_code} {response.text}")
    return Placed(pair, str(response.json()["id"]), order["payment"]["reference"])


async def statuses(client: Any, placed: list[Placed], timeout_s: float) -> dict[Placed, Json]:
    """Each order's run status once it waits for its shipment; the stuck ones left out."""
    deadline = time.monotonic() + timeout_s
    found: dict[Placed, Json] = {}
    with err.status("waiting for the runs") as shown:
        while len(found) < len(placed) and time.monotonic() < deadline:
            for order in placed:
                if order in found:
                    continue
                handle = client.get_workflow_handle(f"order:{order.pair}:{order.order_id}")
                with contextlib.suppress(Exception):
                    status = await handle.query("status", result_type=OrderSyncStatus)
                    if status.state.value == "awaiting_shipment":
                        found[order] = status.model_dump(mode="json")
            shown.update(f"{len(found)} of {len(placed)} orders in the ERP")
            await asyncio.sleep(1.0)
    return found


async def last_seen(client: Any, order: Placed) -> str:
    """A stuck run's state and error, for the report."""
    handle = client.get_workflow_handle(f"order:{order.pair}:{order.order_id}")
    try:
        status = await handle.query("status", result_type=OrderSyncStatus)
    except Exception as exc:
        return f"no status ({type(exc).__name__})"
    return f"{status.state.value}: {status.error[:160]}" if status.error else status.state.value


async def twin_check_done(client: Any, order: Placed) -> bool:
    """Whether the run's look for twins (`erp.remove_order_twins`) has completed: it comes
    `duplicate_check_after` after the creates and is retried while the ERP is flaky."""
    handle = client.get_workflow_handle(f"order:{order.pair}:{order.order_id}")
    history = await handle.fetch_history()
    scheduled = {
        event.event_id
        for event in history.events
        if event.activity_task_scheduled_event_attributes.activity_type.name
        == "erp.remove_order_twins"
    }
    return any(
        event.activity_task_completed_event_attributes.scheduled_event_id in scheduled
        for event in history.events
        if event.HasField("activity_task_completed_event_attributes")
    )


async def twin_checks_done(client: Any, placed: list[Placed], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = list(placed)
    with err.status("waiting for the runs' twin checks") as shown:
        while waiting and time.monotonic() < deadline:
            waiting = [order for order in waiting if not await twin_check_done(client, order)]
            shown.update(f"{len(placed) - len(waiting)} of {len(placed)} twin checks done")
            await asyncio.sleep(2.0)
    if waiting:
        raise BenchError(f"{len(waiting)} runs did not finish their twin check in time")


def count(
    pair: str, placed: list[Placed], found: dict[Placed, Json], state: Json, held: int
) -> PairResult:
    erp = PAIRS[pair][1]
    mine = [order for order in placed if order.pair == pair]
    result = PairResult(pair, len(mine), 0, 0, 0, 0, 0, 0, 0, held)
    for order in mine:
        status = found.get(order)
        if status is None:
            result.stuck += 1
            continue
        sales = [o for o in orders(state, erp, status["store_order_number"]) if live(erp, o)]
        buyers = [c for c in customers(state, erp, status["customer_email"]) if active(erp, c)]
        paid = live_payments(state, erp, order.payment_reference)
        result.lost += not sales
        result.duplicate_orders += len(sales) > 1
        result.duplicate_customers += len(buyers) > 1
        result.duplicate_payments += len(paid) > 1
        result.exactly_once += len(sales) == len(buyers) == len(paid) == 1
    if erp == "brightpearl":
        result.orphan_addresses = len(orphan_addresses(state))
    return result


async def run(args: argparse.Namespace) -> ChaosResult:
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="commerce-sync-chaos-") as tmp:
        data_dir = Path(tmp)
        async with contextlib.AsyncExitStack() as stack:
            err.print("starting the Temporal dev server, the sandboxes, the API and a worker ...")
            server = DevServer(data_dir)
            stack.callback(server.stop)
            server.start()
            sandboxes = ChildServer("sandboxes", Settings(_env_file=None))
            stack.callback(sandboxes.stop)
            sandbox_url = sandboxes.start()
            settings = bench_settings(sandbox_url, data_dir, server.target, lift_budgets=True)
            settings = settings.model_copy(
                update={"http_timeout_s": HTTP_TIMEOUT_S, "pairs_file": chaos_pairs_file(data_dir)}
            )
            client = await server.connect(data_converter(settings))
            engine = make_engine(settings.resolved_database_url)
            stack.callback(engine.dispose)
            migrate(engine)
            api = ChildServer("api", settings)
            stack.callback(api.stop)
            api_url = api.start()
            sandbox = await stack.enter_async_context(
                httpx.AsyncClient(base_url=sandbox_url, timeout=30.0)
            )
            await prepare_sandboxes(sandbox, settings, api_url, lift_budgets=True)
            await set_faults(sandbox, args.orders, seed=args.seed)
            worker = OrderWorker(client, settings, engine)
            stack.push_async_callback(worker.close)

            err.print(f"placing {args.orders} orders per pair, every create's answer lost ...")
            placed = [
                await place(sandbox, pair, index) for index in range(args.orders) for pair in PAIRS
            ]
            found = await statuses(client, placed, args.timeout)
            await twin_checks_done(client, list(found), args.timeout)
            results = []
            for pair, (_store, erp) in PAIRS.items():
                state = (await sandbox.get(f"/{erp}/_sandbox/state")).json()
                held = await held_calls(sandbox, erp)
                result = count(pair, placed, found, state, held)
                for order in placed:
                    if order.pair == pair and order not in found:
                        seen = await last_seen(client, order)
                        result.stuck_as[seen] = result.stuck_as.get(seen, 0) + 1
                results.append(result)
            err.print("stopping everything ...")
    return ChaosResult(
        pairs=results,
        wall_s=time.monotonic() - began,
        cpus=os.cpu_count() or 0,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )


def report(result: ChaosResult, out: Console) -> None:
    table = Table(title="exactly once under lost answers and 20% 429/503, per pair")
    columns = (
        "orders", "exactly_once", "duplicate_customers", "duplicate_orders",
        "duplicate_payments", "lost", "stuck", "orphan_addresses", "held_creates",
    )  # fmt: skip
    table.add_column("pair")
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    for pair in result.pairs:
        table.add_row(pair.pair, *(str(getattr(pair, column)) for column in columns))
    out.print(table)
    for pair in result.pairs:
        for seen, times in pair.stuck_as.items():
            out.print(f"stuck in {pair.pair}: {times} x {seen}", highlight=False, soft_wrap=True)
    out.print(
        f"wall {result.wall_s:.0f} s on {result.cpus} cores, 1-min load "
        f"{result.load_before:.1f} -> {result.load_after:.1f}"
    )
    out.print(json.dumps({"bench": "chaos", **asdict(result)}), soft_wrap=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--orders", type=positive_int, default=20, help="orders per pair")
    parser.add_argument("--seed", type=int, default=13, help="the fault rules' seed")
    parser.add_argument(
        "--timeout", type=positive_float, default=600.0, help="seconds for the runs to sync"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    exit_skipping_teardown(bench_main(sys.argv[1:], parse_args, run, report, width=160))
