"""What the shape of a run costs Temporal: the raw ceiling's bare workflow, and the same
workflow with one thing an order run does more, on the embedded default's dev server.

`bench/orders.py` compares orders with bare workflows of as many steps (the ceiling). An
order run differs from those in more than the work its steps do; this bench prices each
difference on its own, so the ratio to the ceiling can be read:

- `bare`: 6 activities and 2 local activities doing nothing, on the workflow's own task
  queue, as the ceiling's. The SDK asks for such activities eagerly: the server hands
  each back with the completion of the workflow task that scheduled it, no matching.
- `system-queue`: the activities on another task queue, as an order run's go to the
  outside system's queue (`worker.py`): each is matched through that queue.
- `upserts`: four `SyncState` search-attribute upserts, as an order run makes before it
  waits for the shipment (each a visibility write on the server).
- `payloads`: every step's argument and result 3,000 bytes (an order run's are 1-5 KB).
- `order-shaped`: all three.

`.venv/bin/python -m bench.temporal_costs [--workflows 200] [--rounds 3]` runs the shapes
in turn, round after round (so a slow stretch of the machine falls on every shape), each
on a task queue of its own, the worker in this process as the order bench's. Prints a
line per shape and round, then a JSON line: workflows per second (first start to last
result, as seen here), and the dev server's and this process's CPU milliseconds per
workflow, each round with the 1-minute load average at its end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.converter import DataConverter

from bench.bare_workflow import CostProbeWorkflow, ProbeShape
from bench.cpu import process_cpu_s
from bench.orders import BenchError, DevServer, bounded
from bench.probe_workers import probe_workers

BARE = ProbeShape(activities=6, local_activities=2)
SHAPES: dict[str, ProbeShape] = {
    "bare": BARE,
    "system-queue": dataclasses.replace(BARE, activity_queue="bench-costs-system"),
    "upserts": dataclasses.replace(BARE, upserts=4),
    "payloads": dataclasses.replace(BARE, pad_bytes=3000),
    "order-shaped": dataclasses.replace(
        BARE, activity_queue="bench-costs-system", upserts=4, pad_bytes=3000
    ),
}


@dataclasses.dataclass
class Round:
    shape: str
    workflows_per_s: float
    server_cpu_ms: float
    worker_cpu_ms: float
    load: float


async def run_shape(client: Client, server_pid: int, name: str, count: int, tag: str) -> Round:
    shape = SHAPES[name]
    queue = f"bench-costs-{tag}"
    async with probe_workers(client, shape, queue):
        await client.execute_workflow(
            CostProbeWorkflow.run, shape, id=f"{tag}-warm-up", task_queue=queue
        )
        server_before, own_before = process_cpu_s(server_pid), time.process_time()
        started = time.monotonic()

        def start(index: int) -> Callable[[], Awaitable[WorkflowHandle[Any, int]]]:
            return lambda: client.start_workflow(
                CostProbeWorkflow.run, shape, id=f"{tag}-{index}", task_queue=queue
            )

        handles = await bounded(start(index) for index in range(count))
        await asyncio.gather(*(handle.result() for handle in handles))
        elapsed = time.monotonic() - started
        server_after, own_after = process_cpu_s(server_pid), time.process_time()
    return Round(
        shape=name,
        workflows_per_s=count / elapsed,
        server_cpu_ms=(server_after - server_before) / count * 1000,
        worker_cpu_ms=(own_after - own_before) / count * 1000,
        load=os.getloadavg()[0],
    )


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="commerce-sync-costs-") as data_dir:
        server = DevServer(Path(data_dir))
        server.start()
        try:
            assert server.process is not None
            client = await server.connect(DataConverter.default)
            for number in range(args.rounds):
                for name in SHAPES:
                    result = await run_shape(
                        client, server.process.pid, name, args.workflows, f"{name}-{number}"
                    )
                    rounds.append(result)
                    print(
                        f"round {number + 1} {name:>12}: {result.workflows_per_s:5.1f} wf/s,"
                        f" server {result.server_cpu_ms:5.1f} ms, worker"
                        f" {result.worker_cpu_ms:5.1f} ms per workflow (load {result.load:.2f})",
                        file=sys.stderr,
                    )
        finally:
            server.stop()
    medians = {
        name: {
            field: round(statistics.median(getattr(r, field) for r in rounds if r.shape == name), 2)
            for field in ("workflows_per_s", "server_cpu_ms", "worker_cpu_ms")
        }
        for name in SHAPES
    }
    return {
        "bench": "temporal_costs",
        "workflows": args.workflows,
        "shapes": {name: dataclasses.asdict(shape) for name, shape in SHAPES.items()},
        "medians": medians,
        "rounds": [dataclasses.asdict(r) for r in rounds],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.temporal_costs", description=__doc__)
    parser.add_argument("--workflows", type=int, default=200, help="workflows per shape and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all shapes")
    args = parser.parse_args()
    if args.workflows < 1 or args.rounds < 1:
        raise SystemExit("bench.temporal_costs: --workflows and --rounds must be at least 1")
    try:
        print(json.dumps(asyncio.run(bench(args))))
    except BenchError as exc:
        raise SystemExit(f"bench.temporal_costs: {exc}") from None


if __name__ == "__main__":
    main()
