"""One trace from the webhook through the workflow and its activities to the outgoing
HTTP calls, collected by an in-memory exporter in this test process."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.integration.ops.ops_stack import OpsStack
from tests.integration.orders.order_stack import PAIRS, eventually


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_webhook_workflow_activities_and_http_calls_share_one_trace(
    ops: OpsStack, spans: InMemorySpanExporter, pair: str
) -> None:
    store, erp = PAIRS[pair]
    email = f"traced-{uuid.uuid4().hex[:8]}@example.com"
    customer = {
        "email": email,
        "first_name": "Jane",
        "last_name": "Doe",
        "phone": "+1 512 555 0100",
    }
    order_id = await ops.stack.place_order(store, customer=customer)
    status = (await ops.stack.wait_state(pair, order_id, "awaiting_shipment"))["status"]

    async def until_traced() -> list[ReadableSpan] | None:
        """The trace of a webhook request span that reaches the workflow and the ERP call."""
        finished = spans.get_finished_spans()
        for root in finished:
            route = str((root.attributes or {}).get("http.route", ""))
            if root.kind != SpanKind.SERVER or not route.startswith("/webhooks/"):
                continue
            assert root.context is not None
            trace_id = root.context.trace_id
            same = [s for s in finished if s.context and s.context.trace_id == trace_id]
            names = {s.name for s in same}
            if {"RunWorkflow:OrderSync", "RunActivity:erp.create_order"} <= names:
                return same
        return None

    trace = await eventually(until_traced, 20, "one trace from the webhook to the ERP call")
    names = {span.name for span in trace}
    assert "StartWorkflow:OrderSync" in names
    assert {"RunActivity:store.get_order", "RunActivity:erp.create_order"} <= names
    calls = [s.attributes for s in trace if s.kind == SpanKind.CLIENT and s.attributes]
    hosts = {str(call.get("url.full") or call.get("http.url")) for call in calls}
    assert any(f"/{store}/" in url for url in hosts), hosts
    assert any(f"/{erp}/" in url for url in hosts), hosts

    # The shipment comes back through the ERP's webhook (Brightpearl's proof is a token in
    # the path); then no span of the whole run may carry a secret or the shopper's email.
    erp_order = status["erp_order_id"] if erp == "brightpearl" else status["erp_order_number"]
    await ops.stack.ship(erp, erp_order, "1Z999AA10123456784")
    await ops.stack.wait_state(pair, order_id, "shipped")
    settings = ops.stack.settings
    token = settings.webhooks.brightpearl_token
    assert token is not None
    secrets = {
        "brightpearl webhook token": token.get_secret_value(),
        "x-cart api key": settings.xcart.api_key.get_secret_value(),
        "shopper email": email,
        "shopper email in a query": quote(email),
    }
    sandbox_port = ops.stack.sandbox.base_url.port
    for span in spans.get_finished_spans():
        attributes = span.attributes or {}
        if span.kind == SpanKind.SERVER and attributes.get("server.port") == sandbox_port:
            continue  # the outside systems' own spans (the sandboxes run in this process)
        url = str(attributes.get("url.full") or attributes.get("http.url") or "")
        if span.kind == SpanKind.CLIENT and url.startswith(ops.stack.api):
            continue  # a sandbox delivering its webhook to us, as the real system would
        for key, value in attributes.items():
            for what, secret in secrets.items():
                assert secret not in str(value), f"{what} in {span.name} attribute {key}"
