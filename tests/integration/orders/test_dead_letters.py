"""Dead letters for operators: an order dead-lettered for an incomplete address is listed
(filters, paging), shown, refused when replayed with an invalid payload (nothing starts),
and completes when replayed with the corrected address; the letter is then resolved with
its history kept. Both pairs, through the API; the CLI as subprocesses; keys and scopes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.integration.orders.order_stack import PAIRS, READ_ONLY_KEY, Stack, eventually

CORRECTED = {
    "line1": "742 Evergreen Terrace",
    "line2": "",
    "city": "Springfield",
    "region": "OR",
    "postal_code": "97477",
    "country": "US",
}
ABROAD = {
    "line1": "10 Downing St",
    "line2": "",
    "city": "London",
    "region": "",
    "postal_code": "SW1A 2AA",
    "country": "GB",
}


def incomplete_address() -> dict[str, str]:
    """The dead-lettered scenario of tests/histories/record.py: no city, no postal code."""
    return {
        "line1": "1 Main St",
        "line2": "",
        "city": "",
        "region": "TX",
        "postal_code": "",
        "country": "US",
    }


async def dead_lettered_order(stack: Stack, pair: str) -> str:
    store, _ = PAIRS[pair]
    order_id = await stack.place_order(store, shipping_address=incomplete_address())
    await stack.wait_state(pair, order_id, "dead_lettered", run_status="FAILED")
    return order_id


async def letters(stack: Stack, key: str | None = None, **filters: Any) -> dict[str, Any]:
    headers = stack.headers(key) if key else stack.headers()
    response = await stack.http.get(f"{stack.api}/dead-letters", params=filters, headers=headers)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def letter_of(stack: Stack, pair: str, order_id: str) -> dict[str, Any]:
    """The letter of the order's failed run (recorded by the run before it failed)."""
    wid = f"order:{pair}:{order_id}"

    async def find() -> dict[str, Any] | None:
        page = await letters(stack, pair=pair, process="order", limit=200)
        return next((item for item in page["items"] if item["business_key"] == wid), None)

    return await eventually(find, what=f"the dead letter of {wid}")


async def show(stack: Stack, letter_id: int) -> dict[str, Any]:
    response = await stack.http.get(
        f"{stack.api}/dead-letters/{letter_id}", headers=stack.headers()
    )
    assert response.status_code == 200, response.text
    letter: dict[str, Any] = response.json()
    return letter


async def replay(stack: Stack, letter_id: int, body: dict[str, Any] | None = None) -> Any:
    return await stack.http.post(
        f"{stack.api}/dead-letters/{letter_id}/replay",
        json=body,
        headers=stack.headers(),
    )


async def erp_orders_for(stack: Stack, erp: str, store_order_number: str) -> list[dict[str, Any]]:
    state = await stack.state_of(erp)
    if erp == "brightpearl":
        return [
            o
            for o in state["orders"].values()
            if o.get("reference") == store_order_number and o.get("orderTypeCode") == "SO"
        ]
    return [
        o
        for o in state["entities"].get("SalesOrder", [])
        if o.get("CustomerOrder") == store_order_number and o.get("OrderType") == "SO"
    ]


async def run_id_of(stack: Stack, workflow_id: str) -> tuple[str, WorkflowExecutionStatus | None]:
    description = await stack.client.get_workflow_handle(workflow_id).describe()
    return description.run_id, description.status


def with_corrections(letter: dict[str, Any], **corrections: Any) -> dict[str, Any]:
    """The letter's payload as an operator edits it: the same, plus corrections."""
    return {"payload": {**letter["payload"], "corrections": corrections}, "by": "ops-jane"}


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_dead_lettered_order_edited_and_replayed_completes(stack: Stack, pair: str) -> None:
    _, erp = PAIRS[pair]
    order_id = await dead_lettered_order(stack, pair)
    other_id = await dead_lettered_order(stack, pair)
    wid = f"order:{pair}:{order_id}"
    letter = await letter_of(stack, pair, order_id)
    other = await letter_of(stack, pair, other_id)
    failed_run, _ = await run_id_of(stack, wid)

    # ---- listed with filters, and paged (newest first, with the total) ----
    assert letter["status"] == "open" and letter["reason"] == "invalid_order"
    assert "shipping_address.city" in letter["error"]
    both = await letters(stack, pair=pair, process="order", reason="invalid_order", status="open")
    assert both["total"] == 2 and [item["id"] for item in both["items"]] == [
        other["id"],
        letter["id"],
    ]
    first = await letters(stack, pair=pair, limit=1)
    assert first["total"] == 2 and first["next_offset"] == 1
    assert [item["id"] for item in first["items"]] == [other["id"]]
    second = await letters(stack, pair=pair, limit=1, offset=first["next_offset"])
    assert [item["id"] for item in second["items"]] == [letter["id"]]
    assert second["next_offset"] is None
    other_pair = next(p for p in PAIRS if p != pair)
    for filters in (
        {"pair": other_pair},
        {"pair": pair, "process": "catalog"},
        {"pair": pair, "reason": "payment_failed"},
        {"pair": pair, "status": "resolved"},
    ):
        assert (await letters(stack, **filters))["total"] == 0, filters
    bad_filter = await stack.http.get(
        f"{stack.api}/dead-letters", params={"status": "gone"}, headers=stack.headers()
    )
    assert bad_filter.status_code == 422 and bad_filter.json()["detail"][0]["loc"] == [
        "query",
        "status",
    ]

    # ---- shown ----
    shown = await show(stack, letter["id"])
    assert shown["payload"]["store_order_id"] == order_id
    assert shown["payload"]["skus"] == ["WIDGET-1"]
    assert [entry["event"] for entry in shown["history"]] == ["created"]
    number = shown["payload"]["store_order_number"]
    missing = await stack.http.get(f"{stack.api}/dead-letters/999999", headers=stack.headers())
    assert missing.status_code == 404

    # ---- invalid edits: 422 naming the field, and nothing started ----
    blank_city = await replay(
        stack, letter["id"], with_corrections(letter, shipping_address={**CORRECTED, "city": " "})
    )
    assert blank_city.status_code == 422, blank_city.text
    assert blank_city.json()["detail"][0]["loc"] == [
        "body",
        "payload",
        "corrections",
        "shipping_address",
        "city",
    ]
    for body, field in (
        (with_corrections(letter, sku_map={"NOPE-1": "WIDGET-2"}), "sku_map"),
        (with_corrections(letter, customer_email="not-an-email"), "customer_email"),
        (with_corrections(letter, shipping_addres=CORRECTED), "shipping_addres"),
        ({"payload": {**letter["payload"], "store_order_id": other_id}}, "store_order_id"),
    ):
        refused = await replay(stack, letter["id"], body)
        assert refused.status_code == 422, refused.text
        assert field in refused.json()["detail"][0]["loc"], refused.text
    assert await run_id_of(stack, wid) == (failed_run, WorkflowExecutionStatus.FAILED)
    unchanged = await show(stack, letter["id"])
    assert unchanged["status"] == "open" and len(unchanged["history"]) == 1
    assert await erp_orders_for(stack, erp, number) == []

    # ---- the corrected address: a fresh run under the same id reaches the ERP once ----
    fixed = await replay(
        stack,
        letter["id"],
        with_corrections(letter, shipping_address=CORRECTED, billing_address=CORRECTED),
    )
    assert fixed.status_code == 202, fixed.text
    replayed = fixed.json()
    assert replayed["status"] in ("replayed", "resolved")
    entry = replayed["history"][1]
    assert entry["event"] == "replayed" and entry["by"] == "ops-jane"
    assert entry["workflow_id"] == wid and entry["run_id"] and entry["run_id"] != failed_run
    assert entry["edited"] == ["corrections.billing_address", "corrections.shipping_address"]
    assert "Springfield" not in json.dumps(entry)  # the history names fields, not values

    waiting = await stack.wait_state(pair, order_id, "awaiting_shipment", run_status="RUNNING")
    assert await run_id_of(stack, wid) == (entry["run_id"], WorkflowExecutionStatus.RUNNING)
    assert "apply corrections" in [step["name"] for step in waiting["status"]["steps"]]
    orders = await erp_orders_for(stack, erp, number)
    assert len(orders) == 1
    # (cleansed on the way: USPS writes the city in capitals)
    assert "SPRINGFIELD" in json.dumps(orders[0]) and "97477" in json.dumps(orders[0])

    async def resolved() -> dict[str, Any] | None:
        current = await show(stack, letter["id"])
        return current if current["status"] == "resolved" else None

    done = await eventually(resolved, what="the letter resolved")
    assert [each["event"] for each in done["history"]] == ["created", "replayed", "resolved"]
    assert done["payload"] == letter["payload"] and done["resolved_at"]
    again = await replay(stack, letter["id"])
    assert again.status_code == 409 and "resolved" in again.json()["detail"]
    assert len(await erp_orders_for(stack, erp, number)) == 1

    # ---- the other letter, corrected into an order that waits for approval: while its
    # run is going a second replay is refused; approved, it completes and resolves ----
    other_wid = f"order:{pair}:{other_id}"
    waits = await replay(
        stack,
        other["id"],
        with_corrections(other, shipping_address=CORRECTED, billing_address=ABROAD),
    )
    assert waits.status_code == 202, waits.text
    await stack.wait_state(pair, other_id, "awaiting_approval")
    going = await replay(stack, other["id"])
    assert going.status_code == 409 and "still going" in going.json()["detail"]
    approval = await stack.http.post(
        f"{stack.api}/orders/{pair}/{other_id}/approval",
        json={"approved": True, "by": "ops-jane"},
        headers=stack.headers(),
    )
    assert approval.status_code == 200, approval.text
    await stack.wait_state(pair, other_id, "awaiting_shipment")

    async def other_resolved() -> dict[str, Any] | None:
        current = await show(stack, other["id"])
        return current if current["status"] == "resolved" else None

    closed = await eventually(other_resolved, what="the second letter resolved")
    assert [each["event"] for each in closed["history"]] == ["created", "replayed", "resolved"]
    assert (await run_id_of(stack, other_wid))[1] == WorkflowExecutionStatus.RUNNING
    everything = await letters(stack, pair=pair)
    assert everything["total"] == 2  # nothing is ever deleted
    assert {item["status"] for item in everything["items"]} == {"resolved"}


async def test_keys_and_scopes(stack: Stack) -> None:
    api = stack.api
    for method, path in (
        ("GET", "/dead-letters"),
        ("GET", "/dead-letters/1"),
        ("POST", "/dead-letters/1/replay"),
    ):
        anonymous = await stack.http.request(method, f"{api}{path}")
        assert anonymous.status_code == 401, (method, path)
        unknown = await stack.http.request(
            method, f"{api}{path}", headers=stack.headers("not-a-key")
        )
        assert unknown.status_code == 401, (method, path)
    reader = stack.headers(READ_ONLY_KEY)
    assert (await stack.http.get(f"{api}/dead-letters", headers=reader)).status_code == 200
    refused = await stack.http.post(f"{api}/dead-letters/1/replay", headers=reader)
    assert refused.status_code == 403 and "operate" in refused.json()["detail"]


# ---- the CLI -------------------------------------------------------------------------------


async def cli(
    stack: Stack, cwd: Path, *args: str, stdin: str | None = None, columns: int = 200
) -> tuple[int, str, str]:
    """`commerce-sync ARGS` as a subprocess, without blocking the worker's event loop,
    its output as wide as `columns` (a terminal's width)."""
    env = {
        **os.environ,
        "COMMERCE_SYNC_DATABASE_URL": stack.database_url,
        "COMMERCE_SYNC_TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
        "COMMERCE_SYNC_TEMPORAL_NAMESPACE": stack.client.namespace,
        "COMMERCE_SYNC_TASK_QUEUE": stack.settings.task_queue,
        "COMMERCE_SYNC_DATA_DIR": str(cwd / "cli-data"),
        "COLUMNS": str(columns),
    }
    if stack.settings.pairs_file is not None:
        env["COMMERCE_SYNC_PAIRS_FILE"] = str(stack.settings.pairs_file)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "commerce_sync.cli",
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(
        process.communicate(stdin.encode() if stdin is not None else None), timeout=120
    )
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def one_error_line(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1, err
    return lines[0]


async def test_dead_letters_command(stack: Stack, tmp_path: Path) -> None:
    pair = "xcart-acumatica"
    _, erp = PAIRS[pair]
    order_id = await dead_lettered_order(stack, pair)
    letter = await letter_of(stack, pair, order_id)
    lid = str(letter["id"])

    code, out, err = await cli(stack, tmp_path, "dead-letters", "list", "--pair", pair)
    assert code == 0, err
    assert f"order:{pair}:{order_id}" in out and "invalid_order" in out
    assert out.strip().splitlines()[-1] == "1-1 of 1"
    # At 80 columns: fewer columns, every line fits, the business key whole on its line.
    code, out, err = await cli(stack, tmp_path, "dead-letters", "list", "--pair", pair, columns=80)
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert any(f"order:{pair}:{order_id}" in line for line in out.splitlines()), out
    code, out, err = await cli(stack, tmp_path, "dead-letters", "list", "--process", "catalog")
    assert code == 0 and out.strip().splitlines()[-1] == "none of 0", out + err

    code, out, err = await cli(stack, tmp_path, "dead-letters", "show", lid)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["id"] == letter["id"] and shown["payload"]["store_order_id"] == order_id

    # Errors: one readable line and a non-zero exit, nothing started.
    code, _, err = await cli(stack, tmp_path, "dead-letters", "show", "424242")
    assert one_error_line(code, err) == "error: no dead letter 424242"
    code, _, err = await cli(stack, tmp_path, "dead-letters", "list", "--status", "gone")
    assert "--status" in one_error_line(code, err)
    not_json = tmp_path / "broken.json"
    not_json.write_text("{not json", encoding="utf-8")
    code, _, err = await cli(
        stack, tmp_path, "dead-letters", "replay", lid, "--payload", str(not_json)
    )
    assert "--payload: not JSON" in one_error_line(code, err)
    blank = {
        **letter["payload"],
        "corrections": {"shipping_address": {**CORRECTED, "postal_code": ""}},
    }
    code, _, err = await cli(
        stack, tmp_path, "dead-letters", "replay", lid, "--payload", "-", stdin=json.dumps(blank)
    )
    assert "payload.corrections.shipping_address.postal_code" in one_error_line(code, err)
    assert (await show(stack, letter["id"]))["status"] == "open"

    edited = tmp_path / "fixed.json"
    fixed = {
        **letter["payload"],
        "corrections": {"shipping_address": CORRECTED, "billing_address": CORRECTED},
    }
    edited.write_text(json.dumps(fixed), encoding="utf-8")
    code, out, err = await cli(
        stack, tmp_path, "dead-letters", "replay", lid, "--payload", str(edited), "--by", "ops-cli"
    )
    assert code == 0, err
    replayed = json.loads(out)
    assert (
        replayed["history"][1]["event"] == "replayed" and replayed["history"][1]["by"] == "ops-cli"
    )
    await stack.wait_state(pair, order_id, "awaiting_shipment")
    number = letter["payload"]["store_order_number"]
    assert len(await erp_orders_for(stack, erp, number)) == 1

    async def resolved() -> dict[str, Any] | None:
        current = await show(stack, letter["id"])
        return current if current["status"] == "resolved" else None

    await eventually(resolved, what="the letter resolved")
    code, _, err = await cli(stack, tmp_path, "dead-letters", "replay", lid)
    assert "resolved" in one_error_line(code, err)
    code, out, err = await cli(stack, tmp_path, "dead-letters", "list", "--status", "resolved")
    assert code == 0 and out.strip().splitlines()[-1] == "1-1 of 1", out + err
