"""ERP activities, registered on each ERP's own task queue (`brightpearl`, `acumatica`).

Every write is idempotent: the sales order is kept once per store order number (by the
ERP's own key where it has one, else by looking first), payments are keyed by their
reference, and removing what no longer exists succeeds.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from sqlalchemy import Engine

from commerce_sync.activities.attempts import first_attempt
from commerce_sync.activities.errors import classified
from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.activities import Erp, implements
from commerce_sync.contracts.documents import ErpOrderHandle
from commerce_sync.contracts.steps import (
    CustomerCreate,
    CustomerCreated,
    CustomerLookup,
    CustomerRef,
    ErpOrderCreate,
    ErpOrderCreated,
    ErpOrderLookup,
    ErpOrderRefInput,
    OrderErpCheck,
    OrderErpFacts,
    OrderTwinCheck,
    PaymentRecord,
    PaymentReversal,
    ShipmentEventRef,
    SkuCheck,
)
from commerce_sync.contracts.stock import order_quantities
from commerce_sync.domain.customers import numbering_key
from commerce_sync.domain.models import Customer, Shipment
from commerce_sync.ops.heartbeat import HEARTBEAT_MEMORY
from commerce_sync.store.customer_writes import remember_created, remember_creating
from commerce_sync.store.orders_in_erp import record_order_in_erp
from commerce_sync.systems.customer_ports import customer_port
from commerce_sync.systems.errors import NotFound
from commerce_sync.systems.ports import ErpPort


class ErpActivities:
    def __init__(self, port: ErpPort, pairs: dict[str, PairConfig], *, engine: Engine) -> None:
        """`engine`: the app database, where a customer this process creates is noted
        (`customer_writes.remember_created`)."""
        self._port = port
        self._pairs = pairs
        self._engine = engine

    @implements(Erp.unknown_skus)
    @classified
    async def unknown_skus(self, check: SkuCheck) -> list[str]:
        return await self._port.unknown_skus(check.skus, self._pairs[check.pair])

    @implements(Erp.find_customer)
    @classified
    async def find_customer(self, lookup: CustomerLookup) -> str | None:
        return await self._port.find_customer_by_email(lookup.email, self._pairs[lookup.pair])

    @implements(Erp.check_order)
    @classified
    async def check_order(self, check: OrderErpCheck) -> OrderErpFacts:
        """The SKUs the ERP does not know and the customer with the order's e-mail, read
        side by side in one step (a read turned away for a moment is sent again in the
        connector, `systems/read_retries.py`, so a retry of the step is rare)."""
        pair = self._pairs[check.pair]
        unknown, customer_id = await asyncio.gather(
            self._port.unknown_skus(check.skus, pair),
            self._port.find_customer_by_email(check.email, pair),
        )
        return OrderErpFacts(unknown_skus=unknown, customer_id=customer_id)

    @implements(Erp.create_customer)
    @classified
    async def create_customer(self, request: CustomerCreate) -> CustomerCreated | str:
        """Create unless a customer with the e-mail exists (a retry after a lost answer).
        What an attempt made on the way (Brightpearl's postal addresses) is kept in its
        heartbeats for the retry to reuse (`ops/heartbeat.py`).

        The first attempt creates straight away: the run's `find_customer` has just
        looked, and no earlier attempt can have left a customer behind. A retry looks
        first, then settles on the oldest customer with the e-mail (`_oldest_active`).

        The create is noted in the app database before it is sent (by e-mail) and the
        customer made before its id is answered, so the ERP's announcement of its creation
        (Acumatica's push) starts no customer sync (`intake/dispatch.py` `own_creation`).

        A first attempt that got its answer sent the create once and knows what it made:
        no twin of it can appear later (`twin_possible` False), so the run need not look
        for one. After a retry one may."""
        pair = self._pairs[request.pair]
        await self._note(remember_creating, request.customer.email)
        if first_attempt():
            created = await self._port.create_customer(
                request.customer, pair, memory=HEARTBEAT_MEMORY
            )
            await self._note(remember_created, created)
            return CustomerCreated(customer_id=created, twin_possible=False)
        made = await self._port.find_customer_by_email(request.customer.email, pair)
        if made is None:
            made = await self._port.create_customer(request.customer, pair, memory=HEARTBEAT_MEMORY)
            await self._note(remember_created, made)
        oldest = await self._oldest_active(made, request.customer.email, pair)
        return CustomerCreated(customer_id=oldest, twin_possible=True)

    async def _note(self, remember: Callable[[Engine, str, str], None], key: str) -> None:
        await asyncio.to_thread(remember, self._engine, self._port.system, key)

    async def _oldest_active(self, made: str, email: str, pair: PairConfig) -> str:
        """The oldest active customer with the e-mail, `made` when there is none older.

        An earlier attempt whose answer was lost can land after this attempt's lookup and
        before its create: the create then returns the newer of two customers. The
        customer sync that the ERP's announcement starts merges same-e-mail customers
        into the oldest and deactivates the rest, so the run keeps the oldest too (an
        order created on the newer one would meet it deactivated). The newer one is then
        the twin `remove_order_twins` removes. Neither ERP keeps e-mails unique
        (docs/systems/acumatica.md, docs/systems/brightpearl.md), so this is a look, not
        a key."""
        found = await customer_port(self._port).customers_by_email(email, pair)
        older = [
            customer.origin.external_id
            for customer in found
            if customer.active
            and customer.origin is not None
            and customer.origin.external_id
            and _numbered_after(made, customer.origin.external_id)
        ]
        return min(older, key=numbering_key, default=made)

    @implements(Erp.delete_customer)
    @classified
    async def delete_customer(self, ref: CustomerRef) -> None:
        try:
            await self._port.delete_customer(
                ref.customer_id, self._pairs[ref.pair], memory=HEARTBEAT_MEMORY
            )
        except NotFound:
            pass  # already gone

    @implements(Erp.find_order)
    @classified
    async def find_order(self, lookup: ErpOrderLookup) -> ErpOrderHandle | None:
        return await self._port.find_order(lookup.store_order_number, self._pairs[lookup.pair])

    @implements(Erp.create_order)
    @classified
    async def create_order(self, request: ErpOrderCreate) -> ErpOrderCreated:
        """Create the order once per store order number, in as few calls as the ERP allows:
        the port's create is idempotent on the store order number (Brightpearl: the system
        keeps `externalRef` unique, so a first attempt posts without looking; Acumatica:
        nothing there is unique, so it looks first unless this is the first attempt of the
        first run to reach the ERP) and says whether it made the order, and whether a twin
        of it may still appear (not after the first attempt of the first run)."""
        first = first_attempt()
        handle, made = await self._port.create_order(
            request.order,
            request.customer_id,
            self._pairs[request.pair],
            first_attempt=first,
            first_run=request.first_run,
        )
        if request.bookkeeping is not None:
            records = request.bookkeeping
            await asyncio.to_thread(
                functools.partial(
                    record_order_in_erp,
                    self._engine,
                    pair=request.pair,
                    customer_email=records.customer_email,
                    customer_id=request.customer_id,
                    store_order_id=records.store_order_id,
                    erp_order_id=handle.id,
                    business_key=records.business_key,
                    quantities=order_quantities(request.order),
                )
            )
        return ErpOrderCreated(
            handle=handle, created=made, twin_possible=not (first and request.first_run)
        )

    @implements(Erp.cancel_order)
    @classified
    async def cancel_order(self, ref: ErpOrderRefInput) -> None:
        await self._port.cancel_order(ref.handle, self._pairs[ref.pair])

    @implements(Erp.remove_order_twins)
    @classified
    async def remove_order_twins(self, check: OrderTwinCheck) -> list[str]:
        """Idempotent: a twin removed by an earlier attempt is no longer live.

        Payments need no check: a late second payment is refused by both ERPs, Brightpearl
        for its unique `transactionRef` (docs/systems/brightpearl.md §10), Acumatica
        because the order's unpaid balance is already taken (a payment cannot be applied
        beyond it)."""
        pair = self._pairs[check.pair]
        removed = [
            f"order {twin}"
            for twin in await self._port.remove_order_twins(
                check.keep, check.store_order_number, pair
            )
        ]
        if check.customer is not None and check.customer_id:
            removed += [
                f"customer {twin}"
                for twin in await self._remove_customer_twins(
                    check.customer_id, check.customer, pair
                )
            ]
        return removed

    async def _remove_customer_twins(
        self, keep_id: str, customer: Customer, pair: PairConfig
    ) -> list[str]:
        """A customer this run created, made again by the create whose answer was lost:
        same e-mail and name, numbered after ours, active and with no open order. Such a
        twin is removed the way this run would remove its own (deleted, or deactivated
        where the system keeps it)."""
        customers = customer_port(self._port)
        twins = []
        for found in await customers.customers_by_email(customer.email, pair):
            found_id = found.origin.external_id if found.origin else ""
            if (
                found_id
                and found_id != keep_id
                and _numbered_after(found_id, keep_id)
                and found.active
                and (found.first_name, found.last_name) == (customer.first_name, customer.last_name)
                and not await customers.open_orders(found_id, pair)
            ):
                await self._port.delete_customer(found_id, pair)
                twins.append(found_id)
        return twins

    @implements(Erp.record_payment)
    @classified
    async def record_payment(self, request: PaymentRecord) -> str:
        """On an order the run has just made, the first attempt writes without looking:
        only an earlier attempt of this step could have put a payment on it."""
        return await self._port.record_payment(
            request.handle,
            request.payment,
            request.customer_id,
            self._pairs[request.pair],
            first_on_new_order=request.new_order and first_attempt(),
        )

    @implements(Erp.reverse_payment)
    @classified
    async def reverse_payment(self, request: PaymentReversal) -> None:
        await self._port.reverse_payment(
            request.handle, request.payment_id, self._pairs[request.pair]
        )

    @implements(Erp.get_shipments)
    @classified
    async def get_shipments(self, ref: ErpOrderRefInput) -> list[Shipment]:
        return await self._port.get_shipments(ref.handle, self._pairs[ref.pair])

    @implements(Erp.orders_for_shipments)
    @classified
    async def orders_for_shipments(self, ref: ShipmentEventRef) -> list[str]:
        """The ERP order ids behind the shipments an ERP webhook named."""
        return await self._port.orders_for_shipment_event(ref.ids, ref.rows, self._pairs[ref.pair])


def _numbered_after(candidate: str, ours: str) -> bool:
    """Ids are numbered upwards (`C000012`, `10452`)."""
    return numbering_key(candidate) > numbering_key(ours)
