"""What the anomaly assessment's history read costs an order once the pair has a history:
CPU and wall milliseconds per `record_order_and_history` (`store/orders_seen.py`).

`.venv/bin/python -m bench.assessment [--history 3000] [--orders 50] [--database-url URL]`
records `--history` orders one a minute (each naming 2 of 50 SKUs, 500 e-mails, 700
addresses, one country), not measured, then times `--orders` more the same way: each
records itself and reads the store sample (up to 2,000 earlier orders), the customer's
totals and the window's counts. Default database: a SQLite file in a temp dir, the
embedded default's; a `--database-url` is a throwaway one (migrated, and left holding the
bench's orders). Prints a line and a JSON line with the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from commerce_sync.store.db import make_engine, migrate
from commerce_sync.store.orders_seen import OrderFacts, record_order_and_history

PAIR = "kentico-brightpearl"
START = datetime(2026, 11, 1, tzinfo=UTC)
HISTORY_DAYS = 90
ADDRESS_WINDOW_DAYS = 30


def order(index: int, rng: random.Random) -> OrderFacts:
    return OrderFacts(
        pair=PAIR,
        store_order_id=str(index),
        email_key=f"email-{index % 500}",
        address_key=f"address-{index % 700}",
        placed_at=START + timedelta(minutes=index),
        currency="USD",
        total=Decimal(rng.randint(1000, 50000)) / 100,
        billing_country="US",
        shipping_country="US",
        sku_quantities={f"SKU-{rng.randint(1, 50)}": rng.randint(1, 3) for _ in range(2)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.assessment")
    parser.add_argument("--history", type=int, default=3000, help="earlier orders (3000)")
    parser.add_argument("--orders", type=int, default=50, help="orders timed (50)")
    parser.add_argument("--database-url", default=None, help="default: a temp SQLite file")
    args = parser.parse_args()
    if args.history < 0 or args.orders < 1:
        parser.error("--history must be 0 or more and --orders 1 or more")
    rng = random.Random(15)
    with tempfile.TemporaryDirectory() as workdir:
        url = args.database_url or f"sqlite:///{Path(workdir) / 'bench.db'}"
        engine = make_engine(url)
        migrate(engine)

        def record(index: int) -> None:
            record_order_and_history(
                engine,
                order(index, rng),
                history_days=HISTORY_DAYS,
                address_window_days=ADDRESS_WINDOW_DAYS,
            )

        for index in range(args.history):
            record(index)
        cpu, wall = time.process_time(), time.perf_counter()
        for index in range(args.history, args.history + args.orders):
            record(index)
        cpu_ms = (time.process_time() - cpu) / args.orders * 1000
        wall_ms = (time.perf_counter() - wall) / args.orders * 1000
        engine.dispose()
    print(f"{args.history} earlier orders: {cpu_ms:.1f} ms CPU, {wall_ms:.1f} ms wall per order")
    print(
        json.dumps(
            {
                "bench": "assessment",
                "history": args.history,
                "orders": args.orders,
                "cpu_ms": round(cpu_ms, 2),
                "wall_ms": round(wall_ms, 2),
                "load": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
