"""A schemathesis run against the served OpenAPI spec: every operation, with an `operate`
key, against the API as a real HTTP server on the real Temporal dev server and the
sandboxes. No answer is a 5xx, and every answer conforms to the spec (status code
documented or a 4xx, body matching the declared schema, declared content type).

Cases are valid by the spec and invalid on purpose, mixed. Each operation runs twice:
with everything generated (unknown pairs, ids: the 404 and
422 paths), and with its path parameters set to things that exist (a pair, an order, a
dead letter), so the generated bodies and queries reach the code behind the lookups.
Webhook routes need signatures: they answer 4xx, which is fine. Hypothesis runs in a
thread, the test's event loop keeps the worker going."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.service import RPCError, RPCStatusCode

from commerce_sync.store.db import make_engine
from commerce_sync.store.dead_letters import record_dead_letter
from tests.integration.orders.order_stack import Stack, eventually

EXAMPLES = 12
PAIR = "kentico-brightpearl"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _fuzz(
    schema: Any, operation: Any, base_url: str, headers: dict[str, str], known: dict[str, Any]
) -> str | None:
    """One operation's run; the first failure found (not shrunk), or None."""
    wanted = {
        name: value
        for name, value in known.items()
        if f"{{{name}}}" in operation.path  # only the parameters the path has
    }
    given_path = wanted or None
    strategy = operation.as_strategy(path_parameters=given_path) | operation.as_strategy(
        GenerationMode.NEGATIVE, path_parameters=given_path
    )

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

    try:
        run()
    except (Exception, BaseExceptionGroup) as failure:  # the checks' failures, a call's error
        return f"{operation.label} {wanted or ''}: {failure}"
    return None


def _fuzz_everything(
    schema: Any, base_url: str, headers: dict[str, str], known: dict[str, Any]
) -> tuple[int, list[str]]:
    failures: list[str] = []
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        count += 1
        for values in ({}, known):
            found = _fuzz(schema, operation, base_url, headers, values)
            if found is not None:
                failures.append(found)
    return count, failures


async def forget_other_stacks_runs(stack: Stack) -> None:
    """Runs that earlier tests left on this Temporal server, closed ones included, are on
    task queues no worker polls any more. The fuzzer's ids reach them (it drew
    `GET /returns/{pair}/4`, an earlier test's return), and a status query needs a worker
    even for a closed run, so it could only answer 503. Delete them: each test process has
    its own dev server and runs its tests one after another. (Schedules earlier tests left
    may start more runs meanwhile, named by the schedule, which no route reads.)"""
    query = f"TaskQueue != '{stack.settings.task_queue}'"
    left = []
    async for execution in stack.client.list_workflows(query):
        run = WorkflowExecution(workflow_id=execution.id, run_id=execution.run_id or "")
        request = DeleteWorkflowExecutionRequest(
            namespace=stack.client.namespace, workflow_execution=run
        )
        with contextlib.suppress(RPCError):  # deleted meanwhile
            await stack.client.workflow_service.delete_workflow_execution(request)
        left.append(stack.client.get_workflow_handle(execution.id, run_id=execution.run_id))

    async def gone() -> bool:
        while left:
            try:
                await left[-1].describe()
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
                left.pop()
                continue
            return False
        return True

    await eventually(gone, 60, "earlier tests' runs deleted")


async def serve_inventory_run_here(stack: Stack) -> None:
    """The pair's one inventory run (`inventory:{pair}`) may still be running from an earlier
    test's stack on this Temporal server, on a task queue no worker polls any more: its
    status query could only answer 503. Replace it with a run this stack's worker serves."""
    handle = stack.client.get_workflow_handle(f"inventory:{PAIR}")
    with contextlib.suppress(RPCError):
        await handle.terminate("the fuzz test serves its own run")
    started = await stack.http.post(
        f"{stack.api}/inventory/{PAIR}/push", json={"skus": ["WIDGET-1"]}, headers=stack.headers()
    )
    assert started.status_code == 202, started.text

    async def answered() -> bool:
        response = await stack.http.get(f"{stack.api}/inventory/{PAIR}", headers=stack.headers())
        return response.status_code == 200

    await eventually(answered, 30, "the inventory run's status")


async def test_no_operation_of_the_served_spec_answers_5xx_or_off_spec(stack: Stack) -> None:
    await forget_other_stacks_runs(stack)
    await serve_inventory_run_here(stack)
    order_id = await stack.place_order("kentico")
    await stack.wait_state(PAIR, order_id, "awaiting_shipment", "awaiting_approval")
    engine = make_engine(stack.database_url)
    try:
        letter_id = record_dead_letter(
            engine,
            pair=PAIR,
            process="catalog",
            business_key=f"catalog:{PAIR}:WIDGET-9",
            reason="erp_rejected",
            error="made by the fuzz test",
            payload={"pair": PAIR, "sku": "WIDGET-9"},
        )
    finally:
        engine.dispose()
    known = {
        "pair": PAIR,
        "source": "kentico",
        "store_order_id": order_id,
        "letter_id": letter_id,
    }
    schema = await asyncio.to_thread(
        schemathesis.openapi.from_url, f"{stack.api}/openapi.json", timeout=10
    )
    # What it found once, pinned: ids past SQLite's integers were a 500 (now a 422 naming
    # the field), times came back without an offset (not RFC 3339).
    huge = 2**63
    for path, field in (
        (f"/dead-letters/{huge}", "letter_id"),
        (f"/dead-letters?offset={huge}", "offset"),
    ):
        refused = await stack.http.get(f"{stack.api}{path}", headers=stack.headers())
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"][-1] == field
    shown = (
        await stack.http.get(f"{stack.api}/dead-letters/{letter_id}", headers=stack.headers())
    ).json()
    assert shown["created_at"].endswith(("Z", "+00:00"))

    count, failures = await asyncio.to_thread(
        _fuzz_everything, schema, stack.api, stack.headers(), known
    )
    assert count >= 13  # health, webhooks, orders, approvals, inventory, dead letters, metrics
    assert failures == [], "\n\n".join(failures)
