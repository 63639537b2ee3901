"""Customer merge and sync activities.

- `CustomerActivities` on every system's queue (stores and ERPs alike): read a customer,
  find customers by e-mail, write one, set its active flag, list and re-point its open
  orders. Writes are absolute and answer the record as read back afterwards, so the
  workflow can remember what it wrote (echo suppression); a retry writes the same again.
- `CustomerDatabaseActivities` on the workflow queue: the echo fingerprints and the
  customer links.
"""

from __future__ import annotations

from sqlalchemy import Engine
from temporalio.exceptions import ApplicationError

from commerce_sync.activities.errors import classified
from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.activities import Customers, Database, implements, implements_sync
from commerce_sync.contracts.customers import (
    CustomerActiveInput,
    CustomerEmailLookup,
    CustomerLinkLookup,
    CustomerRecordRef,
    CustomerWriteInput,
    EchoVerdict,
    LinkRepoint,
    LinkRow,
    OrderCustomerInput,
    WriteMemo,
)
from commerce_sync.domain.models import Customer
from commerce_sync.ops.heartbeat import HEARTBEAT_MEMORY
from commerce_sync.store.customer_writes import (
    abandon_intent,
    echo_verdict,
    links_to_move,
    remember_intent,
    remember_write,
    repoint_links,
    restore_links,
)
from commerce_sync.store.links import find_erp_id, find_store_id
from commerce_sync.systems.customer_ports import CustomerPort


class CustomerActivities:
    def __init__(self, port: CustomerPort, pairs: dict[str, PairConfig]) -> None:
        self._port = port
        self._pairs = pairs

    @implements(Customers.get)
    @classified
    async def get(self, ref: CustomerRecordRef) -> Customer | None:
        return await self._port.get_customer(ref.customer_id, self._pairs[ref.pair])

    @implements(Customers.by_email)
    @classified
    async def by_email(self, lookup: CustomerEmailLookup) -> list[Customer]:
        return await self._port.customers_by_email(lookup.email, self._pairs[lookup.pair])

    @implements(Customers.same_person)
    @classified
    async def same_person(self, lookup: CustomerEmailLookup) -> list[Customer]:
        """Customers whose e-mail normalises as this one does (the pair's plus rule)."""
        return await self._port.same_person(lookup.email, self._pairs[lookup.pair])

    async def _read_back(self, pair: PairConfig, customer_id: str) -> Customer:
        found = await self._port.get_customer(customer_id, pair)
        if found is None:
            raise ApplicationError(
                f"{self._port.system} customer {customer_id} is gone",
                type="NotFound",
                non_retryable=True,
            )
        return found

    @implements(Customers.write)
    @classified
    async def write(self, request: CustomerWriteInput) -> Customer:
        pair = self._pairs[request.pair]
        await self._port.write_customer(
            request.customer_id, request.customer, pair, memory=HEARTBEAT_MEMORY
        )
        return await self._read_back(pair, request.customer_id)

    @implements(Customers.set_active)
    @classified
    async def set_active(self, request: CustomerActiveInput) -> Customer:
        pair = self._pairs[request.pair]
        await self._port.set_active(
            request.customer_id, request.active, pair, memory=HEARTBEAT_MEMORY
        )
        return await self._read_back(pair, request.customer_id)

    @implements(Customers.open_orders)
    @classified
    async def open_orders(self, ref: CustomerRecordRef) -> list[str]:
        return await self._port.open_orders(ref.customer_id, self._pairs[ref.pair])

    @implements(Customers.set_order_customer)
    @classified
    async def set_order_customer(self, request: OrderCustomerInput) -> None:
        await self._port.set_order_customer(
            request.order_id, request.customer_id, self._pairs[request.pair]
        )


class CustomerDatabaseActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @implements_sync(Database.remember_customer_intent)
    def remember_intent(self, memo: WriteMemo) -> None:
        remember_intent(self._engine, memo.system, memo.customer_id, memo.fingerprint)

    @implements_sync(Database.abandon_customer_intent)
    def abandon_intent(self, memo: WriteMemo) -> None:
        abandon_intent(self._engine, memo.system, memo.customer_id)

    @implements_sync(Database.remember_customer_write)
    def remember_write(self, memo: WriteMemo) -> None:
        remember_write(self._engine, memo.system, memo.customer_id, memo.fingerprint)

    @implements_sync(Database.customer_echo)
    def is_echo(self, memo: WriteMemo) -> EchoVerdict:
        """`echo`, `pending` (a write is under way: ask again) or `new`."""
        return echo_verdict(self._engine, memo.system, memo.customer_id, memo.fingerprint)

    @implements_sync(Database.customer_links_to_move)
    def links_to_move(self, request: LinkRepoint) -> list[LinkRow]:
        """The links `db.repoint_customer_links` would move, as they are: read before the
        move so that its compensation does not depend on the move's answer."""
        rows = links_to_move(
            self._engine, request.pair, request.side, request.old_keys, request.new_key
        )
        return [LinkRow(id=i, store_id=s, erp_id=e) for i, s, e in rows]

    @implements_sync(Database.repoint_customer_links)
    def repoint_links(self, request: LinkRepoint) -> list[LinkRow]:
        """Idempotent: a retry finds the links already on the survivor and changes nothing
        more (the rows it answers are then the ones still to move, none). The merge's
        compensation uses `db.customer_links_to_move`, read before, not this answer."""
        rows = repoint_links(
            self._engine, request.pair, request.side, request.old_keys, request.new_key
        )
        return [LinkRow(id=i, store_id=s, erp_id=e) for i, s, e in rows]

    @implements_sync(Database.restore_customer_links)
    def restore_links(self, rows: list[LinkRow]) -> None:
        restore_links(self._engine, [(row.id, row.store_id, row.erp_id) for row in rows])

    @implements_sync(Database.find_customer_link)
    def find_link(self, lookup: CustomerLinkLookup) -> str | None:
        """The other side's key of a customer link: the ERP id of a store e-mail, or the
        store e-mail of an ERP id."""
        if lookup.store_id:
            return find_erp_id(self._engine, lookup.pair, "customer", lookup.store_id.lower())
        return find_store_id(self._engine, lookup.pair, "customer", lookup.erp_id)
