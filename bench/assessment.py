"""What the anomaly assessment costs an order once the pair has a history: CPU and wall
milliseconds per `record_order_and_history` (`store/orders_seen.py`), and CPU milliseconds
of the checks on what it read (`anomaly_flags_both_ways`, `domain/anomalies.py`), both ways
as `DatabaseActivities.assess_order` runs them while the ERP has not said whether the
customer is new.

`.venv/bin/python -m bench.assessment [--history 3000] [--orders 50] [--new-customers]
[--database-url URL]` writes `--history` earlier orders one a minute (each naming 2 of 50
SKUs, 500 e-mails, 700 addresses, one country), in one go and not measured, then times
`--orders` more: each records itself and reads the store sample (up to 2,000 earlier
orders), the customer's totals and the window's counts, and is then weighed by the
packaged pairs.toml's kentico-brightpearl rules. A returning customer (3000 earlier orders
from 500 e-mails) is weighed against their own totals; with `--new-customers` the timed
orders come from new e-mails and are weighed against the store's sample, as most orders
of most shops are. Default database: a SQLite file in a temp dir, the embedded default's;
a `--database-url` is a throwaway one (migrated, and left holding the bench's orders).
Prints a line and a JSON line with the 1-minute load average.
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

from sqlmodel import Session

from commerce_sync.config.pairs import default_pairs_path, load_pairs
from commerce_sync.domain.anomalies import anomaly_flags_both_ways
from commerce_sync.domain.models import Address, Customer, Order, OrderLine, Origin
from commerce_sync.store.db import make_engine, migrate
from commerce_sync.store.orders_seen import (
    OrderFacts,
    SeenBefore,
    record_order_and_history,
    seen_row,
)

PAIR = "kentico-brightpearl"
START = datetime(2026, 11, 1, tzinfo=UTC)
HISTORY_DAYS = 90
ADDRESS_WINDOW_DAYS = 30


def order(index: int, rng: random.Random, *, new_customer: bool = False) -> OrderFacts:
    return OrderFacts(
        pair=PAIR,
        store_order_id=str(index),
        email_key=f"new-{index}" if new_customer else f"email-{index % 500}",
        address_key=f"address-{index % 700}",
        placed_at=START + timedelta(minutes=index),
        currency="USD",
        total=Decimal(rng.randint(1000, 50000)) / 100,
        billing_country="US",
        shipping_country="US",
        sku_quantities={f"SKU-{rng.randint(1, 50)}": rng.randint(1, 3) for _ in range(2)},
    )


def canonical(facts: OrderFacts) -> Order:
    """The order the facts were taken from, as far as the checks read it."""
    address = Address(
        name="Bench Shopper",
        line1="1 Bench St",
        city="Benchville",
        postal_code="10001",
        country=facts.billing_country,
    )
    return Order(
        origin=Origin(system="kentico", external_id=facts.store_order_id),
        number=facts.store_order_id,
        placed_at=facts.placed_at,
        currency=facts.currency,
        customer=Customer(email=f"{facts.email_key}@example.org", first_name="Bench",
                          last_name="Shopper"),
        billing_address=address,
        shipping_address=address,
        lines=[
            OrderLine(sku=sku, quantity=quantity, unit_price=Decimal("1.00"))
            for sku, quantity in facts.sku_quantities.items()
        ],
        total=facts.total,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.assessment")
    parser.add_argument("--history", type=int, default=3000, help="earlier orders (3000)")
    parser.add_argument("--orders", type=int, default=50, help="orders timed (50)")
    parser.add_argument("--database-url", default=None, help="default: a temp SQLite file")
    parser.add_argument(
        "--new-customers",
        action="store_true",
        help="the timed orders come from e-mails with no earlier order, so the checks weigh "
        "them against the store's sample (up to 2,000 totals), not the customer's own",
    )
    args = parser.parse_args()
    if args.history < 0 or args.orders < 1:
        parser.error("--history must be 0 or more and --orders 1 or more")
    rng = random.Random(15)
    with tempfile.TemporaryDirectory() as workdir:
        url = args.database_url or f"sqlite:///{Path(workdir) / 'bench.db'}"
        engine = make_engine(url)
        migrate(engine)

        rules = load_pairs(default_pairs_path())[PAIR].anomalies

        def record(facts: OrderFacts) -> SeenBefore:
            return record_order_and_history(
                engine,
                facts,
                history_days=HISTORY_DAYS,
                address_window_days=ADDRESS_WINDOW_DAYS,
            )

        # The earlier orders written in one go, as their assessments would have written them.
        with Session(engine) as session:
            session.add_all(seen_row(order(index, rng)) for index in range(args.history))
            session.commit()
        read_cpu = read_wall = checks_cpu = 0.0
        for index in range(args.history, args.history + args.orders):
            facts = order(index, rng, new_customer=args.new_customers)
            cpu, wall = time.process_time(), time.perf_counter()
            seen = record(facts)
            read_cpu += time.process_time() - cpu
            read_wall += time.perf_counter() - wall
            weighed, cpu = canonical(facts), time.process_time()
            anomaly_flags_both_ways(weighed, seen.history, rules)
            checks_cpu += time.process_time() - cpu
        cpu_ms = read_cpu / args.orders * 1000
        wall_ms = read_wall / args.orders * 1000
        checks_ms = checks_cpu / args.orders * 1000
        engine.dispose()
    print(
        f"{args.history} earlier orders: history read {cpu_ms:.1f} ms CPU, {wall_ms:.1f} ms "
        f"wall; checks (both ways) {checks_ms:.1f} ms CPU per order"
    )
    print(
        json.dumps(
            {
                "bench": "assessment",
                "history": args.history,
                "orders": args.orders,
                "new_customers": args.new_customers,
                "cpu_ms": round(cpu_ms, 2),
                "wall_ms": round(wall_ms, 2),
                "checks_cpu_ms": round(checks_ms, 2),
                "load": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
