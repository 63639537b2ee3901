"""One trace from the webhook through the workflow and its activities to the outgoing
HTTP calls, collected by an in-memory exporter in this test process."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from ops_stack import OpsStack
from order_stack import PAIRS, eventually


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_webhook_workflow_activities_and_http_calls_share_one_trace(
    ops: OpsStack, spans: InMemorySpanExporter, pair: str
) -> None:
    store, erp = PAIRS[pair]
    order_id = await ops.stack.place_order(store)
    await ops.stack.wait_state(pair, order_id, "awaiting_shipment")

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
    calls = [s for s in trace if s.kind == SpanKind.CLIENT and s.attributes]
    hosts = {str(s.attributes.get("url.full") or s.attributes.get("http.url")) for s in calls}
    assert any(f"/{store}/" in url for url in hosts), hosts
    assert any(f"/{erp}/" in url for url in hosts), hosts
