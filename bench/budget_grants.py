"""What one call budget grant costs the worker: CPU and wall microseconds per
`SharedBucket.take` on a fresh app database (`store/budgets.py`).

`.venv/bin/python -m bench.budget_grants [--grants 3000] [--database-url URL]` takes
grants from a bucket wide enough to grant every one, as the order runs do with budgets
lifted: with a run (each grant also deletes any place that run's earlier attempt kept)
and without. `--lapsed N` first leaves N lapsed waiting rows in the bucket's system, as
processes that died while waiting and kept places no retry took up leave them, and times
grants with them on record and again once a new waiting row was recorded (which deletes
rows lapsed over a minute ago). Default database: a SQLite file in a temp dir, the
embedded default's. Prints a line per kind and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from commerce_sync.store.budgets import WAITERS, BucketShape, SharedBucket
from commerce_sync.store.db import make_engine, migrate

WIDE_OPEN = BucketShape(interval_s=1e-6, burst=1_000_000)


def grant_costs(bucket: SharedBucket, grants: int, *, with_run: bool) -> tuple[float, float]:
    """Microseconds of CPU (this process) and wall time per grant."""
    cpu, wall = time.process_time(), time.perf_counter()
    for index in range(grants):
        run = f"run-{index}" if with_run else None
        waited = bucket.take(time.time(), 1, None, wait=False, run=run)
        if waited != 0.0:
            raise SystemExit(f"bench.budget_grants: grant {index} was refused ({waited} s)")
    return (
        (time.process_time() - cpu) / grants * 1e6,
        (time.perf_counter() - wall) / grants * 1e6,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.budget_grants")
    parser.add_argument("--grants", type=int, default=3000, help="grants per kind (3000)")
    parser.add_argument("--database-url", default=None, help="default: a temp SQLite file")
    parser.add_argument(
        "--lapsed", type=int, default=0, help="lapsed waiting rows left on record first (0)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        url = args.database_url or f"sqlite:///{Path(workdir) / 'bench.db'}"
        engine = make_engine(url)
        migrate(engine)
        bucket = SharedBucket(engine, f"bench-{os.getpid()}", WIDE_OPEN)
        bucket.take(time.time(), 1, None, wait=False)  # connection and statement caches
        results = {}

        def measure(kind: str, *, with_run: bool) -> None:
            cpu_us, wall_us = grant_costs(bucket, args.grants, with_run=with_run)
            results[kind] = {"cpu_us": round(cpu_us, 1), "wall_us": round(wall_us, 1)}
            print(f"{kind}: {cpu_us:.0f} us CPU, {wall_us:.0f} us wall per grant")

        for kind, with_run in (("with a run", True), ("without", False)):
            measure(kind, with_run=with_run)
        if args.lapsed:
            lapsed_at = time.time() - 3600.0
            rows = [
                {"system": bucket.system, "holder": f"gone-{index}", "priority": 1,
                 "since": lapsed_at, "expires_at": lapsed_at}
                for index in range(args.lapsed)
            ]  # fmt: skip
            with engine.begin() as conn:
                conn.execute(WAITERS.insert(), rows)
            measure(f"{args.lapsed} lapsed rows on record", with_run=False)
            now = time.time()
            bucket.keep_place("bench-run", 1, now, now + 5.0, now=now)
            bucket.take(now, 1, now, wait=False, run="bench-run")  # its retry takes it up
            measure("after a waiting row was recorded", with_run=False)
        engine.dispose()
    print(
        json.dumps(
            {
                "bench": "budget_grants",
                "grants": args.grants,
                "lapsed": args.lapsed,
                "load": os.getloadavg()[0],
            }
            | results
        )
    )


if __name__ == "__main__":
    main()
