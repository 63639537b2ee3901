"""Activities on the workflow task queue: the application database, config and alerts."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.activities import Config, Database, Ops, implements_sync
from commerce_sync.contracts.orders import (
    NewCustomerFlags,
    OrderAssessment,
    OrderAssessmentInput,
)
from commerce_sync.contracts.steps import (
    AlertInput,
    DeadLetterInput,
    LinkInput,
    LinkLookup,
    OrderSeen,
    ResolveDeadLetters,
)
from commerce_sync.domain.anomalies import anomaly_flags, anomaly_flags_both_ways, anomaly_score
from commerce_sync.domain.models import Order
from commerce_sync.ops.alerts import Notifier
from commerce_sync.ops.codec import address_match_value, email_match_value
from commerce_sync.store.alerts import record_alert
from commerce_sync.store.dead_letters import record_dead_letter, resolve_dead_letters
from commerce_sync.store.links import find_store_id, upsert_link
from commerce_sync.store.orders_seen import (
    OrderFacts,
    note_order_and_count,
    record_order_and_history,
)
from commerce_sync.store.retention import orders_seen_kept_for

log = logging.getLogger("commerce_sync.alerts")
# How far inside the kept window an order must be placed to count as never pruned.
PRUNE_MARGIN = timedelta(hours=1)


def order_facts(
    pair: str, store_order_id: str, order: Order, search_key: bytes | None
) -> OrderFacts:
    """What the app database keeps of an order for the anomaly checks: the e-mail and the
    shipping address only as (keyed) hashes, the quantity per SKU summed over lines."""
    shipping = order.shipping_address
    quantities: dict[str, int] = {}
    for line in order.lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    return OrderFacts(
        pair=pair,
        store_order_id=store_order_id,
        email_key=email_match_value(search_key, order.customer.email),
        address_key=address_match_value(
            search_key, [shipping.line1, shipping.line2, shipping.postal_code, shipping.country]
        ),
        placed_at=order.placed_at,
        currency=order.currency,
        total=order.total,
        billing_country=order.billing_address.country,
        shipping_country=shipping.country,
        sku_quantities=quantities,
    )


class DatabaseActivities:
    def __init__(
        self,
        engine: Engine,
        pairs: dict[str, PairConfig],
        *,
        notifier: Notifier | None = None,
        send_attempts: int = 5,
        email_key: bytes | None = None,
    ) -> None:
        self._engine = engine
        self._pairs = pairs
        self._notifier = notifier
        self._send_attempts = send_attempts
        self._email_key = email_key

    @implements_sync(Config.pair)
    def pair_config(self, pair: str) -> PairConfig:
        """The pair's rules and lookups, recorded in the run's history at its start."""
        try:
            return self._pairs[pair]
        except KeyError:
            raise ApplicationError(
                f"unknown integration pair {pair!r}", type="UnknownPair", non_retryable=True
            ) from None

    @implements_sync(Database.record_link)
    def record_link(self, link: LinkInput) -> int:
        """Record (pair, kind, store id) <-> ERP id; repeating it changes nothing."""
        row = upsert_link(self._engine, link.pair, link.kind, link.store_id, link.erp_id)
        assert row.id is not None
        return row.id

    @implements_sync(Database.find_store_id)
    def find_store_id(self, lookup: LinkLookup) -> str | None:
        return find_store_id(self._engine, lookup.pair, lookup.kind, lookup.erp_id)

    @implements_sync(Database.note_order)
    def note_order(self, seen: OrderSeen) -> int:
        """Record the order and return how many orders its e-mail placed in the last hour."""
        email = email_match_value(self._email_key, seen.email)
        return note_order_and_count(
            self._engine, seen.pair, seen.store_order_id, email, seen.placed_at
        )

    @implements_sync(Database.assess_order)
    def assess_order(self, request: OrderAssessmentInput) -> OrderAssessment:
        """Record the order's facts (once) and weigh it against the pair's earlier orders:
        the orders of its e-mail in the last hour (a fixed risk rule) and the anomaly
        flags learnt from the history (`domain/anomalies.py`). The e-mail and the
        shipping address are kept only as keyed hashes."""
        pair = self.pair_config(request.pair)
        order = request.order
        facts = order_facts(request.pair, request.store_order_id, order, self._email_key)
        rules = pair.anomalies
        seen = record_order_and_history(
            self._engine,
            facts,
            history_days=rules.history_days,
            address_window_days=rules.address_window_days,
        )
        new = request.is_new_customer
        if_new = None
        if new is None:  # not known yet: weighed both ways, the run picks
            flags, new_flags = anomaly_flags_both_ways(order, seen.history, rules)
            if_new = NewCustomerFlags(flags=new_flags, score=anomaly_score(new_flags))
        else:
            flags = anomaly_flags(order, seen.history, rules, is_new_customer=new)
        # A row of an order placed within the kept window is never pruned: recorded now, no
        # earlier run of it reached the ERP (each run records it before its ERP create).
        kept_since = datetime.now(UTC) - orders_seen_kept_for([rules]) + PRUNE_MARGIN
        return OrderAssessment(
            orders_from_email_last_hour=seen.orders_from_email_last_hour,
            flags=flags,
            score=anomaly_score(flags),
            history_orders=seen.history_orders,
            first_run=seen.first_seen and order.placed_at > kept_since,
            if_new_customer=if_new,
        )

    @implements_sync(Database.record_dead_letter)
    def record_dead_letter(self, letter: DeadLetterInput) -> int:
        info = activity.info()
        return record_dead_letter(
            self._engine,
            pair=letter.pair,
            process=letter.process,
            business_key=letter.business_key,
            reason=letter.reason,
            error=letter.error,
            payload=letter.payload,
            attempts=letter.attempts,
            dedupe_key=f"{info.workflow_run_id}:{letter.reason}",
        )

    @implements_sync(Database.resolve_dead_letters)
    def resolve_dead_letters(self, request: ResolveDeadLetters) -> int:
        return resolve_dead_letters(self._engine, request.business_key, request.note)

    @implements_sync(Ops.alert)
    def alert(self, alert: AlertInput) -> bool:
        """Record the alert, log it and send it through apprise (ops/alerts.py).

        Recorded first: a retried activity finds its row and records nothing new. It
        sends when the row is new, and again on every retry, because a retry means the
        previous attempt's send failed (or timed out): delivery is at least once. After
        `send_attempts` attempts it gives up sending so that a broken channel never
        stalls the workflow; the alert stays in the table and the log says so.
        """
        info = activity.info()
        new = record_alert(
            self._engine,
            dedupe_key=f"{info.workflow_run_id}:{info.activity_id}",
            kind=alert.kind,
            key=alert.key,
            message=alert.message,
        )
        if new:
            log.warning("ALERT %s %s: %s", alert.kind, alert.key, alert.message)
        if self._notifier is None or not (new or info.attempt > 1):
            return new
        if self._notifier.send(alert.kind, alert.key, alert.message):
            return new
        if info.attempt >= self._send_attempts:
            log.error(
                "alert %s for %s not delivered after %d attempts; it stays in the alerts table",
                alert.kind,
                alert.key,
                info.attempt,
            )
            return new
        raise ApplicationError(
            f"alert {alert.kind} not delivered to every channel (attempt {info.attempt})",
            type="AlertNotDelivered",
        )
