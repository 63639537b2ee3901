"""Order checks that call no outside system (on the workflows' task queue).

They are activities rather than workflow code so that their results are recorded in
the run's history: a new release of an address or phone library cannot make a running
order decide differently on replay.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.activities import Checks, implements_sync
from commerce_sync.contracts.orders import OrderCleansing
from commerce_sync.domain.cleansing import CleansedOrder, cleanse_order


class CheckActivities:
    def __init__(self, pairs: dict[str, PairConfig]) -> None:
        self._pairs = pairs

    @implements_sync(Checks.cleanse_order)
    def cleanse_order(self, request: OrderCleansing) -> CleansedOrder:
        """The order with its addresses, phones and e-mail cleansed by the pair's rules,
        what changed (before and after) and what could not be fixed."""
        pair = self._pairs.get(request.pair)
        if pair is None:
            raise ApplicationError(
                f"unknown pair {request.pair!r}", type="UnknownPair", non_retryable=True
            )
        return cleanse_order(request.order, pair.cleansing)
