"""`commerce-sync up` as a user runs it: one process tree that serves, survives a
restart with its data, refuses a second copy, and leaves nothing behind on Ctrl-C."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import pytest
from playwright.sync_api import sync_playwright

from sandboxes.embedded import temporal_binary
from tests.e2e.ports import free_ports

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by `make test`


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


STARTED: list[Up] = []


def encrypted_payloads(node: Any) -> Iterator[dict[str, Any]]:
    """Every payload under the codec's encoding in a JSON history, depth first."""
    sealed = base64.b64encode(b"binary/encrypted").decode()
    if isinstance(node, dict):
        if (node.get("metadata") or {}).get("encoding") == sealed and "data" in node:
            yield node
        for value in node.values():
            yield from encrypted_payloads(value)
    elif isinstance(node, list):
        for value in node:
            yield from encrypted_payloads(value)


class Up:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        STARTED.append(self)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "commerce_sync.cli", "up"],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None

    def wait_until_up(self, timeout_s: float = 120.0) -> None:
        """Read up's banner; from then on a thread keeps reading what it prints, so a
        test can wait for a line without blocking on a pipe that stays quiet."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"up exited early: {''.join(self.lines)}")
            self.lines.append(line)
            if line.startswith("Ctrl-C stops everything"):
                self._reader = threading.Thread(target=self._read_rest, daemon=True)
                self._reader.start()
                return
        raise AssertionError(f"up did not come up: {''.join(self.lines)}")

    def _read_rest(self) -> None:
        assert self.process.stdout is not None
        with contextlib.suppress(ValueError, OSError):
            for line in self.process.stdout:
                self.lines.append(line)

    def printed(self, text: str) -> bool:
        return text in "".join(self.lines)

    def collect_output(self) -> None:
        """Everything up printed until it exited (call after the process ended)."""
        if self._reader is not None:
            self._reader.join(timeout=10)
        elif self.process.stdout is not None:
            with contextlib.suppress(ValueError, OSError):
                self.lines += self.process.stdout.readlines()

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=90)
        self.collect_output()
        return code


@pytest.fixture(autouse=True)
def stop_leftovers(tmp_path: Path) -> Iterator[None]:
    """A test that fails half-way must not leave `up` (and its Temporal) running; what
    `up` printed and the ends of its children's logs are shown when a test fails."""
    yield
    while STARTED:
        up = STARTED.pop()
        if up.process.poll() is None:
            tree = descendants(up.process.pid)
            up.process.send_signal(signal.SIGINT)
            try:
                up.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                for pid in [up.process.pid, *tree]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        up.collect_output()
        print("----- up -----\n" + "".join(up.lines))
    for log in sorted((tmp_path / ".data" / "logs").glob("*.log")):
        print(f"----- {log.name} (last lines) -----")
        print("\n".join(log.read_text(errors="replace").splitlines()[-40:]))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    temporal, ui, api, sandbox = free_ports(4)
    yield {
        **os.environ,
        "COMMERCE_SYNC_DATA_DIR": str(tmp_path / ".data"),
        "COMMERCE_SYNC_TEMPORAL_PORT": str(temporal),
        "COMMERCE_SYNC_TEMPORAL_UI_PORT": str(ui),
        "COMMERCE_SYNC_API_PORT": str(api),
        "COMMERCE_SYNC_SANDBOX_PORT": str(sandbox),
    }


SHOPPER_ORDER = {
    "customer": {"email": "jane@example.com", "first_name": "Jane", "last_name": "Doe"},
    "shipping_address": {
        "line1": "1 Main St",
        "city": "Austin",
        "region": "TX",
        "postal_code": "78701",
        "country": "US",
    },
    "lines": [{"sku": "WIDGET-1", "quantity": 2}],
    "currency": "USD",
    "shipping_method": "ground",
    "payment": {"method": "card", "reference": "ch_up_test"},
}


def wait_for(check: Callable[[], T | Literal[False] | None], timeout_s: float = 60.0) -> T:
    """Poll `check`; a request that times out or is cut off (a busy machine) counts as
    "not yet", not as a failure."""
    deadline = time.monotonic() + timeout_s
    last: T | Literal[False] | Exception | None = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.3)
    raise AssertionError(f"timed out; last saw {last!r}")


def test_up_serves_survives_a_restart_and_leaves_nothing_behind(
    env: dict[str, str], tmp_path: Path
) -> None:
    api = f"http://127.0.0.1:{env['COMMERCE_SYNC_API_PORT']}"
    ui = f"http://127.0.0.1:{env['COMMERCE_SYNC_TEMPORAL_UI_PORT']}"
    sandbox = f"http://127.0.0.1:{env['COMMERCE_SYNC_SANDBOX_PORT']}"

    first = Up(env, tmp_path)
    first.wait_until_up()
    tree = descendants(first.process.pid)
    assert len(tree) >= 4, tree  # temporal, sandboxes, api, worker
    assert httpx.get(f"{api}/healthz").json() == {"status": "ok"}
    assert httpx.get(ui).status_code == 200
    assert wait_for(lambda: httpx.get(f"{api}/readyz").status_code == 200)
    data = tmp_path / ".data"
    # What up writes (databases, secrets, keys, logs) is the user's alone.
    assert data.stat().st_mode & 0o777 == 0o700
    for name in ("commerce-sync.db", "temporal.db", "secrets.json", "codec-keys.json"):
        assert (data / name).stat().st_mode & 0o777 == 0o600, name
    assert (data / "logs").stat().st_mode & 0o777 == 0o700
    assert {log.stat().st_mode & 0o777 for log in (data / "logs").iterdir()} == {0o600}

    key = json.loads((tmp_path / ".data" / "secrets.json").read_text())["operator_api_key"]
    headers = {"authorization": f"Bearer {key}"}
    placed = httpx.post(f"{sandbox}/kentico/_sandbox/orders", json=SHOPPER_ORDER).json()
    status_url = f"{api}/orders/kentico-brightpearl/{placed['id']}"
    waiting = wait_for(
        lambda: (
            (r := httpx.get(status_url, headers=headers)).status_code == 200
            and r.json()["status"]["state"] == "awaiting_shipment"
            and r.json()
        )
    )
    erp_order = waiting["status"]["erp_order_id"]

    # The Temporal CLI, pointed at the profile up wrote, shows decoded payloads.
    config = tmp_path / ".data" / "temporal.toml"
    assert f"export TEMPORAL_CONFIG_FILE={config}" in "".join(first.lines)
    cli_env = {**env, "TEMPORAL_CONFIG_FILE": str(config)}
    workflow_id = f"order:kentico-brightpearl:{placed['id']}"
    query = subprocess.run(
        [temporal_binary(), "workflow", "query", "-w", workflow_id, "--name", "status"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert query.returncode == 0, query.stderr
    assert '"state":"awaiting_shipment"' in query.stdout.replace(" ", "")
    shown = subprocess.run(
        [temporal_binary(), "workflow", "show", "-w", workflow_id, "-o", "json"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    # Decoded: every payload is plain JSON again, none still under the codec's encoding.
    assert base64.b64encode(b"json/plain").decode() in shown.stdout
    assert base64.b64encode(b"binary/encrypted").decode() not in shown.stdout

    # The Web UI decodes with no step of anyone's: the codec endpoint its settings give
    # the browser is the API's UI-token route, which decodes a payload read raw.
    ui = f"http://127.0.0.1:{env['COMMERCE_SYNC_TEMPORAL_UI_PORT']}"
    endpoint = httpx.get(f"{ui}/api/v1/settings").json()["Codec"]["Endpoint"]
    assert endpoint.startswith(f"{api}/codec/ui/")
    raw = subprocess.run(
        [temporal_binary(), "workflow", "show", "-w", workflow_id, "-o", "json"],
        env={**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{env['COMMERCE_SYNC_TEMPORAL_PORT']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert raw.returncode == 0, raw.stderr
    sealed = next(encrypted_payloads(json.loads(raw.stdout)))
    decoded = httpx.post(
        f"{endpoint}/decode",
        json={"payloads": [sealed]},
        headers={"origin": ui, "x-namespace": "default"},
    )
    assert decoded.status_code == 200, decoded.text
    assert decoded.headers["access-control-allow-origin"] == ui
    [plain] = decoded.json()["payloads"]
    assert base64.b64decode(plain["metadata"]["encoding"]) == b"json/plain"

    # An order over the pair's risk threshold waits; why is in its current details.
    big = {
        **SHOPPER_ORDER,
        "customer": {"email": "big@example.com", "first_name": "Bea", "last_name": "Big"},
        "lines": [{"sku": "WIDGET-1", "quantity": 1, "unit_price": "5000.00"}],
    }
    held = httpx.post(f"{sandbox}/kentico/_sandbox/orders", json=big).json()
    held_url = f"{api}/orders/kentico-brightpearl/{held['id']}"
    assert wait_for(
        lambda: (
            (r := httpx.get(held_url, headers=headers)).status_code == 200
            and r.json()["status"]["state"] == "awaiting_approval"
        )
    )

    def run_page(workflow: str, tab: str) -> str:
        described = httpx.get(f"{ui}/api/v1/namespaces/default/workflows/{workflow}").json()
        run_id = described["workflowExecutionInfo"]["execution"]["runId"]
        return f"{ui}/namespaces/default/workflows/{workflow}/{run_id}/{tab}"

    # In a real browser: the Web UI's page of the run shows its input decoded, no codec
    # banner; the waiting order's page says why it waits; /docs (served offline) lists
    # the API's routes.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            page.goto(run_page(workflow_id, "history"))
            page.get_by_text("store_order_id").first.wait_for(timeout=60_000)
            assert page.get_by_text("Codec Server could not connect").count() == 0
            # Current details are rendered (as markdown) in a frame of their own.
            page.goto(run_page(f"order:kentico-brightpearl:{held['id']}", "user-metadata"))
            details = page.frame_locator("iframe").first
            details.get_by_text("total 5000.00 USD is over 1000.00").wait_for(timeout=60_000)
            page.goto(f"{api}/docs")
            paths = page.locator(".opblock-summary-path")
            paths.first.wait_for(timeout=30_000)
            listed = set(paths.all_inner_texts())
            assert {"/orders/{pair}/{store_order_id}", "/runs", "/dead-letters"} <= {
                text.replace("\u200b", "") for text in listed
            }
        finally:
            browser.close()

    second = subprocess.run(
        [sys.executable, "-m", "commerce_sync.cli", "up"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert second.stderr.strip().count("\n") == 0
    assert (
        f"port {env['COMMERCE_SYNC_TEMPORAL_PORT']} (Temporal) is already in use" in second.stderr
    )

    assert first.interrupt() == 0
    assert "stopped; nothing left running" in "".join(first.lines)
    assert not [pid for pid in tree if alive(pid)]

    again = Up(env, tmp_path)
    again.wait_until_up()
    try:  # the run of the first start is still there, waiting for its shipment
        survived = wait_for(
            lambda: (r := httpx.get(status_url, headers=headers)).status_code == 200 and r.json()
        )
        assert survived["status"]["state"] == "awaiting_shipment"
        assert survived["status"]["erp_order_id"] == erp_order
    finally:
        tree = descendants(again.process.pid)
        assert again.interrupt() == 0
    assert not [pid for pid in tree if alive(pid)]


def api_pid(up: Up) -> int | None:
    """The pid of `up`'s API child, if one is running."""
    for pid in descendants(up.process.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"commerce_sync.cli" in argv and b"api" in argv and alive(pid):
            return pid
    return None


def test_a_child_that_dies_while_restarting_is_retried_and_the_rest_keep_running(
    env: dict[str, str], tmp_path: Path
) -> None:
    api = f"http://127.0.0.1:{env['COMMERCE_SYNC_API_PORT']}"
    sandbox = f"http://127.0.0.1:{env['COMMERCE_SYNC_SANDBOX_PORT']}"
    up = Up(env, tmp_path)
    up.wait_until_up()
    placed = httpx.post(f"{sandbox}/kentico/_sandbox/orders", json=SHOPPER_ORDER).json()
    sandboxes_before = {
        pid
        for pid in descendants(up.process.pid)
        if b"sandbox" in Path(f"/proc/{pid}/cmdline").read_bytes()
    }

    killed: list[int] = []
    for _ in range(3):  # the API, then each replacement as soon as it appears
        pid = wait_for(lambda: (found := api_pid(up)) not in (None, *killed) and found, 30.0)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    assert wait_for(lambda: httpx.get(f"{api}/healthz", timeout=2.0).status_code == 200, 90.0)
    assert up.process.poll() is None, "up stopped because a child would not restart"
    # The supervisor notices within its next round (0.5 s) that the API answers again.
    assert wait_for(lambda: up.printed("api is back"), 30.0)
    # The sandboxes were never restarted: the order placed before is still there.
    assert sandboxes_before <= descendants(up.process.pid)
    state = httpx.get(f"{sandbox}/kentico/_sandbox/state").json()
    assert [str(row["OrderID"]) for row in state["ecommerce.order"]] == [placed["id"]]

    tree = descendants(up.process.pid)
    assert up.interrupt() == 0
    output = "".join(up.lines)
    assert output.count("api exited") >= 2 and "restarting in" in output
    assert "api is back" in output
    assert not [pid for pid in tree if alive(pid)]
