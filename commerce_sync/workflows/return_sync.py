"""Return sync: a store return request becomes an ERP credit, goods back on hand and a
refund, or a clear refusal, and the store hears which.

Workflow id `return:{pair}:{rma_id}`. Steps (compensation in brackets): read the return
and its order from the store -> find the ERP sales order, its shipments and the earlier
returns of the order -> validate (quantities no more than shipped and not yet returned,
inside the pair's return window from the shipment, refund no more than paid and not yet
refunded, the order's currency); an invalid request is rejected to the store and ends
`rejected` with no ERP write -> approval over `returns.approval_over` (update `approve`,
escalation alert, rejection at the final timeout) -> ERP credit / return order [cancel
it] -> goods back on hand [take them back] -> refund [void it] -> store status refunded
[restore requested].

Every ERP document is keyed by the run's reference (`RMA-{store}-{rma_id}-{run}`), so a
retry finds what exists; a repeated event reaches the same run, or none (dispatch's
reuse policy), and a fresh run after a failed one keys new documents. Earlier returns are read from the ERP (its
credits / return orders of the order and their refunds), the system of record for money
and stock, so there is no second copy in the database to drift from it.

A permanent failure runs the compensations in reverse, records a dead letter (process
`return`), alerts and fails the run. Deterministic code only.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from commerce_sync.contracts import search_attributes as sa
    from commerce_sync.contracts.activities import Config, Database, Erp, Store
    from commerce_sync.contracts.documents import ErpOrderHandle, StoreReturn
    from commerce_sync.contracts.orders import (
        ApprovalDecision,
        StepRecord,
    )
    from commerce_sync.contracts.return_steps import (
        CreditCreate,
        CreditRef,
        PriorReturnsLookup,
        RefundRequest,
        RestockRequest,
        ReturnDocRef,
        ReturnStatusUpdate,
        ReturnTwinCheck,
        StoreReturnRef,
    )
    from commerce_sync.contracts.returns import (
        ReturnState,
        ReturnSyncInput,
        ReturnSyncStatus,
        return_reference,
    )
    from commerce_sync.contracts.steps import (
        ErpOrderLookup,
        ErpOrderRefInput,
        ResolveDeadLetters,
        StoreOrderRef,
    )
    from commerce_sync.domain.models import Order, ReturnStatus
    from commerce_sync.domain.pair_rules import PairRules
    from commerce_sync.domain.returns import (
        ReturnContext,
        credit_lines,
        refund_amount,
        restock_lines,
        return_problems,
    )
    from commerce_sync.workflows.saga import Compensation, PairSaga, permanent_failure


TWIN_CHECK_PATCH = "remove-duplicate-return-documents"
# Runs recorded before this end without looking for twins that lost answers made.


class ReturnRefused(Exception):
    """The request cannot be accepted; the reason goes back to the store."""


@workflow.defn(name="ReturnSync")
class ReturnSyncWorkflow(PairSaga):
    @workflow.init
    def __init__(self, input: ReturnSyncInput) -> None:
        self._input = input
        self._status = ReturnSyncStatus(
            pair=input.pair, rma_id=input.rma_id, state=ReturnState.STARTED
        )
        self._pair: PairRules | None = None
        self._decision: ApprovalDecision | None = None
        self._compensations: list[Compensation] = []

    # ---- messages ------------------------------------------------------------------

    @workflow.query(name="status")
    def status(self) -> ReturnSyncStatus:
        return self._status

    @workflow.update(name="approve")
    async def approve(self, decision: ApprovalDecision) -> ReturnSyncStatus:
        self._decision = decision
        self._status.decision = decision
        await workflow.wait_condition(lambda: self._status.state != ReturnState.AWAITING_APPROVAL)
        return self._status

    @approve.validator
    def _validate_approve(self, decision: ApprovalDecision) -> None:
        if not decision.by.strip():
            raise ValueError("'by' is required: who approves or rejects")
        if self._status.state != ReturnState.AWAITING_APPROVAL or self._decision is not None:
            raise ValueError(f"nothing waits for approval (state: {self._status.state.value})")

    # ---- the run -------------------------------------------------------------------

    @workflow.run
    async def run(self, input: ReturnSyncInput) -> ReturnSyncStatus:
        workflow.upsert_search_attributes([sa.INTEGRATION_PAIR.value_set(input.pair)])
        self._set_state(ReturnState.VALIDATING)
        self._pair = await self._act(Config.pair, input.pair, queue=None)
        self._status.reference = return_reference(
            self._store, input.rma_id, workflow.info().first_execution_run_id
        )
        handle: ErpOrderHandle | None = None
        try:
            try:
                store_return, order, handle = await self._read()
                await self._validate(store_return, order, handle)
            except ReturnRefused as refused:
                return await self._reject(str(refused))
            if not await self._approved():
                return self._status
            await self._process(order, handle)
        except ActivityError as error:
            failure = permanent_failure(error)
            if failure is None:
                raise
            return await self._end_failed(failure.type or "failed", str(failure), handle)
        # What an earlier failed run of this return left (a run started again by a
        # redelivered request) is fixed now.
        await self._act(
            Database.resolve_dead_letters,
            ResolveDeadLetters(business_key=workflow.info().workflow_id, note="return refunded"),
            queue=None,
        )
        self._end(ReturnState.REFUNDED, f"{self._status.refund_amount} refunded")
        if workflow.patched(TWIN_CHECK_PATCH):
            await self._remove_twins(handle, keep=True)
        return self._status

    async def _remove_twins(self, handle: ErpOrderHandle | None, *, keep: bool) -> None:
        """A create whose answer was lost can land after its retry made the document again:
        a second credit, restock or refund (money paid out twice). Once the pair's
        `duplicate_check_after` has passed since the creates, such twins are removed;
        `keep` keeps what this run recorded, otherwise (a run that undid its work) every
        live document of the return goes. A check that fails is alerted: the return itself
        stands as it ended."""
        if handle is None:
            return
        await workflow.sleep(self._pair_config.duplicate_check_after)
        status = self._status
        check = ReturnTwinCheck(
            pair=self._input.pair,
            handle=handle,
            reference=status.reference,
            credit_id=status.credit_id if keep else "",
            restock_id=status.restock_id if keep else "",
            refund_id=status.refund_id if keep else "",
        )
        try:
            twins = await self._act(Erp.remove_return_twins, check, queue=self._erp)
        except ActivityError as error:
            await self._alert(
                "duplicate_check_failed",
                f"return {self._input.rma_id}: could not look for duplicate ERP documents: "
                f"{error.cause or error}",
            )
            return
        if twins:
            self._step("remove duplicate ERP documents", ", ".join(twins))
            await self._alert(
                "duplicate_erp_document",
                f"return {self._input.rma_id}: removed duplicates made by lost answers: "
                + ", ".join(twins),
            )

    async def _read(self) -> tuple[StoreReturn, Order, ErpOrderHandle]:
        pair = self._pair_config
        store_return = await self._act(
            Store.get_return,
            StoreReturnRef(pair=pair.id, return_id=self._input.rma_id),
            queue=self._store,
        )
        self._status.store_order_id = store_return.order_id
        workflow.upsert_search_attributes([sa.STORE_ORDER_ID.value_set(store_return.order_id)])
        order = await self._act(
            Store.get_order,
            StoreOrderRef(pair=pair.id, order_id=store_return.order_id),
            queue=self._store,
        )
        self._status.store_order_number = order.number
        self._status.currency = order.currency
        self._step("read return", f"{len(store_return.request.lines)} lines of {order.number}")
        handle = await self._act(
            Erp.find_order,
            ErpOrderLookup(pair=pair.id, store_order_number=order.number),
            queue=self._erp,
        )
        if handle is None:
            raise ReturnRefused(f"order: {order.number} is not in {pair.erp}")
        self._status.erp_order_id = handle.id
        return store_return, order, handle

    async def _validate(
        self, store_return: StoreReturn, order: Order, handle: ErpOrderHandle
    ) -> None:
        pair = self._pair_config
        shipments = await self._act(
            Erp.get_shipments,
            ErpOrderRefInput(pair=pair.id, handle=handle),
            queue=self._erp,
        )
        prior = await self._act(
            Erp.prior_returns,
            PriorReturnsLookup(pair=pair.id, handle=handle, exclude=self._status.reference),
            queue=self._erp,
        )
        shipped: dict[str, int] = {}
        shipped_at: datetime | None = None
        for shipment in shipments:
            for line in shipment.lines:
                shipped[line.sku] = shipped.get(line.sku, 0) + line.quantity
            if shipment.shipped_at is not None and (
                shipped_at is None or shipment.shipped_at > shipped_at
            ):
                shipped_at = shipment.shipped_at
        context = ReturnContext(
            shipped=shipped,
            already_returned=prior.quantities,
            already_refunded=prior.refunded,
            shipped_at=shipped_at,
            now=workflow.now(),
            window_days=pair.returns.window_days,
            currencies=tuple(pair.currencies),
        )
        problems = return_problems(store_return.request, order, context)
        if problems:
            self._status.error = "; ".join(problems)
            self._step("validate", self._status.error, outcome="failed")
            raise ReturnRefused(self._status.error)
        self._status.lines = credit_lines(order, store_return.request)
        self._status.refund_amount = refund_amount(self._status.lines)
        self._step(
            "validate",
            f"refund {self._status.refund_amount} {order.currency}, {len(prior.references)} earlier returns",
        )

    async def _approved(self) -> bool:
        pair = self._pair_config
        threshold = pair.returns.approval_over
        if threshold is None or self._status.refund_amount <= threshold:
            self._step("approval", "not needed")
            self._set_state(ReturnState.PROCESSING)
            return True
        reason = f"refund {self._status.refund_amount} is over {threshold}"
        self._set_state(ReturnState.AWAITING_APPROVAL)
        await self._wait_for_decision(
            self._status,
            [reason],
            f"return {self._input.rma_id}",
            lambda: self._decision is not None,
        )
        decision = self._decision
        assert decision is not None
        self._status.approval = None
        if decision.approved:
            self._step("approval", f"approved by {decision.by}")
            self._set_state(ReturnState.PROCESSING)
            return True
        self._step("approval", f"rejected by {decision.by}: {decision.reason}", outcome="rejected")
        await self._reject(f"Rejected by {decision.by}: {decision.reason}", record=False)
        return False

    async def _process(self, order: Order, handle: ErpOrderHandle) -> None:
        """Credit, restock, refund, store status: each undone on a later failure."""
        pair = self._pair_config
        reference = self._status.reference
        lines = self._status.lines

        # Registered before each step: a step whose answer was lost is still undone.
        self._register(
            "cancel the ERP credit",
            lambda: self._act(
                Erp.cancel_credit,
                CreditRef(pair=pair.id, handle=handle, reference=reference),
                queue=self._erp,
                compensation=True,
            ),
        )
        credit_id = await self._act(
            Erp.create_credit,
            CreditCreate(pair=pair.id, handle=handle, lines=lines, reference=reference),
            queue=self._erp,
        )
        self._status.credit_id = credit_id
        self._step("create ERP credit", credit_id)

        self._register(
            "take back the restocked goods",
            lambda: self._act(
                Erp.reverse_restock,
                ReturnDocRef(pair=pair.id, credit_id=credit_id, reference=reference),
                queue=self._erp,
                compensation=True,
            ),
        )
        self._status.restock_id = await self._act(
            Erp.restock,
            RestockRequest(
                pair=pair.id, credit_id=credit_id, lines=restock_lines(lines), reference=reference
            ),
            queue=self._erp,
        )
        self._step("restock", ", ".join(f"{line.quantity} {line.sku}" for line in lines))

        self._register(
            "void the refund",
            lambda: self._act(
                Erp.reverse_refund,
                ReturnDocRef(pair=pair.id, credit_id=credit_id, reference=reference),
                queue=self._erp,
                compensation=True,
            ),
        )
        method = order.payment.method if order.payment is not None else "card"
        self._status.refund_id = await self._act(
            Erp.refund,
            RefundRequest(
                pair=pair.id,
                handle=handle,
                credit_id=credit_id,
                amount=self._status.refund_amount,
                currency=order.currency,
                method=method,
                reference=reference,
            ),
            queue=self._erp,
        )
        self._step("refund", f"{self._status.refund_amount} {order.currency}")

        self._register(
            "restore the store's return status",
            lambda: self._set_store_status(
                ReturnStatus.REQUESTED, "commerce-sync undid its changes", compensation=True
            ),
        )
        await self._set_store_status(
            ReturnStatus.REFUNDED,
            f"Refunded {self._status.refund_amount} {order.currency}; {pair.erp} {credit_id}",
        )
        self._step("confirm to store", "refunded")
        self._compensations.clear()

    # ---- endings -------------------------------------------------------------------

    async def _set_store_status(
        self, status: ReturnStatus, note: str, *, compensation: bool = False
    ) -> None:
        await self._act(
            Store.set_return_status,
            ReturnStatusUpdate(
                pair=self._input.pair, return_id=self._input.rma_id, status=status, note=note
            ),
            queue=self._store,
            compensation=compensation,
        )

    async def _reject(self, reason: str, *, record: bool = True) -> ReturnSyncStatus:
        """Tell the store why, and end `rejected`: nothing was written to the ERP."""
        self._status.error = reason
        await self._set_store_status(ReturnStatus.REJECTED, reason[:500])
        self._set_state(ReturnState.REJECTED)
        if record:
            self._step("rejected", reason)
        return self._status

    async def _end_failed(
        self, reason: str, error: str, handle: ErpOrderHandle | None = None
    ) -> ReturnSyncStatus:
        self._status.error = error
        if self._compensations:
            self._set_state(ReturnState.COMPENSATING)
            await self._unwind(f"return {self._input.rma_id}", self._compensated)
            if workflow.patched(TWIN_CHECK_PATCH):
                # A create undone above may still have a twin landing late.
                await self._remove_twins(handle, keep=False)
        await self._dead_letter(
            self._input.pair,
            "return",
            reason,
            error,
            {
                "pair": self._input.pair,
                "rma_id": self._input.rma_id,
                "store_order_id": self._status.store_order_id,
                "reference": self._status.reference,
                "skus": [line.sku for line in self._status.lines],
            },
        )
        await self._alert("return_failed", f"return {self._input.rma_id} ({reason}): {error}")
        self._set_state(ReturnState.FAILED)
        raise ApplicationError(
            f"return {self._input.rma_id} {reason}: {error}", type=reason, non_retryable=True
        )

    def _compensated(self, name: str, outcome: str, detail: str) -> None:
        self._status.compensations.append(self._record(name, outcome, detail))

    # ---- helpers -------------------------------------------------------------------

    def _record(self, name: str, outcome: str, detail: str = "") -> StepRecord:
        return StepRecord(name=name, at=workflow.now(), outcome=outcome, detail=detail)

    def _step(self, name: str, detail: str = "", outcome: str = "ok") -> None:
        self._status.steps.append(self._record(name, outcome, detail))

    def _set_state(self, state: ReturnState) -> None:
        self._status.state = state
        workflow.upsert_search_attributes([sa.SYNC_STATE.value_set(state.value)])

    def _end(self, state: ReturnState, detail: str) -> ReturnSyncStatus:
        self._set_state(state)
        self._step(state.value, detail)
        return self._status
