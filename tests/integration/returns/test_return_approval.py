"""A refund over the pair's `returns.approval_over` waits for a person: approved through
the API (Kentico pair) or `commerce-sync approve return:...` (X-Cart pair), rejected
through `temporal workflow update execute --name approve` (nothing reaches the ERP)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.orders.order_stack import PAIRS
from tests.integration.orders.sandbox_views import erp_writes
from tests.integration.returns.return_stack import ReturnStack

TEMPORAL_CLI = Path(sys.executable).parent / "temporal"
STORE_REFUNDED = {"kentico": "refunded", "xcart": "completed"}
STORE_REJECTED = {"kentico": "rejected", "xcart": "declined"}


async def run(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args,
        env={**os.environ, **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_refund_over_threshold_waits_for_approval(
    returns: ReturnStack, pair: str, tmp_path: Path
) -> None:
    stack = returns.stack
    order = await returns.shipped_order(pair, [{"sku": "WIDGET-10", "quantity": 8}])
    rma = await returns.request_return(
        order.store, order.order_id, [{"sku": "WIDGET-10", "quantity": 6}]
    )
    waiting = await returns.wait_return(pair, rma, "awaiting_approval")
    assert waiting["status"]["approval"]["reasons"] == [
        f"refund 329.94 is over {'250.00' if order.erp == 'brightpearl' else '300.00'}"
    ]
    assert await returns.credits(order) == []
    url = f"{stack.api}/returns/{pair}/{rma}/approval"
    # An approval without an approver is refused by the API, a read-only key is refused.
    refused = await stack.http.post(url, json={"approved": True, "by": ""}, headers=stack.headers())
    assert refused.status_code == 422 and "by" in refused.text
    reader = await stack.http.post(
        url, json={"approved": True, "by": "ops"}, headers=stack.headers("test-reader-key")
    )
    assert reader.status_code == 403

    wid = f"return:{pair}:{rma}"
    if order.store == "kentico":
        answer = await stack.http.post(
            url, json={"approved": True, "by": "ops"}, headers=stack.headers()
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["decision"]["by"] == "ops"
    else:
        env = {
            "COMMERCE_SYNC_TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
            "COMMERCE_SYNC_TEMPORAL_NAMESPACE": stack.client.namespace,
            "COMMERCE_SYNC_PAIRS_FILE": str(stack.settings.pairs_file),
        }
        code, out, err = await run(
            sys.executable, "-m", "commerce_sync.cli", "approve", wid, "--by", "ops",
            env=env, cwd=tmp_path,
        )  # fmt: skip
        assert code == 0, err
        assert f"{wid}: processing (approved by ops)" in out or f"{wid}: refunded" in out
    done = await returns.wait_return(pair, rma, "refunded", run_status="COMPLETED")
    assert Decimal(done["status"]["refund_amount"]) == Decimal("329.94")
    assert "approved by ops" in [s["detail"] for s in done["status"]["steps"]]
    assert await returns.store_return_status(order.store, rma) == STORE_REFUNDED[order.store]
    assert len(await returns.credits(order)) == 1

    # The rest of the order, rejected through the Temporal CLI: the store hears why.
    rest = await returns.request_return(
        order.store, order.order_id, [{"sku": "WIDGET-10", "quantity": 2}]
    )
    # 2 x 54.99 = 109.98 is under both thresholds: it needs no approval.
    await returns.wait_return(pair, rest, "refunded", run_status="COMPLETED")
    again = await returns.shipped_order(pair, [{"sku": "WIDGET-10", "quantity": 8}])
    big = await returns.request_return(
        order.store, again.order_id, [{"sku": "WIDGET-10", "quantity": 8}]
    )
    await returns.wait_return(pair, big, "awaiting_approval")
    (await stack.sandbox.delete(f"/{order.erp}/_sandbox/requests")).raise_for_status()
    code, out, err = await run(
        str(TEMPORAL_CLI), "workflow", "update", "execute",
        "--address", stack.client.service_client.config.target_host,
        "--namespace", stack.client.namespace,
        "--workflow-id", f"return:{pair}:{big}", "--name", "approve",
        "--input", json.dumps({"approved": False, "by": "risk-desk", "reason": "worn"}),
        env={}, cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    done = await returns.wait_return(pair, big, "rejected", run_status="COMPLETED")
    assert done["status"]["error"] == "Rejected by risk-desk: worn"
    assert await returns.store_return_status(order.store, big) == STORE_REJECTED[order.store]
    assert await erp_writes(stack, order.erp) == []
