"""`POST /inventory/{pair}/push` and the status routes, over HTTP against the real stack."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from tests.integration.inventory.inventory_stack import PAIRS, InventoryStack, stock_writes
from tests.integration.orders.order_stack import READ_ONLY_KEY


async def post_push(
    inventory: InventoryStack,
    pair: str,
    body: Any = None,
    *,
    key: str | None = "default",
    raw: bytes | None = None,
) -> Any:
    headers = (
        {} if key is None else inventory.headers() if key == "default" else inventory.headers(key)
    )
    url = f"{inventory.stack.api}/inventory/{pair}/push"
    if raw is not None:
        headers["content-type"] = "application/json"
        return await inventory.http.post(url, content=raw, headers=headers)
    if body is None:
        return await inventory.http.post(url, headers=headers)
    return await inventory.http.post(url, json=body, headers=headers)


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_push_asked_for_by_the_api_runs_and_reports_its_progress(
    inventory: InventoryStack, pair: str
) -> None:
    erp = PAIRS[pair][1]
    # The ERP's count changed while its webhooks were lost: nothing pushed it.
    await inventory.hold_webhooks(erp)
    await inventory.set_erp_stock(pair, "WIDGET-9", 12)
    assert await inventory.store_stock(pair, "WIDGET-9") == 100

    response = await post_push(inventory, pair, {"skus": ["WIDGET-9", " WIDGET-9 ", "WIDGET-10"]})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["workflow_id"] == f"inventory:{pair}"
    assert (accepted["mode"], accepted["skus"]) == ("skus", 2)
    assert accepted["status_url"] == f"/inventory/{pair}/push/{accepted['request_id']}"

    done = await inventory.wait_request(pair, accepted["request_id"])
    assert (done.phase, done.total, done.done, done.requested_by) == ("done", 2, 2, "api")
    assert await inventory.store_stock(pair, "WIDGET-9") == inventory.sellable(pair, 12)
    assert await inventory.store_stock(pair, "WIDGET-10") == inventory.sellable(pair, 100)

    progress = await inventory.http.get(
        f"{inventory.stack.api}{accepted['status_url']}", headers=inventory.headers(READ_ONLY_KEY)
    )
    assert progress.status_code == 200, progress.text
    assert progress.json()["phase"] == "done" and progress.json()["counts"]["written"] == 2
    status = await inventory.http.get(
        f"{inventory.stack.api}/inventory/{pair}", headers=inventory.headers(READ_ONLY_KEY)
    )
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["pair"] == pair and body["state"] in ("idle", "pushing", "gathering")
    assert [r["request_id"] for r in body["recent"]] == [accepted["request_id"]]
    missing = await inventory.http.get(
        f"{inventory.stack.api}/inventory/{pair}/push/nope", headers=inventory.headers()
    )
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


BAD_BODIES = [
    ({"skus": []}, "skus"),
    ({"skus": "WIDGET-1"}, "skus"),
    ({"skus": ["WIDGET-1", ""]}, "skus"),
    ({"sku": ["WIDGET-1"]}, "sku"),
    ([], "body"),
]


async def test_bad_pushes_are_refused_and_start_nothing(inventory: InventoryStack) -> None:
    pair = "kentico-brightpearl"
    for body, field in BAD_BODIES:
        response = await post_push(inventory, pair, body)
        assert response.status_code == 422, (body, response.text)
        locations = [".".join(map(str, error["loc"])) for error in response.json()["detail"]]
        assert any(field in location for location in locations), (body, locations)
    response = await post_push(inventory, pair, raw=b'{"skus": [')
    assert response.status_code == 422

    unknown = await post_push(inventory, "shopify-netsuite", {"skus": ["WIDGET-1"]})
    assert unknown.status_code == 404
    assert "shopify-netsuite" in unknown.json()["detail"] and pair in unknown.json()["detail"]
    assert (await post_push(inventory, pair, key=None)).status_code == 401
    assert (await post_push(inventory, pair, key=READ_ONLY_KEY)).status_code == 403
    status = await inventory.http.get(
        f"{inventory.stack.api}/inventory/nowhere", headers=inventory.headers()
    )
    assert status.status_code == 404

    # Nothing was started: the pair's push run is the one the fixture ended, if any.
    handle = inventory.client.get_workflow_handle(f"inventory:{pair}")
    try:
        described = await handle.describe()
    except RPCError:  # never started on this dev server
        described = None
    assert described is None or described.status != WorkflowExecutionStatus.RUNNING
    assert stock_writes("kentico", await inventory.calls("kentico")) == []
