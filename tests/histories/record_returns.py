"""Record the return sync histories that tests/unit/test_replay.py replays.

Self-contained: it starts its own Temporal dev server, sandboxes, API and worker on
free ports (the return tests' stack), so it needs nothing running:

    .venv/bin/python -m tests.histories.record_returns

Per pair, from a shipped order: a return refunded at once (`refunded`), one over the
approval threshold approved through the API (`approved`), one rejected for asking more
than is left (`rejected`), and one whose refund the ERP refuses for good (`compensated`:
credit and restock undone, a dead letter, the run failed). Each run's history is written
as `tests/histories/ReturnSync-<pair>-<scenario>-v2.json` (v2: runs that look for
duplicate documents after their creates; the files without it are older runs). Re-record
after a deliberate, patched change to the workflow under a new suffix; keep the old files.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from commerce_sync.config.settings import Settings
from commerce_sync.contracts.ids import return_workflow_id
from tests.histories.in_process_stack import run_recorder, save
from tests.integration.orders.order_stack import PAIRS, Stack, pairs_file_with
from tests.integration.orders.sandbox_views import clear_faults, inject
from tests.integration.returns.return_stack import ReturnStack

HERE = Path(__file__).parent

REFUND_CALL = {
    "brightpearl": "POST */accounting-service/customer-payment",
    "acumatica": "PUT */Payment",
}


async def record(returns: ReturnStack) -> None:
    stack = returns.stack
    for pair in PAIRS:
        order = await returns.shipped_order(pair, [{"sku": "WIDGET-10", "quantity": 8}])
        line = {"sku": "WIDGET-10", "quantity": 1}
        rma = await returns.request_return(order.store, order.order_id, [line])
        await returns.wait_return(pair, rma, "refunded", run_status="COMPLETED")
        await save(stack, return_workflow_id(pair, rma), f"ReturnSync-{pair}-refunded-v2")

        rma = await returns.request_return(order.store, order.order_id, [{**line, "quantity": 7}])
        await returns.wait_return(pair, rma, "awaiting_approval")
        answer = await stack.http.post(
            f"{stack.api}/returns/{pair}/{rma}/approval",
            json={"approved": True, "by": "ops"},
            headers=stack.headers(),
        )
        answer.raise_for_status()
        await returns.wait_return(pair, rma, "refunded", run_status="COMPLETED")
        await save(stack, return_workflow_id(pair, rma), f"ReturnSync-{pair}-approved-v2")

        rma = await returns.request_return(order.store, order.order_id, [line])
        await returns.wait_return(pair, rma, "rejected", run_status="COMPLETED")
        await save(stack, return_workflow_id(pair, rma), f"ReturnSync-{pair}-rejected-v2")

        other = await returns.shipped_order(pair, [{"sku": "WIDGET-2", "quantity": 1}])
        await inject(stack, other.erp, {"match": REFUND_CALL[other.erp], "status": 400})
        rma = await returns.request_return(
            other.store, other.order_id, [{"sku": "WIDGET-2", "quantity": 1}]
        )
        await returns.wait_return(pair, rma, "failed", run_status="FAILED")
        await clear_faults(stack, other.erp)
        await save(stack, return_workflow_id(pair, rma), f"ReturnSync-{pair}-compensated-v2")


async def main() -> None:
    def with_return_rules(settings: Settings, tmp: Path) -> Settings:
        return settings.model_copy(update={"pairs_file": pairs_file_with(tmp)})

    async def record_all(stack: Stack) -> None:
        await record(ReturnStack(stack))

    await run_recorder(record_all, with_return_rules)


if __name__ == "__main__":
    asyncio.run(main())
