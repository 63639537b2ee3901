"""A step that fails for good (an injected 400) unwinds the return: refund voided, goods
taken back, credit cancelled, store status restored; the sandboxes' records the return
touched are as they were before it, with one dead letter and one alert. Both pairs,
failing at the refund and at the store status."""

from __future__ import annotations

import pytest
from order_stack import PAIRS
from return_stack import ReturnStack, touched_records
from sandbox_views import alerts, clear_faults, dead_letters, inject

REFUND_CALL = {
    "brightpearl": "POST */accounting-service/customer-payment",
    "acumatica": "PUT */Payment",
}
STORE_STATUS_CALL = {
    "kentico": "PUT /rest/customtableitem.commercesync.returnrequest/*",
    "xcart": "PUT /admin.php*",
}


@pytest.mark.parametrize("step", ["refund", "store status"])
@pytest.mark.parametrize("pair", list(PAIRS))
async def test_permanent_failure_unwinds_the_return(
    returns: ReturnStack, pair: str, step: str
) -> None:
    order = await returns.shipped_order(pair, [{"sku": "WIDGET-4", "quantity": 2}])
    if step == "refund":
        await inject(returns.stack, order.erp, {"match": REFUND_CALL[order.erp], "status": 400})
    else:
        rule = {"match": STORE_STATUS_CALL[order.store], "status": 400, "count": 1}
        await inject(returns.stack, order.store, rule)
    rma = await returns.request_return(
        order.store, order.order_id, [{"sku": "WIDGET-4", "quantity": 2}]
    )
    # The store's record of the request exists before the run writes anything.
    before = await touched_records(returns, order, rma)
    stock_before = await returns.on_hand(order.erp, "WIDGET-4")
    assert before["store_return_status"] == "requested"

    failed = await returns.wait_return(pair, rma, "failed", run_status="FAILED")
    status = failed["status"]
    undone = [(c["name"], c["outcome"]) for c in status["compensations"]]
    expected = [
        ("void the refund", "ok"),
        ("take back the restocked goods", "ok"),
        ("cancel the ERP credit", "ok"),
    ]
    if step == "store status":
        expected.insert(0, ("restore the store's return status", "ok"))
    assert undone == expected
    assert await touched_records(returns, order, rma) == before
    credits = await returns.credits(order)
    assert len(credits) == 1 and returns.credit_cancelled(order.erp, credits[0])
    moves = await returns.refunds(order.erp, status["reference"])
    if step == "refund":
        assert moves == []
    else:
        # Brightpearl: the PAYMENT and its VOID; Acumatica: the refund itself, voided.
        voided = ["PAYMENT", "VOID"] if order.erp == "brightpearl" else ["VOID"]
        assert sorted(kind for kind, _, _ in moves) == voided

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
