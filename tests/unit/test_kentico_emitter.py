"""The Kentico emitter (emitters/kentico/) against commerce-sync's own receiver rules.

No .NET SDK can be installed on this machine (Debian has none; PyPI's and npm's `dotnet`
packages are libraries, not the SDK), and the Kentico assemblies come only from NuGet.
Mono's C# compiler (Debian's `mono-mcs`, installed by `make test`) can do the rest:

- the Kentico-free part (`src/StoreEvents.cs`: event body, Standard Webhooks signature)
  is compiled with `check/SignEvent.cs` and run, and what it prints is checked with
  `verify_standard_webhook` and the `StoreEvent` model, exactly as `POST /webhooks/kentico`
  checks a delivery (commerce_sync/api/routes/webhooks.py);
- every source file is parsed (`mcs --parse`), a syntax check without Kentico's types;
- the event type names in the C# source are the receiver's list and the sandbox's.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import typing
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from commerce_sync.intake.bodies import StoreEvent, StoreEventType
from commerce_sync.intake.proofs import (
    WebhookProofError,
    sign_standard_webhook,
    verify_standard_webhook,
)

ROOT = Path(__file__).resolve().parents[2]
EMITTER = ROOT / "emitters" / "kentico"
SOURCES = sorted((EMITTER / "src").glob("*.cs"))
FIXTURE = EMITTER / "check" / "signed-event.txt"
FIXTURE_SECRET = "whsec_" + base64.b64encode(b"commerce-sync-emitter-fixture-32b").decode()
SECRET = "whsec_" + base64.b64encode(b"kentico-emitter-test-secret-32by").decode()


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not found: `make test` installs Debian's mono-mcs (apt)"
    return path


@pytest.fixture(scope="module")
def sign_event(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """SignEvent.exe, built from the emitter's own StoreEvents.cs."""
    exe = tmp_path_factory.mktemp("emitter") / "SignEvent.exe"
    built = subprocess.run(
        [
            _tool("mcs"),
            "-langversion:6",
            f"-out:{exe}",
            str(EMITTER / "src" / "StoreEvents.cs"),
            str(EMITTER / "check" / "SignEvent.cs"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    yield exe


def _run(exe: Path, *args: str) -> tuple[dict[str, str], bytes]:
    done = subprocess.run(
        [_tool("mono"), str(exe), *args], capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    msg_id, timestamp, signature, body = done.stdout.decode().split("\n")[:4]
    headers = {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
    return headers, body.encode()


def _csharp_event_types() -> set[str]:
    text = (EMITTER / "src" / "StoreEvents.cs").read_text(encoding="utf-8")
    return set(re.findall(r'public const string \w+ = "([a-z]+\.[a-z]+)";', text))


def test_event_types_are_the_receivers_and_the_sandboxs() -> None:
    receiver = set(typing.get_args(StoreEventType))
    assert _csharp_event_types() == receiver
    sandbox = (ROOT / "sandboxes" / "kentico" / "sandbox.py").read_text(encoding="utf-8")
    assert set(re.findall(r'_fire\("([a-z]+\.[a-z]+)"', sandbox)) == receiver


@pytest.mark.parametrize("event_type", sorted(typing.get_args(StoreEventType)))
def test_signed_event_is_accepted_by_the_receiver(sign_event: Path, event_type: str) -> None:
    now = datetime.now(UTC)
    occurred_ms = int(now.timestamp() * 1000) - 1500
    headers, body = _run(
        sign_event,
        SECRET,
        "evt_5f0c1d2e3b4a59687766554433221100",
        str(int(now.timestamp())),
        event_type,
        "1042",
        str(occurred_ms),
    )
    verify_standard_webhook(SECRET, headers, body)  # raises if the receiver would say 401
    event = StoreEvent.model_validate_json(body)
    assert (event.type, event.data.id, event.data.store) == (event_type, "1042", "kentico")
    assert int(event.timestamp.timestamp() * 1000) == occurred_ms
    with pytest.raises(WebhookProofError):
        verify_standard_webhook(SECRET, headers, body.replace(b"1042", b"1043"))
    with pytest.raises(WebhookProofError):
        verify_standard_webhook(FIXTURE_SECRET, headers, body)


def test_fixture_is_what_the_csharp_signs_and_python_signs_alike(sign_event: Path) -> None:
    """check/signed-event.txt (id, timestamp, signature, body) documents one delivery;
    the C# reproduces it byte for byte and the receiver's library signs it the same."""
    msg_id, timestamp, signature, body = FIXTURE.read_text(encoding="utf-8").splitlines()
    event = StoreEvent.model_validate_json(body)
    occurred_ms = str(int(event.timestamp.timestamp() * 1000))
    headers, signed = _run(
        sign_event, FIXTURE_SECRET, msg_id, timestamp, event.type, event.data.id, occurred_ms
    )
    assert (headers["webhook-signature"], signed.decode()) == (signature, body)
    python = sign_standard_webhook(
        FIXTURE_SECRET, msg_id, datetime.fromtimestamp(int(timestamp), UTC), body.encode()
    )
    assert python["webhook-signature"] == signature


def test_unknown_event_type_is_refused_by_the_csharp(sign_event: Path) -> None:
    done = subprocess.run(
        [_tool("mono"), str(sign_event), SECRET, "evt_1", "1", "order.deleted", "1", "0"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode != 0 and b"order.deleted" in done.stderr


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: path.name)
def test_module_sources_parse(source: Path) -> None:
    parsed = subprocess.run(
        [_tool("mcs"), "--parse", "-langversion:6", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr


def test_a_syntax_error_fails_the_parse(tmp_path: Path) -> None:
    """The parse check above can fail: a broken copy of a source is refused."""
    broken = tmp_path / "Broken.cs"
    broken.write_text(
        (EMITTER / "src" / "Outbox.cs").read_text(encoding="utf-8").replace(");", ")", 1),
        encoding="utf-8",
    )
    parsed = subprocess.run(
        [_tool("mcs"), "--parse", str(broken)], capture_output=True, check=False
    )
    assert parsed.returncode != 0
