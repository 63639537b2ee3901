"""Record the workflow histories that tests/unit/test_replay.py replays.

Run it against the embedded default (`make run` in another terminal):

    .venv/bin/python -m tests.histories.record

It drives one order per scenario and pair through the sandboxes (shipped, approved,
rejected, cancelled before shipment, payment failed and compensated, invalid and
dead-lettered), waits for each run to close, and writes its history, and that of the
ERP event router that woke it, as `tests/histories/<workflow type>-<pair>-<scenario>.json`.
Re-record after a deliberate, patched change to a workflow; keep the old files as well,
so that runs started before the change are still shown to replay: name the scenarios to
record and give the new files a suffix (`python -m tests.histories.record shipped approved
--suffix v2` writes `OrderSync-<pair>-shipped-v2.json` ..., and `ErpEventRouter-<erp>-v2.json`
unless `--no-routers`); it will not replace an existing file without `--overwrite`.

Not in the default set: `approved-escalated` approves only once the approval wait has
escalated (run `up` with a pairs file, `COMMERCE_SYNC_PAIRS_FILE`, whose
`approval.escalate_after` is a few seconds); `cancelled-in-store` is an order placed and
cancelled while the store's webhooks reach nobody, then started as `resync orders` starts
a missing run: its first read finds it cancelled; `missing-order` is a run started for an
order id the store does not have: its first read fails and it is dead-lettered;
`flagged` is an order the anomaly checks hold back (the fourth e-mail shipping to one
address in a month, with the packaged pairs.toml), approved and shipped.

It finds `up` through the same settings (`COMMERCE_SYNC_API_PORT`, `_SANDBOX_PORT`,
`_TEMPORAL_PORT`, `_DATA_DIR`, ...), so run both with the same environment. Histories must
replay without keys: `up` generates codec keys and encrypts every payload, so record with
the codec off, `COMMERCE_SYNC_CODEC__KEYS_FILE` pointing at a file holding `{"keys": {}}`;
the recorder refuses to write a history with an encrypted payload.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter

from commerce_sync.config.settings import Settings
from commerce_sync.intake.missing_runs import start_missing_order
from sandboxes.embedded import secrets_path

HERE = Path(__file__).parent
SCENARIOS = ("shipped", "approved", "rejected", "cancelled", "payment-failed", "dead-lettered")
EXTRA_SCENARIOS = ("approved-escalated", "cancelled-in-store", "missing-order", "flagged")
ENCRYPTED = "binary/encrypted"
PAIRS = {
    "kentico-brightpearl": ("kentico", "brightpearl"),
    "xcart-acumatica": ("xcart", "acumatica"),
}
PAYMENT_PATHS = {
    "brightpearl": "POST */accounting-service/customer-payment",
    "acumatica": "PUT */Payment",
}


def shopper_order(**overrides: Any) -> dict[str, Any]:
    """A new shopper's order, shipped to an address of its own: orders to one address from
    several e-mails raise the `shared_address` flag (pairs.toml's max_emails_per_address
    is 3), which would hold the fourth scenario of a pair for approval."""
    order: dict[str, Any] = {
        "customer": {
            "email": f"replay-{uuid.uuid4().hex[:8]}@example.com",
            "first_name": "Rita",
            "last_name": "Replay",
            "phone": "+1 512 555 0100",
        },
        "shipping_address": {
            "line1": f"{uuid.uuid4().int % 9000 + 100} Main St",
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
    def __init__(
        self,
        http: httpx.AsyncClient,
        client: Client,
        settings: Settings,
        webhook_secrets: dict[str, str],
    ) -> None:
        self.http, self.client = http, client
        self.api = settings.api_url
        self.sandbox = f"http://{settings.sandbox_host}:{settings.sandbox_port}"
        self.task_queue = settings.task_queue
        self.secrets = webhook_secrets
        self.auth = {"authorization": f"Bearer {webhook_secrets['operator_api_key']}"}

    async def place(self, store: str, order: dict[str, Any]) -> str:
        response = await self.http.post(f"{self.sandbox}/{store}/_sandbox/orders", json=order)
        response.raise_for_status()
        return str(response.json()["id"])

    async def status(self, pair: str, order_id: str) -> dict[str, Any]:
        for _ in range(300):
            response = await self.http.get(
                f"{self.api}/orders/{pair}/{order_id}", headers=self.auth
            )
            if response.status_code == 200:
                result: dict[str, Any] = response.json()
                return result
            await asyncio.sleep(0.2)
        raise SystemExit(f"order {pair}/{order_id} never appeared")

    async def wait_for(
        self, pair: str, order_id: str, what: str, done: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        for _ in range(300):
            status = await self.status(pair, order_id)
            if done(status["status"]):
                return status
            await asyncio.sleep(0.2)
        raise SystemExit(f"order {pair}/{order_id} never reached {what}")

    async def wait(self, pair: str, order_id: str, state: str) -> dict[str, Any]:
        return await self.wait_for(pair, order_id, state, lambda s: s["state"] == state)

    async def ship(self, pair: str, order_id: str) -> None:
        erp = PAIRS[pair][1]
        status = (await self.wait(pair, order_id, "awaiting_shipment"))["status"]
        target = status["erp_order_id"] if erp == "brightpearl" else status["erp_order_number"]
        response = await self.http.post(
            f"{self.sandbox}/{erp}/_sandbox/shipments",
            json={"order": target, "tracking": "1Z999AA10123456784", "carrier": "ups"},
        )
        response.raise_for_status()

    async def decide(self, pair: str, order_id: str, approved: bool) -> None:
        await self.wait(pair, order_id, "awaiting_approval")
        response = await self.http.post(
            f"{self.api}/orders/{pair}/{order_id}/approval",
            json={"approved": approved, "by": "ops", "reason": "recorded for replay"},
            headers=self.auth,
        )
        response.raise_for_status()

    async def attempted(self, store: str, event_id: str) -> None:
        for _ in range(300):
            response = await self.http.get(f"{self.sandbox}/{store}/_sandbox/events")
            response.raise_for_status()
            event = next(e for e in response.json()["events"] if e["id"] == event_id)
            if event["attempts"] >= 1 and event["last_status"] is not None:
                return
            await asyncio.sleep(0.2)
        raise SystemExit(f"{store} never tried to deliver {event_id}")

    async def cancelled_unheard(self, pair: str) -> str:
        """Placed and cancelled while the store's webhooks reach nobody, then started the
        way `resync orders` starts a missing run."""
        store = PAIRS[pair][0]
        hooks = f"{self.sandbox}/{store}/_sandbox/webhooks"
        target = {"url": f"{self.api}/webhooks/{store}", "secret": self.secrets[store]}
        held = {**target, "url": f"{self.api}/held", "max_attempts": 1}
        (await self.http.post(hooks, json=held)).raise_for_status()
        try:
            placed = await self.http.post(
                f"{self.sandbox}/{store}/_sandbox/orders", json=shopper_order()
            )
            placed.raise_for_status()
            order_id = str(placed.json()["id"])
            cancel = await self.http.post(
                f"{self.sandbox}/{store}/_sandbox/orders/{order_id}/cancel"
            )
            cancel.raise_for_status()
            for event_id in (placed.json()["event_id"], cancel.json()["event_id"]):
                await self.attempted(store, str(event_id))
        finally:
            (await self.http.post(hooks, json=target)).raise_for_status()
        await start_missing_order(self.client, pair, order_id, self.task_queue)
        return order_id

    async def flagged(self, pair: str) -> str:
        """Three shoppers' orders to one address, then a fourth's: its `shared_address`
        flag scores 1.0 (pairs.toml's max_emails_per_address is 3) and it waits."""
        store = PAIRS[pair][0]
        address = {
            **shopper_order()["shipping_address"],
            "line1": f"{uuid.uuid4().int % 9000 + 100} Elm St",
        }
        for _ in range(3):
            earlier = await self.place(store, shopper_order(shipping_address=address))
            await self.wait(pair, earlier, "awaiting_shipment")
        order_id = await self.place(store, shopper_order(shipping_address=address))
        await self.wait_for(
            pair,
            order_id,
            "a wait for approval with flags",
            lambda s: bool(s["approval"] and s["flags"]),
        )
        return order_id

    async def save(self, workflow_id: str, name: str) -> None:
        handle = self.client.get_workflow_handle(workflow_id)
        for _ in range(300):
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                break
            await asyncio.sleep(0.2)
        else:
            raise SystemExit(f"{workflow_id} is still running")
        history = await handle.fetch_history()
        text = json.dumps(history.to_json_dict(), indent=1) + "\n"
        if ENCRYPTED in text:
            raise SystemExit(f"{workflow_id}: encrypted payloads (run `up` with the codec off)")
        (HERE / f"{name}.json").write_text(text)
        print(f"recorded {workflow_id} -> {name}.json ({len(history.events)} events)")

    async def scenario(self, pair: str, name: str, suffix: str) -> None:
        store, erp = PAIRS[pair]
        big = [{"sku": "WIDGET-1", "quantity": 1, "unit_price": "5000.00"}]
        if name == "payment-failed":
            rule = {"match": PAYMENT_PATHS[erp], "status": 400, "count": 1}
            fault = await self.http.post(f"{self.sandbox}/{erp}/_sandbox/faults", json=rule)
            fault.raise_for_status()
        if name == "dead-lettered":
            incomplete = {**shopper_order()["shipping_address"], "city": "", "postal_code": ""}
            order_id = await self.place(store, shopper_order(shipping_address=incomplete))
        elif name in ("approved", "approved-escalated", "rejected"):
            order_id = await self.place(store, shopper_order(lines=big))
        elif name == "cancelled-in-store":
            order_id = await self.cancelled_unheard(pair)
        elif name == "flagged":
            order_id = await self.flagged(pair)
        elif name == "missing-order":  # a run for an order the store does not have
            order_id = str(900_000_000 + uuid.uuid4().int % 10**8)
            await start_missing_order(self.client, pair, order_id, self.task_queue)
        else:
            order_id = await self.place(store, shopper_order())
        if name in ("shipped", "approved", "approved-escalated", "flagged"):
            if name == "approved-escalated":
                await self.wait_for(
                    pair,
                    order_id,
                    "an escalated approval (is approval.escalate_after a few seconds?)",
                    lambda s: bool(s["approval"] and s["approval"]["escalated"]),
                )
            if name != "shipped":
                await self.decide(pair, order_id, approved=True)
            await self.ship(pair, order_id)
        elif name == "rejected":
            await self.decide(pair, order_id, approved=False)
        elif name == "cancelled":
            await self.wait(pair, order_id, "awaiting_shipment")
            cancel = await self.http.post(
                f"{self.sandbox}/{store}/_sandbox/orders/{order_id}/cancel"
            )
            cancel.raise_for_status()
        elif name == "payment-failed":
            await self.wait(pair, order_id, "failed")
            await self.http.delete(f"{self.sandbox}/{erp}/_sandbox/faults")
        elif name in ("dead-lettered", "missing-order"):
            await self.wait(pair, order_id, "dead_lettered")
        elif name == "cancelled-in-store":
            await self.wait(pair, order_id, "cancelled")
        await self.save(f"order:{pair}:{order_id}", f"OrderSync-{pair}-{name}{suffix}")


async def main(
    settings: Settings,
    webhook_secrets: dict[str, str],
    scenarios: list[str],
    suffix: str,
    routers: bool,
) -> None:
    client = await Client.connect(
        settings.resolved_temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
    async with httpx.AsyncClient(timeout=30.0) as http:
        recorder = Recorder(http, client, settings, webhook_secrets)
        for pair in PAIRS:
            for name in scenarios:
                await recorder.scenario(pair, name, suffix)
        if not routers:
            return
        found: dict[str, str] = {}
        async for execution in client.list_workflows("WorkflowType = 'ErpEventRouter'"):
            found.setdefault(execution.id.split(":")[1], execution.id)
        for erp, workflow_id in found.items():
            await recorder.save(workflow_id, f"ErpEventRouter-{erp}{suffix}")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    # Checked below, not with `choices`: Python 3.11's argparse checks the empty list of
    # an optional positional against the choices and refuses a call that names none.
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"what to record (default: {' '.join(SCENARIOS)}; also: {' '.join(EXTRA_SCENARIOS)})",
    )
    parser.add_argument(
        "--suffix", default="", help="appended to each file name as `-SUFFIX` (keep old files)"
    )
    parser.add_argument(
        "--no-routers", action="store_true", help="do not save the ERP event routers"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    args = parser.parse_args()
    known = (*SCENARIOS, *EXTRA_SCENARIOS)
    unknown = [name for name in args.scenarios if name not in known]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r} (choose from {', '.join(known)})")
    return args


def refuse_to_overwrite(scenarios: list[str], suffix: str, routers: bool) -> None:
    names = [f"OrderSync-{pair}-{name}{suffix}" for pair in PAIRS for name in scenarios]
    if routers:
        names += [f"ErpEventRouter-{erp}{suffix}" for _, erp in PAIRS.values()]
    existing = [name for name in names if (HERE / f"{name}.json").exists()]
    if existing:
        sys.exit(
            f"{existing[0]}.json and {len(existing) - 1} more exist: old histories prove older"
            " runs replay; give --suffix (or --overwrite)"
        )


if __name__ == "__main__":
    args = arguments()
    scenarios = args.scenarios or list(SCENARIOS)
    suffix = f"-{args.suffix}" if args.suffix else ""
    if not args.overwrite:
        refuse_to_overwrite(scenarios, suffix, not args.no_routers)
    settings = Settings()
    secrets_file = secrets_path(settings)
    if not secrets_file.exists():
        sys.exit(f"no {secrets_file}: run this with the settings of a running `up`")
    asyncio.run(
        main(
            settings,
            json.loads(secrets_file.read_text()),
            scenarios,
            suffix,
            not args.no_routers,
        )
    )
