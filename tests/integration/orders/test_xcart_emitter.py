"""The X-Cart 5 emitter module (`emitters/xcart/`), checked with the php CLI this machine
has (`make test` installs Debian's php-cli): every PHP file parses, and the module's own
signer (run standalone by `emitters/xcart/bin/sample-event.php`) makes the event the
sandbox sends today, which the receiver's verifier accepts, the API takes with 202 and
answers 200 when it comes again.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from commerce_sync.intake.bodies import StoreEvent
from commerce_sync.intake.proofs import (
    WebhookProofError,
    sign_standard_webhook,
    verify_standard_webhook,
)
from sandboxes.xcart.sandbox import XCartSandbox
from tests.integration.orders.order_stack import Stack
from tests.integration.orders.test_webhook_receiver import recorded

ROOT = Path(__file__).resolve().parents[3]
EMITTER = ROOT / "emitters" / "xcart"
MODULE = EMITTER / "classes" / "XLite" / "Module" / "CommerceSync" / "Webhooks"
SAMPLE = EMITTER / "bin" / "sample-event.php"
PHP = "php"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def php_event(secret: str, event_type: str, record_id: str, at: int | None = None) -> Any:
    """{"headers": {...}, "body": "..."} as the module's signer makes them."""
    args = [PHP, str(SAMPLE), secret, event_type, record_id]
    if at is not None:
        args.append(str(at))
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_php_file_of_the_module_parses() -> None:
    files = sorted(EMITTER.rglob("*.php"))
    # Main, the outbox entity and its repository, the order and profile decorators, the
    # two address book decorators, the returns decorator, the outbox, the signer, the
    # task and the sample script.
    assert len(files) == 12, files
    assert (MODULE / "Main.php") in files
    # install.yaml registers the task by class name: the class must be the module's file.
    owners = re.findall(r"owner: (\S+)", (MODULE / "install.yaml").read_text(encoding="utf-8"))
    assert owners == ["XLite\\Module\\CommerceSync\\Webhooks\\Core\\Task\\SendEvents"]
    assert (EMITTER / "classes" / (owners[0].replace("\\", "/") + ".php")) in files
    for path in files:
        lint = subprocess.run(
            [PHP, "-l", str(path)], capture_output=True, text=True, timeout=30, check=False
        )
        assert lint.returncode == 0, f"{path.relative_to(ROOT)}: {lint.stdout}{lint.stderr}"


def test_php_lint_refuses_a_broken_file(tmp_path: Path) -> None:
    """The lint above can fail: php -l exits non-zero on a syntax error."""
    broken = tmp_path / "Broken.php"
    broken.write_text("<?php\nclass Broken {\n    public function f() { return 1 }\n}\n")
    lint = subprocess.run(
        [PHP, "-l", str(broken)], capture_output=True, text=True, timeout=30, check=False
    )
    assert lint.returncode != 0


def test_the_module_signs_as_the_receiver_verifies() -> None:
    secret = new_secret()
    event = php_event(secret, "order.created", "12")
    body = event["body"].encode()
    headers = event["headers"]

    verify_standard_webhook(secret, headers, body)
    at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    expected = sign_standard_webhook(secret, headers["webhook-id"], at, body)
    assert headers["webhook-signature"] == expected["webhook-signature"]
    assert headers["webhook-id"].startswith("evt_") and len(headers["webhook-id"]) == 36
    assert headers["Content-Type"] == "application/json"

    with pytest.raises(WebhookProofError):
        verify_standard_webhook(new_secret(), headers, body)
    with pytest.raises(WebhookProofError):
        verify_standard_webhook(secret, headers, body.replace(b'"12"', b'"13"'))


def test_an_attempt_signed_long_ago_is_refused() -> None:
    """A retry must be signed afresh: the receiver refuses a timestamp 5 minutes off."""
    secret = new_secret()
    stale = int(datetime.now(UTC).timestamp()) - 600
    event = php_event(secret, "order.updated", "12", at=stale)
    with pytest.raises(WebhookProofError):
        verify_standard_webhook(secret, event["headers"], event["body"].encode())


@pytest.mark.parametrize(
    "event_type",
    [
        "order.created",
        "order.updated",
        "order.cancelled",
        "return.requested",
        "customer.created",
        "customer.updated",
    ],
)
def test_the_module_sends_what_the_sandbox_sends(event_type: str) -> None:
    sandbox = XCartSandbox(rw_key="rw", read_key="ro")
    theirs = json.loads(sandbox._fire_store_event(event_type, 41).body)
    ours = json.loads(php_event(new_secret(), event_type, "41")["body"])

    assert StoreEvent.model_validate(ours).type == event_type
    for event in (ours, theirs):
        # Same form of timestamp: seconds, UTC, "Z".
        assert datetime.strptime(event.pop("timestamp"), "%Y-%m-%dT%H:%M:%SZ")
    assert ours == theirs == {"type": event_type, "data": {"id": "41", "store": "xcart"}}


def test_the_signer_refuses_what_the_receiver_would() -> None:
    for args in (
        [new_secret(), "order.shipped", "1"],
        [new_secret(), "order.created", ""],
        ["whsec_not base64!", "order.created", "1"],
    ):
        done = subprocess.run(
            [PHP, str(SAMPLE), *args], capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 1, (args, done.stdout)


async def test_the_api_accepts_the_module_s_event_once(stack: Stack) -> None:
    order_id = await stack.place_order("xcart")
    secret = stack.settings.webhooks.xcart
    assert secret is not None
    event = php_event(secret.get_secret_value(), "order.updated", order_id)
    url = f"{stack.api}/webhooks/xcart"

    first = await stack.http.post(url, content=event["body"], headers=event["headers"])
    assert first.status_code == 202, first.text
    answer = first.json()
    assert answer["event_id"] == event["headers"]["webhook-id"]
    assert answer["workflow_id"] and order_id in answer["workflow_id"]

    again = await stack.http.post(url, content=event["body"], headers=event["headers"])
    assert again.status_code == 200, again.text
    assert again.json() == answer
    ours = [row for row in recorded(stack) if row.event_id == answer["event_id"]]
    assert len(ours) == 1 and ours[0].event_type == "order.updated"

    forged = {**event["headers"], "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}
    refused = await stack.http.post(url, content=event["body"], headers=forged)
    assert refused.status_code == 401
