"""Alerts leave through apprise to a local receiver: a permanent failure, a failed send
retried without a second row, and a system answering 503 for longer than the threshold."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import Session, select

from commerce_sync.ops.alerts import Notifier
from commerce_sync.store.db import make_engine
from commerce_sync.store.models import Alert
from commerce_sync.systems.read_retries import READ_ATTEMPTS
from tests.integration.ops.ops_stack import UNREACHABLE_AFTER_S, OpsStack, dead_lettered_order
from tests.integration.orders.order_stack import PAIRS, eventually
from tests.integration.orders.sandbox_views import alerts


def alert_rows(ops: OpsStack, kind: str) -> list[Alert]:
    engine = make_engine(ops.stack.database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Alert).where(Alert.kind == kind)).all())
    finally:
        engine.dispose()


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_permanent_failure_is_sent_to_the_receiver_once(ops: OpsStack, pair: str) -> None:
    order_id = await dead_lettered_order(ops, pair)
    key = f"order:{pair}:{order_id}"

    sent = await eventually(
        lambda: _async(ops.receiver.of_kind("order_failed")), 10, "order_failed alert"
    )
    assert len(sent) == 1
    assert sent[0]["title"] == f"commerce-sync order_failed: {key}"
    assert "is not known to the ERP" in sent[0]["message"]
    assert sent[0]["type"] == "failure"
    assert [a.kind for a in alerts(ops.stack, key)] == ["order_failed"]


async def test_a_failed_send_is_retried_without_a_second_row(ops: OpsStack) -> None:
    ops.receiver.fail_next = 1  # the first delivery gets a 500
    order_id = await dead_lettered_order(ops, "kentico-brightpearl")
    key = f"order:kentico-brightpearl:{order_id}"

    sent = await eventually(
        lambda: _async(ops.receiver.of_kind("order_failed")), 15, "order_failed alert"
    )
    assert len(sent) == 1
    assert ops.receiver.statuses == [500, 200]
    assert [a.kind for a in alerts(ops.stack, key)] == ["order_failed"]


async def test_undeliverable_alert_gives_up_after_the_configured_attempts(ops: OpsStack) -> None:
    ops.receiver.fail_next = 100  # the channel is down for good
    order_id = await dead_lettered_order(ops, "kentico-brightpearl")
    key = f"order:kentico-brightpearl:{order_id}"

    # send_attempts=3 in the fixture: three tries, then the run finishes (waited above)
    assert ops.receiver.statuses == [500, 500, 500]
    assert [a.kind for a in alerts(ops.stack, key)] == ["order_failed"]


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_store_answering_503_past_the_threshold_alerts_once_then_recovers(
    ops: OpsStack, pair: str
) -> None:
    store, _ = PAIRS[pair]
    # The store answers 503 to its first API reads: each read is sent READ_ATTEMPTS times
    # by the connector, so two activity attempts fail, a second or more apart: down for
    # longer than the test threshold.
    assert UNREACHABLE_AFTER_S < 1.0
    # Place the order before the fault so the shopper's own request is not refused.
    response = await ops.stack.sandbox.post(
        f"/{store}/_sandbox/faults",
        json={"rules": [{"match": "GET *", "status": 503, "count": 2 * READ_ATTEMPTS}]},
    )
    response.raise_for_status()
    order_id = await ops.stack.place_order(store)
    await ops.stack.wait_state(pair, order_id, "awaiting_shipment", timeout_s=30)

    down = ops.receiver.of_kind("system_unreachable")
    up = await eventually(
        lambda: _async(ops.receiver.of_kind("system_recovered")), 10, "recovered alert"
    )
    assert [b["title"] for b in down] == [f"commerce-sync system_unreachable: {store}"]
    assert "2 calls in a row" in down[0]["message"]
    assert [b["title"] for b in up] == [f"commerce-sync system_recovered: {store}"]
    assert up[0]["type"] == "success"
    assert [(a.kind, a.key) for a in alert_rows(ops, "system_unreachable")] == [
        ("system_unreachable", store)
    ]
    assert [(a.kind, a.key) for a in alert_rows(ops, "system_recovered")] == [
        ("system_recovered", store)
    ]
    hits = (await ops.stack.sandbox.get(f"/{store}/_sandbox/requests")).json()
    assert [r["status"] for r in _requests(hits)].count(503) == 2 * READ_ATTEMPTS


async def test_a_short_blip_under_the_threshold_alerts_nothing(ops: OpsStack) -> None:
    response = await ops.stack.sandbox.post(
        "/kentico/_sandbox/faults",
        json={"rules": [{"match": "GET *", "status": 503, "count": 1}]},
    )
    response.raise_for_status()
    order_id = await ops.stack.place_order("kentico")
    await ops.stack.wait_state("kentico-brightpearl", order_id, "awaiting_shipment")
    assert ops.receiver.of_kind("system_unreachable") == []
    assert ops.receiver.of_kind("system_recovered") == []
    assert alert_rows(ops, "system_unreachable") == []


def test_an_unusable_alert_url_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError) as refused:
        Notifier([SecretStr("json://ok.example/x"), SecretStr("nosuch://user:s3cret@host")])
    assert str(refused.value) == "alerts.urls[1]: apprise cannot use this URL (scheme 'nosuch')"
    assert "s3cret" not in str(refused.value)


async def _async(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return value


def _requests(body: object) -> list[dict[str, object]]:
    if isinstance(body, dict):
        found = body.get("requests", [])
        return list(found) if isinstance(found, list) else []
    return list(body) if isinstance(body, list) else []
