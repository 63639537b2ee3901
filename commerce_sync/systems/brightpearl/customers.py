"""Brightpearl's customer binding (`CustomerPort` of `systems/customer_ports.py`).

Open orders are re-pointed with a `PATCH order/{id}` of `/parties/customer/contactId` and
`/parties/billing/contactId` (docs/systems/brightpearl.md §6.5, api-docs Order PATCH: not
once invoiced).
"""

from __future__ import annotations

from commerce_sync.config.pairs import PairConfig
from commerce_sync.domain.models import Customer
from commerce_sync.systems.attempts import NO_MEMORY, AttemptMemory
from commerce_sync.systems.brightpearl.client import BrightpearlClient
from commerce_sync.systems.customer_ports import exact_variants, is_same_email
from commerce_sync.systems.errors import NotFound

BRIGHTPEARL_CLOSED_STATES = ("shipped", "delivered", "cancelled", "rejected", "returned")


class BrightpearlCustomers:
    system = "brightpearl"

    def __init__(self, client: BrightpearlClient) -> None:
        self.client = client

    async def get_customer(self, customer_id: str, pair: PairConfig) -> Customer | None:
        try:
            return await self.client.get_contact(int(customer_id))
        except NotFound:
            return None

    async def customers_by_email(self, email: str, pair: PairConfig) -> list[Customer]:
        ids = await self.client.find_contact_ids_by_email(email.strip())
        found = [await self.client.get_contact(contact_id) for contact_id in ids]
        return [customer for customer in found if is_same_email(customer, email)]

    async def same_person(self, email: str, pair: PairConfig) -> list[Customer]:
        """The address and its base address, each searched and kept only where a
        contact's address is that one (`customers_by_email`). contact-search finds a
        term contained in an address (docs/systems/brightpearl.md §5), which cannot
        reach `a+tag@x` from `a@x`; no wildcard or pattern is documented."""
        return await exact_variants(self, email, pair)

    async def write_customer(
        self,
        customer_id: str,
        customer: Customer,
        pair: PairConfig,
        *,
        memory: AttemptMemory = NO_MEMORY,
    ) -> None:
        """Only what differs from the contact as it is, each part through its documented
        message (client.py `update_contact`), so that a record written back (a snapshot)
        leaves the contact as it was. A record without addresses leaves the contact's
        addresses linked: Brightpearl documents no way to unlink one."""
        await self.client.update_contact(
            int(customer_id), customer, memory=memory, settle=pair.duplicate_check_after
        )

    async def set_active(
        self,
        customer_id: str,
        active: bool,
        pair: PairConfig,
        *,
        memory: AttemptMemory = NO_MEMORY,
    ) -> None:
        current = await self.client.get_contact(int(customer_id))
        if current.active != active:
            await self.client.set_contact_active(int(customer_id), active)

    async def open_orders(self, customer_id: str, pair: PairConfig) -> list[str]:
        statuses = pair.brightpearl.order_status_ids
        closed = {statuses[state] for state in BRIGHTPEARL_CLOSED_STATES if state in statuses}
        rows = self.client.iter_sales_orders_of_contact(int(customer_id))
        return [str(row["orderId"]) async for row in rows if row["orderStatusId"] not in closed]

    async def set_order_customer(self, order_id: str, customer_id: str, pair: PairConfig) -> None:
        """The customer party, and the billing party when it names the same contact (a
        billing party of another contact, or of none, stays as it is)."""
        order = await self.client.get_order_native(int(order_id))
        parties = order.get("parties") or {}
        wanted = int(customer_id)
        old = (parties.get("customer") or {}).get("contactId")
        ops = [
            {"op": "replace", "path": f"/parties/{party}/contactId", "value": wanted}
            for party in ("customer", "billing")
            if (
                party == "customer"
                or (old is not None and (parties.get(party) or {}).get("contactId") == old)
            )
            and (parties.get(party) or {}).get("contactId") != wanted
        ]
        if ops:
            await self.client.patch_order(int(order_id), ops, field="customer")
