"""Acumatica's customer binding (`CustomerPort` of `systems/customer_ports.py`).

Open orders (the statuses of `ACUMATICA_OPEN_STATUSES`) are re-pointed with a
`PUT SalesOrder` of the new `CustomerID`.
"""

from __future__ import annotations

from commerce_sync.config.pairs import PairConfig
from commerce_sync.domain.models import Customer
from commerce_sync.systems.acumatica.client import AcumaticaClient
from commerce_sync.systems.acumatica.mapping import order_ref, parse_order_ref
from commerce_sync.systems.acumatica.schema import odata_string, value_of
from commerce_sync.systems.attempts import NO_MEMORY, AttemptMemory
from commerce_sync.systems.customer_ports import (
    email_base_parts,
    exact_variants,
    is_same_email,
    only_same_person,
)
from commerce_sync.systems.errors import NotFound

ACUMATICA_OPEN_STATUSES = ("Open", "On Hold", "Back Order", "Credit Hold", "Pending Approval")


class AcumaticaCustomers:
    system = "acumatica"

    def __init__(self, client: AcumaticaClient) -> None:
        self.client = client

    async def get_customer(self, customer_id: str, pair: PairConfig) -> Customer | None:
        try:
            return await self.client.get_customer(customer_id)
        except NotFound:
            return None

    async def customers_by_email(self, email: str, pair: PairConfig) -> list[Customer]:
        found = await self.client.find_customers_by_email(email.strip())
        return [customer for customer in found if is_same_email(customer, email)]

    async def same_person(self, email: str, pair: PairConfig) -> list[Customer]:
        """`startswith(MainContact/Email,'base') and endswith(MainContact/Email,'@domain')`,
        the e-mails compared after."""
        local, domain = email_base_parts(email, pair)
        if not local or not pair.customers.plus_addressing_is_same_person:
            return await exact_variants(self, email, pair)
        found = await self.client.find_customers_where(
            f"startswith(MainContact/Email,{odata_string(local)}) and "
            f"endswith(MainContact/Email,{odata_string('@' + domain)})"
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
        """A record without a billing address (a snapshot written back) also empties the
        main contact's address, which reads back as the billing address otherwise."""
        await self.client.update_customer(customer_id, customer, pair.acumatica)
        if customer.billing_address is not None:
            return
        current = await self.client.get_customer(customer_id)
        if current.billing_address is None:
            return
        await self.client.clear_main_contact_address(customer_id)

    async def set_active(
        self,
        customer_id: str,
        active: bool,
        pair: PairConfig,
        *,
        memory: AttemptMemory = NO_MEMORY,
    ) -> None:
        await self.client.set_customer_active(customer_id, active)

    async def open_orders(self, customer_id: str, pair: PairConfig) -> list[str]:
        records = await self.client.sales_orders_of_customer(customer_id, pair.acumatica.order_type)
        return [
            order_ref(str(value_of(r, "OrderType")), str(value_of(r, "OrderNbr")))
            for r in records
            if value_of(r, "Status") in ACUMATICA_OPEN_STATUSES
        ]

    async def set_order_customer(self, order_id: str, customer_id: str, pair: PairConfig) -> None:
        order_type, order_nbr = parse_order_ref(order_id, pair.acumatica.order_type)
        await self.client.set_order_customer(order_type, order_nbr, customer_id)
