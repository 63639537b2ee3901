"""`GET /runs`: orders placed on both pairs are found by pair, process and state, paged one
run at a time with sealed page tokens; bad filters are 422 naming the field; Temporal
refusing to answer is a 503 with its reason.

The Temporal server is shared by every test of the session: each query is scoped to this
stack's own workflow task queue (`task_queue`), so only this test's runs can match."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from commerce_sync.api.app import create_app
from commerce_sync.contracts.ids import order_workflow_id
from sandboxes.server import BackgroundServer
from tests.integration.orders.order_stack import READ_ONLY_KEY, Stack, eventually
from tests.integration.orders.test_dead_letters import cli, one_error_line

KB, XA = "kentico-brightpearl", "xcart-acumatica"


async def get_runs(stack: Stack, key: str | None = None, **params: Any) -> dict[str, Any]:
    params.setdefault("task_queue", stack.settings.task_queue)
    response = await stack.http.get(
        f"{stack.api}/runs", params=params, headers=stack.headers(key) if key else stack.headers()
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refused(stack: Stack, **params: Any) -> tuple[int, str, str]:
    """Status, the field the 422 names, and its reason."""
    response = await stack.http.get(f"{stack.api}/runs", params=params, headers=stack.headers())
    detail = response.json()["detail"]
    if response.status_code != 422:
        return response.status_code, "", str(detail)
    return 422, str(detail[0]["loc"][-1]), str(detail[0]["msg"])


def flip(token: str, at: int) -> str:
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


async def walk(stack: Stack, **params: Any) -> tuple[list[str], int]:
    """Every run id over all pages; how many requests it took."""
    ids: list[str] = []
    token: str | None = None
    requests = 0
    while True:
        page = await get_runs(stack, **params, **({"page_token": token} if token else {}))
        requests += 1
        assert len(page["runs"]) <= params["limit"]
        ids += [run["workflow_id"] for run in page["runs"]]
        token = page["next_page_token"]
        if token is None:
            return ids, requests


async def test_runs_found_by_pair_process_and_state_and_paged(stack: Stack, tmp_path: Path) -> None:
    placed = {
        KB: [await stack.place_order("kentico"), await stack.place_order("kentico")],
        XA: [await stack.place_order("xcart")],
    }
    wanted = {pair: {order_workflow_id(pair, i) for i in ids} for pair, ids in placed.items()}
    for pair, ids in placed.items():
        for order_id in ids:
            await stack.wait_state(pair, order_id, "awaiting_shipment")

    async def listed(pair: str) -> list[dict[str, Any]] | None:
        page = await get_runs(stack, pair=pair, process="order", state="awaiting_shipment")
        found = {run["workflow_id"] for run in page["runs"]}
        return page["runs"] if found == wanted[pair] else None

    for pair in (KB, XA):  # visibility catches up with the upserted SyncState
        runs = await eventually(partial(listed, pair), 30, f"{pair} runs in visibility")
        for run in runs:
            assert run["process"] == "order" and run["pair"] == pair
            assert run["state"] == "awaiting_shipment" and run["run_status"] == "RUNNING"
            assert run["task_queue"] == stack.settings.task_queue
            assert run["run_id"] and run["start_time"] and run["close_time"] is None
            assert run["web_ui"].endswith(run["run_id"])
            assert run["workflow_id"].replace(":", "%3A") in run["web_ui"]

    # Other filters leave them out; the read-only key may list.
    every = wanted[KB] | wanted[XA]
    for params in (
        {"process": "order", "state": "shipped"},
        {"process": "return"},
        {"running": "false"},
        {"task_queue": f"{stack.settings.task_queue}-other"},
    ):
        page = await get_runs(stack, **params)
        assert not every & {run["workflow_id"] for run in page["runs"]}, params
    mine = await get_runs(stack, READ_ONLY_KEY, process="order", running="true")
    assert {run["workflow_id"] for run in mine["runs"]} == every

    # One run a page walks all of them once; a token only serves the filters it came with.
    ids, requests = await walk(stack, process="order", limit=1)
    assert sorted(ids) == sorted(every) and requests in (3, 4)  # the last page may be empty
    first = await get_runs(stack, process="order", limit=1)
    token = first["next_page_token"]
    assert token
    for params, field in (
        ({"process": "order", "pair": KB, "page_token": token}, "page_token"),
        ({"process": "order", "page_token": flip(token, 5)}, "page_token"),  # the tag
        ({"process": "order", "page_token": flip(token, 30)}, "page_token"),  # Temporal's token
        ({"process": "order", "page_token": "not a token!"}, "page_token"),
        ({"process": "order", "page_token": "Z2FyYmFnZQ"}, "page_token"),
    ):
        params["task_queue"] = stack.settings.task_queue
        assert (await refused(stack, **params))[:2] == (422, field), params

    # `commerce-sync runs list` reads the same list from Temporal, page by page.
    scope = ("--task-queue", stack.settings.task_queue, "--process", "order", "--pair", KB)
    code, out, err = await cli(stack, tmp_path, "runs", "list", *scope, "--limit", "1", columns=80)
    assert code == 0, err
    *table, following = out.strip().splitlines()
    assert following.startswith("next page: --page-token ")
    assert max(len(line) for line in table) <= 80, out  # readable in an 80-column terminal
    shown = {wid for wid in wanted[KB] if any(wid in line for line in table)}
    assert len(shown) == 1, out
    token = following.split()[-1]
    code, out, err = await cli(stack, tmp_path, "runs", "list", *scope, "--page-token", token)
    assert code == 0, err
    assert wanted[KB] - shown == {wid for wid in wanted[KB] if wid in out}, out
    assert out.strip().splitlines()[-1] == "last page"
    code, _, err = await cli(
        stack, tmp_path, "runs", "list", "--process", "order", "--state", "idle"
    )
    assert "--state: 'idle' is not one of started" in one_error_line(code, err)


async def test_bad_filters_name_the_field_and_keys_are_required(stack: Stack) -> None:
    for params, field, reason in (
        ({"process": "orders"}, "process", "is not one of order"),
        ({"state": "nowhere"}, "state", "is not one of"),
        ({"process": "order", "state": "refunded"}, "state", "is not one of started"),
        ({"process": "erp-events", "state": "idle"}, "state", "records no state"),
        ({"pair": "shopify-sap"}, "pair", "is not a configured pair"),
        ({"pair": 'kentico-brightpearl" OR WorkflowType != "x'}, "pair", "configured pair"),
        ({"task_queue": 'q" OR TaskQueue != "q'}, "task_queue", "quotes"),
        ({"task_queue": ""}, "task_queue", "1 to 1000"),
        ({"limit": 0}, "limit", ""),
        ({"limit": 201}, "limit", ""),
        ({"running": "perhaps"}, "running", ""),
    ):
        status, named, said = await refused(stack, **params)
        assert (status, named) == (422, field), (params, said)
        assert reason in said, (params, said)

    url = f"{stack.api}/runs"
    assert (await stack.http.get(url)).status_code == 401
    assert (await stack.http.get(url, headers=stack.headers("not-a-key"))).status_code == 401


async def test_temporal_refusing_the_listing_is_a_503_with_its_reason(stack: Stack) -> None:
    """An API pointed at a namespace the server does not have: Temporal answers, refusing."""
    settings = stack.settings.model_copy(update={"temporal_namespace": "no-such-namespace"})
    api = BackgroundServer(create_app(settings)).start()
    try:
        response = await stack.http.get(f"{api.url}/runs", headers=stack.headers())
    finally:
        api.stop()
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert detail.startswith("Temporal: ") and "no-such-namespace" in detail, detail
