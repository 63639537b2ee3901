"""Kentico's customer binding (`CustomerPort` of `systems/customer_ports.py`).

Open orders are re-pointed with a `PUT ecommerce.order/{id}` of `OrderCustomerID`
(docs/systems/kentico.md §4, §5); an order is open until the pair's lookups map its status to one of
`CLOSED_ORDER_STATES`.
"""

from __future__ import annotations

from commerce_sync.config.pairs import PairConfig
from commerce_sync.domain.models import Customer
from commerce_sync.systems.attempts import NO_MEMORY, AttemptMemory
from commerce_sync.systems.customer_ports import (
    CLOSED_ORDER_STATES,
    email_base_parts,
    exact_variants,
    is_same_email,
    only_same_person,
)
from commerce_sync.systems.errors import NotFound
from commerce_sync.systems.kentico.client import KenticoClient
from commerce_sync.systems.kentico.formats import where_text

ROLES = ("AddressIsBilling", "AddressIsShipping")  # a Kentico address's roles


class KenticoCustomers:
    system = "kentico"

    def __init__(self, client: KenticoClient) -> None:
        self.client = client

    async def get_customer(self, customer_id: str, pair: PairConfig) -> Customer | None:
        try:
            return await self.client.get_customer(customer_id)
        except NotFound:
            return None

    async def customers_by_email(self, email: str, pair: PairConfig) -> list[Customer]:
        found = await self.client.list_customers_where(
            f"CustomerEmail = {where_text(email.strip())}"
        )
        return [customer for customer in found if is_same_email(customer, email)]

    async def same_person(self, email: str, pair: PairConfig) -> list[Customer]:
        """`CustomerEmail LIKE 'base%@domain'`: every plus-address of the base (LIKE's
        wildcards in the base only widen the candidates; the e-mails are compared after)."""
        local, domain = email_base_parts(email, pair)
        if not local or not pair.customers.plus_addressing_is_same_person:
            return await exact_variants(self, email, pair)
        found = await self.client.list_customers_where(
            f"CustomerEmail LIKE {where_text(f'{local}%@{domain}')}"
        )
        return only_same_person(found, email, pair)

    async def write_customer(
        self,
        customer_id: str,
        customer: Customer,
        pair: PairConfig,
        *,
        memory: AttemptMemory = NO_MEMORY,
    ) -> None:
        await self.client.update_customer(
            customer_id, customer, memory=memory, settle=pair.duplicate_check_after
        )
        await self._clear_missing_roles(int(customer_id), customer)

    async def _clear_missing_roles(self, customer_id: int, customer: Customer) -> None:
        """`update_customer` leaves a role whose address is None as it is; a record written
        whole (a snapshot written back) has none there, so no address keeps that role, and
        an address left with no role is deleted: the customer holds the addresses the
        record carries (an address without a role from before is left alone)."""
        missing = [
            column
            for column, address in (
                ("AddressIsBilling", customer.billing_address),
                ("AddressIsShipping", customer.shipping_address),
            )
            if address is None
        ]
        if not missing:
            return
        for row in await self.client.list_customer_address_rows(customer_id):
            clear = {column: False for column in missing if row.get(column)}
            if not clear:
                continue
            if not any(row.get(role) for role in ROLES if role not in clear):
                await self.client.delete_address(int(row["AddressID"]))
            else:
                await self.client.update_address(int(row["AddressID"]), clear)

    async def set_active(
        self,
        customer_id: str,
        active: bool,
        pair: PairConfig,
        *,
        memory: AttemptMemory = NO_MEMORY,
    ) -> None:
        await self.client.set_customer_enabled(int(customer_id), active)

    async def open_orders(self, customer_id: str, pair: PairConfig) -> list[str]:
        ids = pair.kentico.order_status_ids
        closed = {ids[state] for state in CLOSED_ORDER_STATES if state in ids}
        rows = await self.client.list_order_statuses_of_customer(int(customer_id))
        return [str(row["OrderID"]) for row in rows if row["OrderStatusID"] not in closed]

    async def set_order_customer(self, order_id: str, customer_id: str, pair: PairConfig) -> None:
        await self.client.set_order_customer(int(order_id), int(customer_id))
