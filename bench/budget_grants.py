"""What one call budget grant costs the worker: CPU and wall microseconds per
`SharedBucket.take` on a fresh app database (`store/budgets.py`).

`.venv/bin/python -m bench.budget_grants [--grants 3000] [--database-url URL]` takes
grants from a bucket wide enough to grant every one, as the order runs do with budgets
lifted: with a run (each grant also deletes any place that run's earlier attempt kept)
and without. Default database: a SQLite file in a temp dir, the embedded default's.
Prints a line per kind and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from commerce_sync.store.budgets import BucketShape, SharedBucket
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        url = args.database_url or f"sqlite:///{Path(workdir) / 'bench.db'}"
        engine = make_engine(url)
        migrate(engine)
        bucket = SharedBucket(engine, f"bench-{os.getpid()}", WIDE_OPEN)
        bucket.take(time.time(), 1, None, wait=False)  # connection and statement caches
        results = {}
        for kind, with_run in (("with a run", True), ("without", False)):
            cpu_us, wall_us = grant_costs(bucket, args.grants, with_run=with_run)
            results[kind] = {"cpu_us": round(cpu_us, 1), "wall_us": round(wall_us, 1)}
            print(f"{kind}: {cpu_us:.0f} us CPU, {wall_us:.0f} us wall per grant")
        engine.dispose()
    print(
        json.dumps(
            {"bench": "budget_grants", "grants": args.grants, "load": os.getloadavg()[0]} | results
        )
    )


if __name__ == "__main__":
    main()
