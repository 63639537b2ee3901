"""Faults at every write step of a return, both pairs.

A step that fails for good (an injected 400) unwinds the return: the earlier steps are
undone in reverse (and the failing step's own undo, registered before it in case its
answer was lost, finds nothing to undo); the sandboxes' records the return touched are
as they were before it, with one dead letter and one alert, the run failed. Documents
the ERP cannot delete stay, cancelled, with no money or stock effect: the Brightpearl
sales credit (cancelled, its goods-in note deleted, its PAYMENT netted by a VOID) and the
Acumatica return order (cancelled, its receipt corrected and deleted, its refund voided).

Two 503s at every step, and a lost answer of the restock, only delay the return: it ends
refunded with one credit, one restock and one refund.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.integration.orders.order_stack import PAIRS
from tests.integration.orders.sandbox_views import (
    alerts,
    clear_faults,
    dead_letters,
    erp_writes,
    inject,
)
from tests.integration.returns.return_stack import ReturnStack, ShippedOrder, touched_records

Json = dict[str, Any]

STEPS = ("credit", "restock", "refund", "store status")
UNDO = {
    "credit": "cancel the ERP credit",
    "restock": "take back the restocked goods",
    "refund": "void the refund",
    "store status": "restore the store's return status",
}
# The call that makes each step's document, in each system.
WRITE_CALL = {
    "brightpearl": {
        "credit": "POST */order-service/sales-credit",
        "restock": "POST */warehouse-service/order/*/goods-note/goods-in",
        "refund": "POST */accounting-service/customer-payment",
    },
    "acumatica": {
        "credit": "PUT */SalesOrder",
        "restock": "POST */SalesOrder/SalesOrderCreateReceipt",
        "refund": "PUT */Payment",
    },
    "kentico": {"store status": "PUT /rest/customtableitem.commercesync.returnrequest/*"},
    "xcart": {"store status": "PUT /admin.php*"},
}
STORE_REFUNDED = {"kentico": "refunded", "xcart": "completed"}
PRICE = Decimal("24.99")  # WIDGET-4
RETURNED = [{"sku": "WIDGET-4", "quantity": 2}]


def system_of(order: ShippedOrder, step: str) -> str:
    return order.store if step == "store status" else order.erp


async def rule_hits(returns: ReturnStack, system: str) -> list[tuple[str, int | None, int]]:
    """(match, status, hits) of each fault rule of `system`, in order."""
    response = await returns.stack.sandbox.get(f"/{system}/_sandbox/faults")
    response.raise_for_status()
    return [(r["match"], r["status"], int(r["hits"])) for r in response.json()["faults"]]


async def goods_received(returns: ReturnStack, erp: str, credit: Json) -> list[Json]:
    """The documents that put a credit's goods back on hand: Brightpearl's goods-in notes
    of the sales credit, Acumatica's receipts (shipments of type Receipt) of the return
    order."""
    state = await returns.stack.state_of(erp)
    if erp == "brightpearl":
        return [
            note
            for note in state["goods_in_notes"].values()
            if str(note["orderId"]) == str(credit["id"])
        ]
    return [
        shipment
        for shipment in state["entities"].get("Shipment", [])
        if shipment.get("Type") == "Receipt"
        and any(
            row.get("OrderType") == credit["OrderType"]
            and row.get("OrderNbr") == credit["OrderNbr"]
            for row in shipment.get("Orders", [])
        )
    ]


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("pair", list(PAIRS))
async def test_permanent_failure_unwinds_the_return(
    returns: ReturnStack, pair: str, step: str
) -> None:
    order = await returns.shipped_order(pair, RETURNED)
    system = system_of(order, step)
    # `count` 1: the step is refused once; the undo of the store status may write again.
    await inject(
        returns.stack, system, {"match": WRITE_CALL[system][step], "status": 400, "count": 1}
    )
    writes_before = len(await erp_writes(returns.stack, order.erp))
    rma = await returns.request_return(order.store, order.order_id, RETURNED)
    # The store's record of the request exists before the run writes anything.
    before = await touched_records(returns, order, rma)
    stock_before = await returns.on_hand(order.erp, "WIDGET-4")
    assert before["store_return_status"] == "requested"
    assert await returns.credits(order) == []

    failed = await returns.wait_return(pair, rma, "failed", run_status="FAILED")
    status = failed["status"]
    assert await rule_hits(returns, system) == [(WRITE_CALL[system][step], 400, 1)]
    # Every step up to the failing one is undone, in reverse; the undo of the failing
    # step finds nothing.
    reached = STEPS[: STEPS.index(step) + 1]
    undone = [(c["name"], c["outcome"]) for c in status["compensations"]]
    assert undone == [(UNDO[each], "ok") for each in reversed(reached)]
    assert [s["name"] for s in status["steps"]][3:] == [
        {"credit": "create ERP credit", "restock": "restock", "refund": "refund"}[each]
        for each in reached[:-1]
    ]
    assert await touched_records(returns, order, rma) == before
    assert await returns.on_hand(order.erp, "WIDGET-4") == stock_before

    credits = await returns.credits(order)
    moves = await returns.refunds(order.erp, status["reference"])
    if step == "credit":
        # Refused before anything existed: the undo made no ERP write either.
        assert credits == []
        writes = (await erp_writes(returns.stack, order.erp))[writes_before:]
        assert [w["status"] for w in writes] == [400], writes
    else:
        # The credit stays, cancelled, for the lines asked.
        assert len(credits) == 1 and returns.credit_cancelled(order.erp, credits[0])
        assert returns.credit_lines(order.erp, credits[0]) == {"WIDGET-4": 2}
        assert await goods_received(returns, order.erp, credits[0]) == []
    if step in ("credit", "restock", "refund"):
        assert moves == []
    elif order.erp == "brightpearl":
        # The PAYMENT and its VOID, the same amount: no money moved.
        assert sorted(moves) == [("PAYMENT", 2 * PRICE, "USD"), ("VOID", 2 * PRICE, "USD")]
    else:
        assert moves == [("VOID", 2 * PRICE, "USD")]  # the refund itself, voided

    wid = f"return:{pair}:{rma}"
    letters = dead_letters(returns.stack, wid)
    assert [(letter.process, letter.pair) for letter in letters] == [("return", pair)]
    assert [alert.kind for alert in alerts(returns.stack, wid)] == ["return_failed"]
    if step != "refund":
        return
    # Once the ERP takes refunds again, the dead letter's replay runs the return afresh:
    # new documents (the failed run's credit stays cancelled), and the letter resolved.
    await clear_faults(returns.stack, order.erp)
    stack = returns.stack
    replayed = await stack.http.post(
        f"{stack.api}/dead-letters/{letters[0].id}/replay",
        json={"by": "ops"},
        headers=stack.headers(),
    )
    assert replayed.status_code == 202, replayed.text
    done = await returns.wait_return(pair, rma, "refunded", run_status="COMPLETED")
    assert done["status"]["reference"] != status["reference"]
    credits = await returns.credits(order)
    assert sorted(returns.credit_cancelled(order.erp, c) for c in credits) == [False, True]
    assert await returns.on_hand(order.erp, "WIDGET-4") == stock_before + 2
    assert [letter.status for letter in dead_letters(returns.stack, wid)] == ["resolved"]


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_transient_faults_at_every_step_only_delay_the_return(
    returns: ReturnStack, pair: str
) -> None:
    order = await returns.shipped_order(pair, RETURNED)
    # Two 503s at each step's write, answered with a short Retry-After; then the
    # restock's answer is lost (the ERP does the work, the connector times out): its
    # retry must find the goods received, not receive them again.
    for step in STEPS:
        system = system_of(order, step)
        rule = {"match": WRITE_CALL[system][step], "status": 503, "count": 2, "retry_after_s": 1}
        await inject(returns.stack, system, rule)
    late = returns.stack.settings.http_timeout_s + 1.0
    lost = {"match": WRITE_CALL[order.erp]["restock"], "delay_s": late, "count": 1}
    await inject(returns.stack, order.erp, lost)
    stock_before = await returns.on_hand(order.erp, "WIDGET-4")
    rma = await returns.request_return(order.store, order.order_id, RETURNED)

    done = await returns.wait_return(pair, rma, "refunded", run_status="COMPLETED")
    status = done["status"]
    # Every rule was spent: each step met its faults and was retried past them.
    assert [hits for _, _, hits in await rule_hits(returns, order.erp)] == [2, 2, 2, 1]
    assert [hits for _, _, hits in await rule_hits(returns, order.store)] == [2]
    assert status["compensations"] == []
    assert [s["name"] for s in status["steps"]][3:] == [
        "create ERP credit",
        "restock",
        "refund",
        "confirm to store",
        "refunded",
    ]
    credits = await returns.credits(order)
    assert len(credits) == 1 and not returns.credit_cancelled(order.erp, credits[0])
    assert returns.credit_lines(order.erp, credits[0]) == {"WIDGET-4": 2}
    assert len(await goods_received(returns, order.erp, credits[0])) == 1
    assert await returns.on_hand(order.erp, "WIDGET-4") == stock_before + 2
    assert await returns.refunds(order.erp, status["reference"]) == [("PAYMENT", 2 * PRICE, "USD")]
    assert await returns.store_return_status(order.store, rma) == STORE_REFUNDED[order.store]
    wid = f"return:{pair}:{rma}"
    assert dead_letters(returns.stack, wid) == []
    assert alerts(returns.stack, wid) == []
