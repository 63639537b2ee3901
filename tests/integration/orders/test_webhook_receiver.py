"""`POST /webhooks/{source}` over real HTTP: proofs, bodies, repeats, and what starts.

A valid event is recorded, and the relay starts (or reuses) the order's run; a repeated delivery
answers 200 with the first answer and starts nothing; anything invalid answers 401, 404
or 422 naming the field, records nothing and starts nothing.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select
from temporalio.service import RPCError, RPCStatusCode

from commerce_sync.intake.proofs import ACUMATICA_TOKEN_HEADER, sign_standard_webhook
from commerce_sync.store.db import make_engine
from commerce_sync.store.models import WebhookEvent
from tests.integration.orders.order_stack import Stack, eventually

STORES = {"kentico": "kentico-brightpearl", "xcart": "xcart-acumatica"}


def store_event(store: str, order_id: str, kind: str = "order.created") -> bytes:
    body = {
        "type": kind,
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"id": order_id, "store": store},
    }
    return json.dumps(body).encode()


def signed(stack: Stack, store: str, body: bytes, **changes: Any) -> dict[str, str]:
    secret = getattr(stack.settings.webhooks, store).get_secret_value()
    at = changes.pop("at", datetime.now(UTC))
    headers = sign_standard_webhook(secret, f"msg_{uuid.uuid4().hex}", at, body)
    return {**headers, "content-type": "application/json", **changes}


def recorded(stack: Stack) -> list[WebhookEvent]:
    engine = make_engine(stack.database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(WebhookEvent)).all())
    finally:
        engine.dispose()


async def run_exists(stack: Stack, workflow_id: str) -> bool:
    try:
        await stack.client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


@pytest.mark.parametrize("store", list(STORES))
async def test_signed_event_starts_once_and_a_repeat_starts_nothing(
    stack: Stack, store: str
) -> None:
    pair = STORES[store]
    order_id = await stack.place_order(store)  # the sandbox delivers its own order.created
    workflow_id = f"order:{pair}:{order_id}"
    await stack.wait_state(pair, order_id, "awaiting_shipment")
    run_id = (await stack.client.get_workflow_handle(workflow_id).describe()).run_id

    body = store_event(store, order_id)
    headers = signed(stack, store, body)
    first = await stack.http.post(f"{stack.api}/webhooks/{store}", content=body, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json() == {"event_id": headers["webhook-id"], "workflow_id": workflow_id}
    again = await stack.http.post(f"{stack.api}/webhooks/{store}", content=body, headers=headers)
    assert again.status_code == 200 and again.json() == first.json()

    async def both_started() -> list[WebhookEvent] | None:
        events = [e for e in recorded(stack) if e.workflow_id == workflow_id]
        return events if all(e.status == "started" for e in events) else None

    # The answer means recorded; this process's relay starts the run straight after.
    events = await eventually(both_started, 10, "the relay to start both events")
    assert len(events) == 2  # the sandbox's delivery and ours; the repeat added nothing
    assert [e.start_attempts for e in events] == [1, 1]  # each started once
    # A second order.created for a running order reuses its run.
    assert (await stack.client.get_workflow_handle(workflow_id).describe()).run_id == run_id


@pytest.mark.parametrize("store", list(STORES))
async def test_refused_deliveries_record_and_start_nothing(stack: Stack, store: str) -> None:
    pair = STORES[store]
    url = f"{stack.api}/webhooks/{store}"
    order_id = "990001"
    body = store_event(store, order_id)
    tampered = body.replace(b"990001", b"990002")
    other_secret = "whsec_" + "A" * 32

    answers = {
        "tampered body": await stack.http.post(
            url, content=tampered, headers=signed(stack, store, body)
        ),
        "wrong secret": await stack.http.post(
            url,
            content=body,
            headers={
                **sign_standard_webhook(other_secret, "msg_x", datetime.now(UTC), body),
                "content-type": "application/json",
            },
        ),
        "stale timestamp": await stack.http.post(
            url,
            content=body,
            headers=signed(stack, store, body, at=datetime.now(UTC) - timedelta(minutes=10)),
        ),
        "no signature": await stack.http.post(
            url, content=body, headers={"content-type": "application/json"}
        ),
    }
    for what, answer in answers.items():
        assert answer.status_code == 401, f"{what}: {answer.status_code} {answer.text}"

    invalid = {
        b"not json": "body",
        json.dumps(
            {
                "type": "order.exploded",
                "timestamp": "2026-11-22T10:00:00Z",
                "data": {"id": order_id, "store": store},
            }
        ).encode(): "type",
        json.dumps(
            {"type": "order.created", "timestamp": "2026-11-22T10:00:00Z", "data": {"store": store}}
        ).encode(): "data.id",
        json.dumps(
            {
                "type": "order.created",
                "timestamp": "2026-11-22T10:00:00Z",
                "data": {"id": order_id, "store": "kentico" if store == "xcart" else "xcart"},
            }
        ).encode(): "data.store",
    }
    for raw, field in invalid.items():
        answer = await stack.http.post(url, content=raw, headers=signed(stack, store, raw))
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["field"] == field, answer.text

    unknown = await stack.http.post(f"{stack.api}/webhooks/shopify", content=body)
    assert unknown.status_code == 404

    assert recorded(stack) == []
    assert not await run_exists(stack, f"order:{pair}:{order_id}")


async def test_erp_webhook_proofs_are_checked(stack: Stack) -> None:
    bp_body = json.dumps(
        {
            "accountCode": "sandbox",
            "resourceType": "goods-out-note",
            "id": "7001",
            "lifecycleEvent": "modified",
            "fullEvent": "goods-out-note.modified.shipped",
            "raisedOn": "2026-11-22T10:00:00Z",
        }
    ).encode()
    wrong = await stack.http.post(
        f"{stack.api}/webhooks/brightpearl/not-the-token", content=bp_body
    )
    assert wrong.status_code == 401
    no_token = await stack.http.post(f"{stack.api}/webhooks/brightpearl", content=bp_body)
    assert no_token.status_code == 401
    token = stack.settings.webhooks.brightpearl_token
    assert token is not None
    bad_set = await stack.http.post(
        f"{stack.api}/webhooks/brightpearl/{token.get_secret_value()}",
        content=bp_body.replace(b'"7001"', b'"12-x"'),
    )
    assert bad_set.status_code == 422 and bad_set.json()["detail"][0]["field"] == "id"

    push = json.dumps(
        {
            "Inserted": [],
            "Deleted": [],
            "Query": "CS-Shipments",
            "CompanyId": "",
            "Id": "n1",
            "TimeStamp": 1,
        }
    ).encode()
    missing = await stack.http.post(f"{stack.api}/webhooks/acumatica", content=push)
    assert missing.status_code == 401
    guessed = await stack.http.post(
        f"{stack.api}/webhooks/acumatica", content=push, headers={ACUMATICA_TOKEN_HEADER: "guess"}
    )
    assert guessed.status_code == 401
    assert recorded(stack) == []

    acumatica_token = stack.settings.webhooks.acumatica_token
    assert acumatica_token is not None
    accepted = await stack.http.post(
        f"{stack.api}/webhooks/acumatica",
        content=push,
        headers={ACUMATICA_TOKEN_HEADER: acumatica_token.get_secret_value()},
    )
    assert accepted.status_code == 202, accepted.text
    assert [(e.source, e.workflow_id) for e in recorded(stack)] == [("acumatica", "")]
