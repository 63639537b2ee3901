"""Return activities, on each system's own task queue like the order ones
(`StoreReturnActivities` on `kentico`/`xcart`, `ErpReturnActivities` on
`brightpearl`/`acumatica`).

Every ERP write is keyed by the return's reference (one per store return request), so a
retried create finds the credit / restock / refund an earlier attempt made, and every
undo finds what to undo by the same reference; undoing what does not exist succeeds.
"""

from __future__ import annotations

from commerce_sync.activities.errors import classified
from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.activities import Erp, Store, implements
from commerce_sync.contracts.documents import PriorReturns, StoreReturn
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
from commerce_sync.systems.ports import ErpPort, StorePort


class StoreReturnActivities:
    def __init__(self, port: StorePort, pairs: dict[str, PairConfig]) -> None:
        self._port = port
        self._pairs = pairs

    @implements(Store.get_return)
    @classified
    async def get_return(self, ref: StoreReturnRef) -> StoreReturn:
        return await self._port.get_return(ref.return_id, self._pairs[ref.pair])

    @implements(Store.set_return_status)
    @classified
    async def set_return_status(self, update: ReturnStatusUpdate) -> None:
        await self._port.set_return_status(
            update.return_id, update.status, self._pairs[update.pair], note=update.note
        )


class ErpReturnActivities:
    def __init__(self, port: ErpPort, pairs: dict[str, PairConfig]) -> None:
        self._port = port
        self._pairs = pairs

    @implements(Erp.prior_returns)
    @classified
    async def prior_returns(self, lookup: PriorReturnsLookup) -> PriorReturns:
        return await self._port.prior_returns(
            lookup.handle, self._pairs[lookup.pair], exclude=lookup.exclude
        )

    @implements(Erp.create_credit)
    @classified
    async def create_credit(self, request: CreditCreate) -> str:
        return await self._port.create_credit(
            request.handle, request.lines, request.reference, self._pairs[request.pair]
        )

    @implements(Erp.cancel_credit)
    @classified
    async def cancel_credit(self, ref: CreditRef) -> None:
        await self._port.cancel_credit(ref.handle, ref.reference, self._pairs[ref.pair])

    @implements(Erp.restock)
    @classified
    async def restock(self, request: RestockRequest) -> str:
        return await self._port.restock(
            request.credit_id, request.lines, request.reference, self._pairs[request.pair]
        )

    @implements(Erp.reverse_restock)
    @classified
    async def reverse_restock(self, ref: ReturnDocRef) -> None:
        await self._port.reverse_restock(ref.credit_id, ref.reference, self._pairs[ref.pair])

    @implements(Erp.refund)
    @classified
    async def refund(self, request: RefundRequest) -> str:
        return await self._port.refund(
            request.handle,
            request.credit_id,
            request.amount,
            request.currency,
            request.method,
            request.reference,
            self._pairs[request.pair],
        )

    @implements(Erp.reverse_refund)
    @classified
    async def reverse_refund(self, ref: ReturnDocRef) -> None:
        await self._port.reverse_refund(ref.credit_id, ref.reference, self._pairs[ref.pair])

    @implements(Erp.remove_return_twins)
    @classified
    async def remove_return_twins(self, check: ReturnTwinCheck) -> list[str]:
        """After the creates have landed: the twins lost answers made, removed (what each
        ERP can duplicate, and how, is written in its port)."""
        return await self._port.remove_return_twins(
            check.handle,
            check.reference,
            self._pairs[check.pair],
            credit_id=check.credit_id,
            restock_id=check.restock_id,
            refund_id=check.refund_id,
        )
