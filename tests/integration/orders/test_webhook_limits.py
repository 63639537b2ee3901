"""The receiver bounds what it takes in: a body over the limit is refused with 413 before
it is read whole or verified, deeply nested JSON is a 422, and every field that becomes
part of an event key, a workflow id or a payload is bounded. Nothing refused is recorded.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from commerce_sync.intake.bodies import MAX_IDS
from commerce_sync.intake.proofs import ACUMATICA_TOKEN_HEADER
from tests.integration.orders.order_stack import Stack
from tests.integration.orders.test_webhook_receiver import recorded, signed, store_event


async def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(stack: Stack) -> None:
    limit = stack.settings.webhook_max_body_bytes
    oversized = b"x" * (limit + 1)
    declared = await stack.http.post(f"{stack.api}/webhooks/kentico", content=oversized)
    assert declared.status_code == 413, declared.text

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"y" * (limit // 2)

    streamed = await stack.http.post(f"{stack.api}/webhooks/xcart", content=chunks())
    assert streamed.status_code == 413, streamed.text

    token = stack.settings.webhooks.acumatica_token
    assert token is not None
    push = await stack.http.post(
        f"{stack.api}/webhooks/acumatica",
        content=oversized,
        headers={ACUMATICA_TOKEN_HEADER: token.get_secret_value()},
    )
    assert push.status_code == 413
    assert recorded(stack) == []


async def test_deeply_nested_json_with_a_valid_proof_is_422(stack: Stack) -> None:
    event = json.loads(store_event("kentico", "1"))
    body = json.dumps(event)[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}"
    raw = body.encode()
    answer = await stack.http.post(
        f"{stack.api}/webhooks/kentico", content=raw, headers=signed(stack, "kentico", raw)
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0] == {"field": "body", "reason": "JSON nested too deeply"}
    assert recorded(stack) == []


async def test_fields_that_become_keys_and_payloads_are_bounded(stack: Stack) -> None:
    acumatica_token = stack.settings.webhooks.acumatica_token
    assert acumatica_token is not None
    long_id = {
        "Inserted": [],
        "Deleted": [],
        "Query": "CS-Shipments",
        "Id": "n" * 1_100,
        "TimeStamp": 1,
    }
    push = await stack.http.post(
        f"{stack.api}/webhooks/acumatica",
        content=json.dumps(long_id).encode(),
        headers={ACUMATICA_TOKEN_HEADER: acumatica_token.get_secret_value()},
    )
    assert push.status_code == 422
    assert push.json()["detail"][0]["field"] == "Id"

    brightpearl_token = stack.settings.webhooks.brightpearl_token
    assert brightpearl_token is not None
    shipped = {
        "accountCode": "sandbox",
        "resourceType": "goods-out-note",
        "lifecycleEvent": "modified",
        "fullEvent": "goods-out-note.modified.shipped",
    }
    url = f"{stack.api}/webhooks/brightpearl/{brightpearl_token.get_secret_value()}"
    huge = await stack.http.post(url, content=json.dumps({**shipped, "id": "1-300000"}))
    assert huge.status_code == 422
    assert huge.json()["detail"][0]["field"] == "id"
    assert f"larger than {MAX_IDS}" in huge.json()["detail"][0]["reason"]

    customer_ids = {**shipped, "resourceType": "contact", "lifecycleEvent": "modified"}
    customers = await stack.http.post(
        url, content=json.dumps({**customer_ids, "fullEvent": "", "id": f"1-{MAX_IDS + 1}"})
    )
    assert customers.status_code == 422
    assert recorded(stack) == []

    at_the_limit = await stack.http.post(url, content=json.dumps({**shipped, "id": f"1-{MAX_IDS}"}))
    assert at_the_limit.status_code == 202, at_the_limit.text
