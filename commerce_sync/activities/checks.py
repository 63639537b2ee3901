"""Order checks that call no outside system (on the workflows' task queue).

They are activities rather than workflow code so that their results are recorded in
the run's history: a new release of an address or phone library cannot make a running
order decide differently on replay.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.activities import Checks, implements_sync
from commerce_sync.contracts.orders import OrderCleansing, PreparedOrder
from commerce_sync.domain.cleansing import CleansedOrder, cleanse_order
from commerce_sync.ops.codec import KeyRing, customer_email_search_value


class CheckActivities:
    def __init__(self, pairs: dict[str, PairConfig], ring: KeyRing | None) -> None:
        """`ring`: the payload codec's keys (None: payloads are not encrypted), for the
        `CustomerEmail` search value."""
        self._pairs = pairs
        self._ring = ring

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

    @implements_sync(Checks.prepare_order)
    def prepare_order(self, request: OrderCleansing) -> PreparedOrder:
        """`cleanse_order` and the `CustomerEmail` search value of the e-mail as read
        (`Codec.email_search_value`), in one step: neither calls anything outside."""
        return PreparedOrder(
            cleansed=self.cleanse_order(request),
            email_search_value=customer_email_search_value(
                self._ring, request.order.customer.email
            ),
        )
