"""PII in Temporal: with codec keys configured, a real order run leaves the shopper's email,
name, phone and address in no payload the Temporal server holds, nor in any log line;
clients with the codec (the API's, the worker's) read everything; the Web UI's codec
endpoint decodes for a read-keyed caller only and answers the browser's CORS preflight."""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client

from commerce_sync.config.settings import CodecSettings
from commerce_sync.contracts.orders import OrderSyncStatus
from commerce_sync.ops.codec import ENCODING, KEY_ID, EncryptionCodec, email_digest
from commerce_sync.ops.redaction import REDACTED_QUERY
from commerce_sync.ops.temporal_client import connect
from tests.integration.orders.order_stack import (
    PAIRS,
    READ_ONLY_KEY,
    Stack,
    eventually,
    running_stack,
    stack_settings,
)

SEARCH_KEY = "test-search-key"
UI_TOKEN = "test-ui-token-of-the-dev-web-ui"
UI_ORIGIN = "http://localhost:8233"


@pytest.fixture
async def codec_stack(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    """The order stack with two codec keys (`new` current, `old` kept for decoding); the
    API and the worker use `connect(settings)`, so both carry the codec."""
    target = temporal_client.service_client.config.target_host
    settings = stack_settings(sandbox_url, f"sqlite:///{tmp_path / 'cs.db'}", tmp_path, target)
    codec = CodecSettings(
        keys={
            "old": SecretStr(base64.b64encode(os.urandom(32)).decode()),
            "new": SecretStr(os.urandom(32).hex()),
        },
        current_key_id="new",
        search_key=SecretStr(SEARCH_KEY),
        ui_token=SecretStr(UI_TOKEN),
    )
    settings = settings.model_copy(update={"codec": codec})
    async with running_stack(settings, await connect(settings), sandboxes) as running:
        yield running


def shopper(tag: str) -> dict[str, Any]:
    """Words long enough that random ciphertext bytes never spell them by chance."""
    return {
        "customer": {
            "email": f"marguerite.{tag}@oyelaran-example.com",
            "first_name": "Marguerite",
            "last_name": "Oyelaran",
            "phone": "+1 512 555 0199",
        },
        "shipping_address": {
            "line1": "742 Evergreen Terrace",
            "line2": "",
            "city": "Austin",
            "region": "TX",
            "postal_code": "78701",
            "country": "US",
        },
    }


def pii_of(order: dict[str, Any]) -> list[str]:
    customer = order["customer"]
    return [
        customer["email"],
        customer["email"].split("@")[0],
        customer["first_name"],
        customer["last_name"],
        customer["phone"],
        order["shipping_address"]["line1"],
    ]


def wire(body: dict[str, Any]) -> dict[str, Any]:
    return {"payloads": [body]}


async def test_pii_stays_encrypted_in_temporal_and_out_of_logs(
    codec_stack: Stack, temporal_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    stack = codec_stack
    caplog.set_level(logging.DEBUG)
    orders: dict[str, tuple[str, dict[str, Any]]] = {}
    for pair, (store, _) in PAIRS.items():
        order = shopper(pair.split("-")[0])
        orders[pair] = (await stack.place_order(store, **order), order)

    secrets: list[str] = []
    for pair, (order_id, order) in orders.items():
        # The API's client has the codec: the run's status (with the email) reads fine.
        seen = await stack.wait_state(pair, order_id, "awaiting_shipment")
        assert seen["status"]["customer_email"] == order["customer"]["email"]
        workflow_id = seen["workflow_id"]
        status = await stack.client.get_workflow_handle(workflow_id).query(
            "status", result_type=OrderSyncStatus
        )
        assert status.customer_email == order["customer"]["email"]

        # The server's copy, read with a client WITHOUT the codec: every payload is
        # sealed under the current key, and no byte of the history spells the PII.
        history = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
        raw = b"".join(event.SerializeToString() for event in history.events)
        for text in pii_of(order):
            assert text.encode() not in raw, f"{text!r} readable in the history of {pair}"
            assert text.lower().encode() not in raw.lower()
        history_json = json.loads(history.to_json())
        # Left unencoded by Temporal: search attributes, patch markers (ids only),
        # local-activity markers' `data` (sdk-core's bookkeeping: the activity's type,
        # attempt and times; its result is sealed) and headers (the trace context, when a
        # tracer provider is set). The byte check above covers them too.
        unencoded = (".searchAttributes.", ".patch-data.", ".details.data.", ".header.")
        payloads = _payloads_in(history_json)
        found = [
            (where, p) for where, p in payloads if not any(part in where for part in unencoded)
        ]
        local_steps = [
            json.loads(base64.b64decode(p["data"]))
            for where, p in payloads
            if ".details.data." in where
        ]
        assert local_steps, "the run's bookkeeping steps are local activities"
        assert all(set(step) <= LOCAL_ACTIVITY_MARKER_FIELDS for step in local_steps)
        plain_ones = sorted(
            {w for w, p in found if p["metadata"].get("encoding") != _b64(ENCODING)}
        )
        assert not plain_ones
        sealed = [p for _, p in found]
        assert len(sealed) > 10
        assert {p["metadata"].get(KEY_ID) for p in sealed} == {_b64(b"new")}
        secrets += pii_of(order)

        # The CustomerEmail search attribute holds the keyed hash: searchable by whoever
        # holds the search key, meaningless to anyone reading visibility.
        digest = email_digest(SEARCH_KEY.encode(), order["customer"]["email"].upper())

        async def listed(digest: str = digest) -> list[str] | None:
            found = [
                w.id async for w in temporal_client.list_workflows(f"CustomerEmail = '{digest}'")
            ]
            return found or None

        assert await eventually(listed, 20, "the order by its email hash") == [workflow_id]

    # The codec endpoint: one sealed payload of the last history, decoded for a read key.
    payload = next(p for p in sealed if b"Marguerite" in _decoded_data(stack, p))
    api = f"{stack.api}/codec"
    ui = {"origin": UI_ORIGIN, "x-namespace": stack.settings.temporal_namespace}
    ok = await stack.http.post(
        f"{api}/decode", json=wire(payload), headers={**ui, **stack.headers(READ_ONLY_KEY)}
    )
    assert ok.status_code == 200, ok.text
    assert ok.headers["access-control-allow-origin"] == UI_ORIGIN
    [plain] = ok.json()["payloads"]
    assert b"Marguerite" in base64.b64decode(plain["data"])
    assert base64.b64decode(plain["metadata"]["encoding"]) == b"json/plain"

    # Encoding (e.g. a signal typed in the Web UI) seals under the current key; it decodes back.
    sent = await stack.http.post(
        f"{api}/encode", json=wire(plain), headers={**ui, **stack.headers()}
    )
    assert sent.status_code == 200, sent.text
    [resealed] = sent.json()["payloads"]
    assert base64.b64decode(resealed["metadata"][KEY_ID]) == b"new"
    again = await stack.http.post(
        f"{api}/decode", json=sent.json(), headers={**ui, **stack.headers(READ_ONLY_KEY)}
    )
    assert again.json()["payloads"] == [plain]

    # Refused: no key (401, with CORS headers so the Web UI can show why), an unknown key
    # (401), another namespace, an unknown key id, bad base64 (400 naming the field).
    anonymous = await stack.http.post(f"{api}/decode", json=wire(payload), headers=ui)
    assert anonymous.status_code == 401
    assert anonymous.headers["access-control-allow-origin"] == UI_ORIGIN
    stranger = await stack.http.post(
        f"{api}/decode", json=wire(payload), headers={**ui, **stack.headers("not-a-key")}
    )
    assert stranger.status_code == 401
    keyed = {**ui, **stack.headers(READ_ONLY_KEY)}
    other_ns = await stack.http.post(
        f"{api}/decode", json=wire(payload), headers={**keyed, "x-namespace": "elsewhere"}
    )
    assert other_ns.status_code == 400 and "X-Namespace" in other_ns.text
    retired = {**payload, "metadata": {**payload["metadata"], KEY_ID: _b64(b"retired")}}
    unknown = await stack.http.post(f"{api}/decode", json=wire(retired), headers=keyed)
    assert (
        unknown.status_code == 400 and "payloads[0]" in unknown.text and "'retired'" in unknown.text
    )
    garbled = await stack.http.post(f"{api}/decode", json=wire({"data": "%%%"}), headers=keyed)
    assert garbled.status_code == 400 and "payloads[0].data" in garbled.text

    # The browser's preflight needs no key; an origin that is not the Web UI's gets none.
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-namespace",
    }
    allowed = await stack.http.options(f"{api}/decode", headers={"origin": UI_ORIGIN, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "x-namespace" in allowed.headers["access-control-allow-headers"].lower()
    assert allowed.headers["access-control-allow-credentials"] == "true"
    foreign = await stack.http.options(
        f"{api}/decode", headers={"origin": "http://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in foreign.headers
    # Routes outside /codec stay without CORS.
    health = await stack.http.get(f"{stack.api}/healthz", headers={"origin": UI_ORIGIN})
    assert "access-control-allow-origin" not in health.headers

    reader_encodes = await stack.http.post(f"{api}/encode", json=wire(plain), headers=keyed)
    assert reader_encodes.status_code == 403  # encoding is for writing: `operate`

    # The dev server's Web UI has no token to pass: a keyed caller opens a codec session
    # (from /docs), and the browser sends the cookie ("Include cross-origin credentials").
    async with httpx.AsyncClient(timeout=15.0) as browser:
        opened = await browser.post(f"{api}/session", headers=stack.headers(READ_ONLY_KEY))
        assert opened.status_code == 200, opened.text
        cookie = opened.headers["set-cookie"]
        assert (
            "HttpOnly" in cookie and "Path=/codec" in cookie and "samesite=strict" in cookie.lower()
        )
        assert READ_ONLY_KEY not in cookie
        by_cookie = await browser.post(f"{api}/decode", json=wire(payload), headers=ui)
        assert by_cookie.status_code == 200 and by_cookie.json()["payloads"] == [plain]
        assert by_cookie.headers["access-control-allow-credentials"] == "true"
        assert (
            await browser.post(f"{api}/encode", json=wire(plain), headers=ui)
        ).status_code == 403
        token = browser.cookies["commerce_sync_codec"]
        forged = token[:-1] + ("0" if token[-1] != "0" else "1")
        browser.cookies.clear()
        browser.cookies.set("commerce_sync_codec", forged, domain="127.0.0.1", path="/codec")
        refused = await browser.post(f"{api}/decode", json=wire(payload), headers=ui)
    assert refused.status_code == 401 and "codec session" in refused.text

    # The dev server's Web UI under `up` can send neither: its codec endpoint carries the
    # UI token, good for these two routes only; any other token is as no route at all.
    by_token = await stack.http.post(f"{api}/ui/{UI_TOKEN}/decode", json=wire(payload), headers=ui)
    assert by_token.status_code == 200 and by_token.json()["payloads"] == [plain]
    assert by_token.headers["access-control-allow-origin"] == UI_ORIGIN
    resealed_by_token = await stack.http.post(
        f"{api}/ui/{UI_TOKEN}/encode", json=wire(plain), headers=ui
    )
    assert resealed_by_token.status_code == 200
    for wrong in ("not-the-token", UI_TOKEN[:-1]):
        guessed = await stack.http.post(f"{api}/ui/{wrong}/decode", json=wire(payload), headers=ui)
        assert guessed.status_code == 404
    elsewhere = await stack.http.get(f"{stack.api}/runs", params={"token": UI_TOKEN})
    assert elsewhere.status_code == 401  # the token is no API key

    # No log line of the run (ours, the SDK's, httpx's, uvicorn's) names the shopper.
    ours = [r for r in caplog.records if not r.name.startswith("commerce_sync.systems.sandbox")]
    assert {"httpx", "temporalio.activity"} <= {r.name for r in ours}  # captured at DEBUG
    # The connectors' email lookups were logged, with their query strings redacted.
    assert any(REDACTED_QUERY in r.getMessage() for r in ours if r.name == "httpx")
    for record in ours:
        line = record.getMessage() + str(record.exc_info or "")
        for text in secrets:
            assert text not in line, f"{record.name} logged {text!r}: {line[:200]}"


# What sdk-core writes in a local-activity marker's `data` detail, unencoded.
LOCAL_ACTIVITY_MARKER_FIELDS = {
    "seq",
    "attempt",
    "activity_id",
    "activity_type",
    "complete_time",
    "backoff",
    "original_schedule_time",
    "activation_index",
}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _payloads_in(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every payload (an object with `metadata` and `data`) anywhere in a JSON history,
    with its path."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if isinstance(node.get("metadata"), dict) and "data" in node:
            found.append((path, node))
        else:
            for key, value in node.items():
                found += _payloads_in(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _payloads_in(value, f"{path}[{i}]")
    return found


def _decoded_data(stack: Stack, payload: dict[str, Any]) -> bytes:
    from temporalio.api.common.v1 import Payload

    codec = stack.client.data_converter.payload_codec
    assert isinstance(codec, EncryptionCodec)
    sealed = Payload(
        metadata={k: base64.b64decode(v) for k, v in payload["metadata"].items()},
        data=base64.b64decode(payload["data"]),
    )
    return codec.decrypt(sealed).data
