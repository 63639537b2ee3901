"""Webhook ingest bench: signed store webhooks against `commerce-sync api`, Temporal up and down.

`.venv/bin/python -m bench.ingest` (also part of `make bench`) starts, in a temp dir it
deletes afterwards, the API exactly as `commerce-sync api` runs it (`--workers`
processes on one port, SQLite in WAL mode, access log on, payloads encrypted with
generated codec keys) and, for the "Temporal up" half, a Temporal dev server (no
worker: the runs the relay starts simply wait on their queue). Then, for each Temporal
state, two loads of signed `order.created` webhooks, Kentico and X-Cart in turn, each
with a fresh order id:

- open loop: `--rate` webhooks a second for `--seconds`, each sent at its planned time
  whatever the answers do; latency counts from the planned time, so a sender that
  falls behind shows up in the figures rather than hiding;
- closed loop: `--senders` concurrent senders, each sending its next webhook as soon as
  the previous one is answered, for `--seconds`.

A warm-up of `--warm-up` seconds (not measured) goes before each. Every run prints
accepted webhooks a second, p50/p95/p99/max latency, errors (any answer but 202, or no
answer) and the load average at its end (`/proc/loadavg`: the machine may be shared).
With Temporal up, the bench then waits for the relays to start every accepted event and
checks the database: every event recorded once, started once (`start_attempts` 1).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx
import sqlalchemy
from rich.console import Console
from rich.table import Table
from temporalio.converter import DataConverter

from bench.orders import (
    BenchError,
    DevServer,
    bench_main,
    die_with_parent,
    exit_skipping_teardown,
    free_port,
    percentile,
)
from commerce_sync.config.settings import Settings
from commerce_sync.intake.proofs import sign_standard_webhook

STORES = ("kentico", "xcart")
TASK_QUEUE = "commerce-sync-ingest-bench"


@dataclass
class RunFigures:
    temporal: str
    loop: str
    load: str
    """`--rate N/s` (open loop) or `--senders N` (closed loop)."""
    seconds: float
    sent: int
    accepted: int
    errors: dict[str, int]
    accepted_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    api_cpu_ms: float
    """CPU time of the API processes per accepted webhook (their relays' included)."""
    sender_cpu_ms: float
    """CPU time of this bench process (the senders) per webhook sent."""
    loadavg: str
    """`/proc/loadavg` at the run's end."""


@dataclass
class RelayCheck:
    accepted: int
    recorded: int
    started: int
    started_more_than_once: int
    drained_in_s: float | None
    """From the end of the runs until every recorded event was started (None: not all were
    within the wait)."""


@dataclass
class IngestResult:
    workers: int
    cpus: int
    runs: list[RunFigures] = field(default_factory=list)
    relay: RelayCheck | None = None


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found = [pid]
    for each in found:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{each}/task").iterdir():
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "n/a"


# ---- the API under test --------------------------------------------------------------


class Api:
    """`commerce-sync api --workers N` in a process of its own, on a fresh SQLite file, or
    on the Postgres database given (emptied first)."""

    def __init__(
        self, data_dir: Path, temporal_target: str, workers: int, database_url: str | None
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.database_url = database_url or f"sqlite:///{data_dir / 'commerce-sync.db'}"
        self.secrets = {
            store: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode() for store in STORES
        }
        self.env = {
            **os.environ,
            "COMMERCE_SYNC_USE_SANDBOXES": "true",
            "COMMERCE_SYNC_DATA_DIR": str(data_dir),
            "COMMERCE_SYNC_DATABASE_URL": self.database_url,
            "COMMERCE_SYNC_TEMPORAL_ADDRESS": temporal_target,
            "COMMERCE_SYNC_TASK_QUEUE": TASK_QUEUE,
            "COMMERCE_SYNC_WEBHOOKS__KENTICO": self.secrets["kentico"],
            "COMMERCE_SYNC_WEBHOOKS__XCART": self.secrets["xcart"],
            "COMMERCE_SYNC_WEBHOOKS__BRIGHTPEARL_TOKEN": secrets.token_urlsafe(16),
            "COMMERCE_SYNC_WEBHOOKS__ACUMATICA_TOKEN": secrets.token_urlsafe(16),
        }
        self.log_path = data_dir / "api.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        from sandboxes.embedded import ensure_codec_keys

        # Encrypted payloads, as under `commerce-sync up` (the API picks the keys up).
        ensure_codec_keys(Settings(_env_file=None, data_dir=self.data_dir))
        self._log = open(self.log_path, "ab")  # closed in stop()
        argv = [sys.executable, "-m", "commerce_sync.cli", "api", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*argv, "--workers", str(self.workers)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until every worker answers: /healthz a few times over fresh connections."""
        deadline = time.monotonic() + timeout_s
        answered = 0
        while answered < 4 * self.workers:
            if self.process is None or self.process.poll() is not None:
                raise BenchError(f"the API exited at start; see {self.tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"the API did not answer in {timeout_s:.0f} s: {self.tail()}")
            try:
                async with httpx.AsyncClient(timeout=2.0) as client:
                    ok = (await client.get(f"{self.url}/healthz")).status_code == 200
                answered = answered + 1 if ok else 0
            except httpx.HTTPError:
                answered = 0
                await asyncio.sleep(0.2)

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
            return " | ".join(lines[-3:]) if lines else "(no output)"
        return "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def empty_database(self) -> None:
        """A Postgres database starts empty (the API migrates it at start): every table of
        the `public` schema is dropped. A SQLite file is new anyway."""
        if self.database_url.startswith("sqlite"):
            return
        engine = sqlalchemy.create_engine(self.database_url)
        try:
            with engine.begin() as db:
                db.execute(sqlalchemy.text("DROP SCHEMA public CASCADE"))
                db.execute(sqlalchemy.text("CREATE SCHEMA public"))
        finally:
            engine.dispose()

    def events(self) -> tuple[int, int, int]:
        """(recorded, started, started more than once) in the API's database."""
        engine = sqlalchemy.create_engine(self.database_url)
        try:
            with engine.connect() as db:
                row = db.execute(
                    sqlalchemy.text(
                        "SELECT COUNT(*),"
                        " SUM(CASE WHEN status = 'started' THEN 1 ELSE 0 END),"
                        " SUM(CASE WHEN start_attempts > 1 THEN 1 ELSE 0 END)"
                        " FROM webhook_events"
                    )
                ).one()
        finally:
            engine.dispose()
        return int(row[0]), int(row[1] or 0), int(row[2] or 0)


# ---- the senders ---------------------------------------------------------------------


class Webhooks:
    """Signed `order.created` deliveries, Kentico and X-Cart in turn, fresh ids each."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.count = 0
        self.run = uuid.uuid4().hex[:6]

    def next(self) -> tuple[str, bytes, dict[str, str]]:
        self.count += 1
        store = STORES[self.count % 2]
        body = json.dumps(
            {
                "type": "order.created",
                "timestamp": datetime.now(UTC).isoformat(),
                "data": {"id": f"b{self.run}{self.count}", "store": store},
            }
        ).encode()
        headers = sign_standard_webhook(
            self.api.secrets[store], f"msg_{self.run}_{self.count}", datetime.now(UTC), body
        )
        headers["content-type"] = "application/json"
        return f"/webhooks/{store}", body, headers


class Connection:
    """One keep-alive HTTP/1.1 connection, requests written and answers read by hand: a
    general client (httpx) costs the bench more CPU per request than the API spends
    answering it, and this machine has two cores for both."""

    def __init__(self, url: str) -> None:
        parts = httpx.URL(url)
        self.host, self.port = parts.host, parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        """The answer's status; the connection is opened again when the server closed it."""
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = [f"POST {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"content-length: {len(body)}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        try:
            answer = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise
        lines = answer.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        keep = True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                keep = False
        if length:
            await self.reader.readexactly(length)
        if not keep:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0

    async def send(self, connection: Connection, hooks: Webhooks, since: float) -> None:
        """One delivery; its latency counts from `since` (the planned or the send time)."""
        path, body, headers = hooks.next()
        self.sent += 1
        try:
            status = await connection.post(path, body, headers)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            self.errors[type(exc).__name__] += 1
            return
        if status == 202:
            self.latencies.append(time.perf_counter() - since)
        else:
            self.errors[str(status)] += 1


class Pool:
    """Idle connections, reused; a new one whenever all are busy (an open loop sends on
    schedule whatever is still waiting for its answer)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.idle: list[Connection] = []

    async def send(self, tally: Tally, hooks: Webhooks, since: float) -> None:
        connection = self.idle.pop() if self.idle else Connection(self.url)
        try:
            await tally.send(connection, hooks, since)
        finally:
            self.idle.append(connection)

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


async def open_loop(hooks: Webhooks, rate: float, seconds: float) -> tuple[Tally, float]:
    """`rate` deliveries a second at their planned times, however the answers come."""
    tally = Tally()
    total = int(rate * seconds)
    pool = Pool(hooks.api.url)
    start = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for index in range(total):
        planned = start + index / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(pool.send(tally, hooks, planned)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    pool.close()
    return tally, elapsed


async def closed_loop(hooks: Webhooks, senders: int, seconds: float) -> tuple[Tally, float]:
    """`senders` senders, each sending again as soon as it is answered."""
    tally = Tally()
    start = time.perf_counter()
    until = start + seconds

    async def sender() -> None:
        connection = Connection(hooks.api.url)
        while time.perf_counter() < until:
            await tally.send(connection, hooks, time.perf_counter())
        connection.close()

    await asyncio.gather(*(sender() for _ in range(senders)))
    elapsed = time.perf_counter() - start
    return tally, elapsed


def figures(
    temporal: str,
    loop: str,
    load: str,
    tally: Tally,
    elapsed: float,
    cpu: tuple[float, float],
) -> RunFigures:
    ms = [latency * 1000 for latency in tally.latencies] or [float("nan")]
    api_cpu, sender_cpu = cpu
    return RunFigures(
        temporal=temporal,
        loop=loop,
        load=load,
        seconds=round(elapsed, 2),
        sent=tally.sent,
        accepted=len(tally.latencies),
        errors=dict(tally.errors),
        accepted_per_s=round(len(tally.latencies) / elapsed, 1),
        p50_ms=round(percentile(ms, 50), 1),
        p95_ms=round(percentile(ms, 95), 1),
        p99_ms=round(percentile(ms, 99), 1),
        max_ms=round(max(ms), 1),
        api_cpu_ms=round(api_cpu * 1000 / max(len(tally.latencies), 1), 2),
        sender_cpu_ms=round(sender_cpu * 1000 / max(tally.sent, 1), 2),
        loadavg=loadavg(),
    )


async def measure(api: Api, temporal: str, args: argparse.Namespace, result: IngestResult) -> int:
    """The open and the closed loop against one API; how many webhooks were accepted."""
    hooks = Webhooks(api)
    accepted = 0
    assert api.process is not None
    api_pids = process_tree(api.process.pid)

    def cpu_now() -> tuple[float, float]:
        return cpu_seconds(api_pids), time.process_time()

    def used(since: tuple[float, float]) -> tuple[float, float]:
        now = cpu_now()
        return now[0] - since[0], now[1] - since[1]

    if "open" in args.loops:
        await open_loop(hooks, args.rate, args.warm_up)
        before = cpu_now()
        tally, elapsed = await open_loop(hooks, args.rate, args.seconds)
        cpu = used(before)
        result.runs.append(figures(temporal, "open", f"{args.rate:g}/s", tally, elapsed, cpu))
    if "closed" in args.loops:
        await closed_loop(hooks, args.senders, args.warm_up)
        before = cpu_now()
        tally, elapsed = await closed_loop(hooks, args.senders, args.seconds)
        cpu = used(before)
        load = f"{args.senders} senders"
        result.runs.append(figures(temporal, "closed", load, tally, elapsed, cpu))
    with contextlib.suppress(Exception):
        accepted = api.events()[0]
    return accepted


async def drained(api: Api, accepted: int, wait_s: float) -> RelayCheck:
    """Wait for the relays to start every recorded event; what the database then says."""
    start = time.monotonic()
    drained_in: float | None = None
    while True:
        recorded, started, twice = api.events()
        if started >= recorded:
            drained_in = round(time.monotonic() - start, 1)
            break
        if time.monotonic() - start > wait_s:
            break
        await asyncio.sleep(0.5)
    return RelayCheck(accepted, recorded, started, twice, drained_in)


async def run(args: argparse.Namespace) -> IngestResult:
    result = IngestResult(workers=args.workers, cpus=os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        for temporal in args.temporal:
            data_dir = Path(tmp) / f"temporal-{temporal}"
            data_dir.mkdir()
            server = DevServer(data_dir) if temporal == "up" else None
            target = server.target if server else f"127.0.0.1:{free_port()}"  # nothing there
            api = Api(data_dir, target, args.workers, args.database_url)
            api.empty_database()
            try:
                if server is not None:
                    server.start()
                    await server.connect(DataConverter.default)
                api.start()
                await api.wait_ready()
                accepted = await measure(api, temporal, args, result)
                if server is not None:
                    result.relay = await drained(api, accepted, args.drain_wait)
            finally:
                api.stop()
                if server is not None:
                    server.stop()
    return result


# ---- report --------------------------------------------------------------------------


def report(result: IngestResult, out: Console) -> None:
    table = Table(
        title=f"Webhook ingest: {result.workers} API processes on {result.cpus} CPUs",
        title_justify="left",
    )
    for name in ("Temporal", "loop", "load", "accepted/s", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(name, justify="right" if name.endswith(("/s", "ms")) else "left")
    table.add_column("max ms", justify="right")
    table.add_column("errors")
    table.add_column("API CPU ms/hook", justify="right")
    table.add_column("sender CPU ms/hook", justify="right")
    table.add_column("loadavg at end")
    for run_ in result.runs:
        table.add_row(
            run_.temporal,
            run_.loop,
            run_.load,
            f"{run_.accepted_per_s:.1f}",
            f"{run_.p50_ms:.1f}",
            f"{run_.p95_ms:.1f}",
            f"{run_.p99_ms:.1f}",
            f"{run_.max_ms:.1f}",
            ", ".join(f"{k}: {v}" for k, v in run_.errors.items()) or "0",
            f"{run_.api_cpu_ms:.2f}",
            f"{run_.sender_cpu_ms:.2f}",
            run_.loadavg,
        )
    out.print(table)
    if result.relay is not None:
        relay = result.relay
        drain = f"in {relay.drained_in_s:g} s" if relay.drained_in_s is not None else "NOT ALL"
        out.print(
            f"Temporal up: {relay.recorded} events recorded, {relay.started} started "
            f"({drain} after the last run), {relay.started_more_than_once} started more "
            "than once"
        )
    out.print(json.dumps(asdict(result)), soft_wrap=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="API processes (default: one per CPU, as api_workers)",
    )
    parser.add_argument("--rate", type=float, default=300.0, help="open loop: webhooks a second")
    parser.add_argument("--senders", type=int, default=16, help="closed loop: concurrent senders")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time of each run")
    parser.add_argument("--warm-up", type=float, default=2.0, help="unmeasured time before each")
    parser.add_argument(
        "--temporal", choices=["both", "up", "down"], default="both", help="Temporal states"
    )
    parser.add_argument("--loops", choices=["both", "open", "closed"], default="both")
    parser.add_argument(
        "--database-url",
        help="a throwaway Postgres database for the API (every table in its public schema is"
        " dropped before each Temporal state); default: a fresh SQLite file, as embedded",
    )
    parser.add_argument(
        "--drain-wait", type=float, default=120.0, help="Temporal up: wait for the relays"
    )
    args = parser.parse_args(argv)
    args.temporal = ["up", "down"] if args.temporal == "both" else [args.temporal]
    args.loops = ["open", "closed"] if args.loops == "both" else [args.loops]
    if args.workers < 1 or args.rate <= 0 or args.senders < 1 or args.seconds <= 0:
        parser.error("--workers, --rate, --senders and --seconds must be positive")
    return args


if __name__ == "__main__":
    exit_skipping_teardown(bench_main(sys.argv[1:], parse_args, run, report, width=140))
