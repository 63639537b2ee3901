"""Record the workflow histories that tests/unit/test_replay.py replays.

Run it against the embedded default (`make run` in another terminal):

    .venv/bin/python tests/histories/record.py

It drives one order per scenario and pair through the sandboxes (shipped, approved,
rejected, cancelled before shipment, payment failed and compensated, invalid and
dead-lettered), waits for each run to close, and writes its history, and that of the
ERP event router that woke it, as `tests/histories/<workflow type>-<pair>-<scenario>.json`.
Re-record after a deliberate, patched change to a workflow; keep the old files as well,
so that runs started before the change are still shown to replay.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter

HERE = Path(__file__).parent
API = "http://127.0.0.1:8000"
SANDBOX = "http://127.0.0.1:8100"
TEMPORAL = "127.0.0.1:7233"
PAIRS = {
    "kentico-brightpearl": ("kentico", "brightpearl"),
    "xcart-acumatica": ("xcart", "acumatica"),
}
PAYMENT_PATHS = {
    "brightpearl": "POST */accounting-service/customer-payment",
    "acumatica": "PUT */Payment",
}


def shopper_order(**overrides: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "customer": {
            "email": f"replay-{uuid.uuid4().hex[:8]}@example.com",
            "first_name": "Rita",
            "last_name": "Replay",
            "phone": "+1 512 555 0100",
        },
        "shipping_address": {
            "line1": "1 Main St",
            "line2": "",
            "city": "Austin",
            "region": "TX",
            "postal_code": "78701",
            "country": "US",
        },
        "lines": [{"sku": "WIDGET-1", "quantity": 2}],
        "currency": "USD",
        "shipping_method": "ground",
        "payment": {"method": "card", "reference": f"ch_{uuid.uuid4().hex[:12]}"},
    }
    order.update(overrides)
    return order


class Recorder:
    def __init__(self, http: httpx.AsyncClient, client: Client, api_key: str) -> None:
        self.http, self.client = http, client
        self.auth = {"authorization": f"Bearer {api_key}"}

    async def place(self, store: str, order: dict[str, Any]) -> str:
        response = await self.http.post(f"{SANDBOX}/{store}/_sandbox/orders", json=order)
        response.raise_for_status()
        return str(response.json()["id"])

    async def status(self, pair: str, order_id: str) -> dict[str, Any]:
        for _ in range(300):
            response = await self.http.get(f"{API}/orders/{pair}/{order_id}", headers=self.auth)
            if response.status_code == 200:
                result: dict[str, Any] = response.json()
                return result
            await asyncio.sleep(0.2)
        raise SystemExit(f"order {pair}/{order_id} never appeared")

    async def wait(self, pair: str, order_id: str, state: str) -> dict[str, Any]:
        for _ in range(300):
            status = await self.status(pair, order_id)
            if status["status"]["state"] == state:
                return status
            await asyncio.sleep(0.2)
        raise SystemExit(f"order {pair}/{order_id} never reached {state}")

    async def ship(self, pair: str, order_id: str) -> None:
        erp = PAIRS[pair][1]
        status = (await self.wait(pair, order_id, "awaiting_shipment"))["status"]
        target = status["erp_order_id"] if erp == "brightpearl" else status["erp_order_number"]
        response = await self.http.post(
            f"{SANDBOX}/{erp}/_sandbox/shipments",
            json={"order": target, "tracking": "1Z999AA10123456784", "carrier": "ups"},
        )
        response.raise_for_status()

    async def decide(self, pair: str, order_id: str, approved: bool) -> None:
        await self.wait(pair, order_id, "awaiting_approval")
        response = await self.http.post(
            f"{API}/orders/{pair}/{order_id}/approval",
            json={"approved": approved, "by": "ops", "reason": "recorded for replay"},
            headers=self.auth,
        )
        response.raise_for_status()

    async def save(self, workflow_id: str, name: str) -> None:
        handle = self.client.get_workflow_handle(workflow_id)
        for _ in range(300):
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                break
            await asyncio.sleep(0.2)
        else:
            raise SystemExit(f"{workflow_id} is still running")
        history = await handle.fetch_history()
        (HERE / f"{name}.json").write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
        print(f"recorded {workflow_id} -> {name}.json ({len(history.events)} events)")

    async def scenario(self, pair: str, name: str) -> None:
        store, erp = PAIRS[pair]
        big = [{"sku": "WIDGET-1", "quantity": 1, "unit_price": "5000.00"}]
        if name == "payment-failed":
            rule = {"match": PAYMENT_PATHS[erp], "status": 400, "count": 1}
            (await self.http.post(f"{SANDBOX}/{erp}/_sandbox/faults", json=rule)).raise_for_status()
        if name == "dead-lettered":
            incomplete = {**shopper_order()["shipping_address"], "city": "", "postal_code": ""}
            order_id = await self.place(store, shopper_order(shipping_address=incomplete))
        elif name in ("approved", "rejected"):
            order_id = await self.place(store, shopper_order(lines=big))
        else:
            order_id = await self.place(store, shopper_order())
        if name in ("shipped", "approved"):
            if name == "approved":
                await self.decide(pair, order_id, approved=True)
            await self.ship(pair, order_id)
        elif name == "rejected":
            await self.decide(pair, order_id, approved=False)
        elif name == "cancelled":
            await self.wait(pair, order_id, "awaiting_shipment")
            cancel = await self.http.post(f"{SANDBOX}/{store}/_sandbox/orders/{order_id}/cancel")
            cancel.raise_for_status()
        elif name == "payment-failed":
            await self.wait(pair, order_id, "failed")
            await self.http.delete(f"{SANDBOX}/{erp}/_sandbox/faults")
        elif name == "dead-lettered":
            await self.wait(pair, order_id, "dead_lettered")
        await self.save(f"order:{pair}:{order_id}", f"OrderSync-{pair}-{name}")


async def main(api_key: str) -> None:
    client = await Client.connect(TEMPORAL, data_converter=pydantic_data_converter)
    async with httpx.AsyncClient(timeout=30.0) as http:
        recorder = Recorder(http, client, api_key)
        for pair in PAIRS:
            for name in (
                "shipped",
                "approved",
                "rejected",
                "cancelled",
                "payment-failed",
                "dead-lettered",
            ):
                await recorder.scenario(pair, name)
        routers: dict[str, str] = {}
        async for execution in client.list_workflows("WorkflowType = 'ErpEventRouter'"):
            routers.setdefault(execution.id.split(":")[1], execution.id)
        for erp, workflow_id in routers.items():
            await recorder.save(workflow_id, f"ErpEventRouter-{erp}")


if __name__ == "__main__":
    secrets_file = Path(".data/secrets.json")
    if not secrets_file.exists():
        sys.exit("run this from the project root while `make run` is up")
    asyncio.run(main(json.loads(secrets_file.read_text())["operator_api_key"]))
