"""X-Cart's customer binding (`CustomerPort` of `systems/customer_ports.py`).

Open orders are re-pointed with a `PUT order/{id}` of the `orig_profile` association (the
customer's own profile, docs/systems/xcart.md §3; the order's copy of the profile, its addresses as
placed, stays). An order is open until the pair's lookups map its status to one of
`CLOSED_ORDER_STATES`.
"""

from __future__ import annotations

from typing import Any

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
from commerce_sync.systems.xcart import mapping as xcart_mapping
from commerce_sync.systems.xcart.client import XCartClient

XCART_ORDER_PAGE = 100


class XCartCustomers:
    system = "xcart"

    def __init__(self, client: XCartClient) -> None:
        self.client = client

    async def get_customer(self, customer_id: str, pair: PairConfig) -> Customer | None:
        try:
            return await self.client.get_customer(customer_id)
        except NotFound:
            return None

    async def customers_by_email(self, email: str, pair: PairConfig) -> list[Customer]:
        found = await self.client.find_customers_by_login(email.strip(), limit=50)
        return [customer for customer in found if is_same_email(customer, email)]

    async def same_person(self, email: str, pair: PairConfig) -> list[Customer]:
        """`_cnd[pattern]=base` (the profile repository's LIKE %pattern% on the login)."""
        local, _domain = email_base_parts(email, pair)
        if not local or not pair.customers.plus_addressing_is_same_person:
            return await exact_variants(self, email, pair)
        found = await self.client.find_customers_by_pattern(local, limit=200)
        return only_same_person(found, email, pair)

    async def write_customer(
        self,
        customer_id: str,
        customer: Customer,
        pair: PairConfig,
        *,
        memory: AttemptMemory = NO_MEMORY,
    ) -> None:
        """A profile's phone and company are its billing address's (X-Cart has no other
        place for them): the customer's own values go there."""
        if customer.billing_address is not None:
            billing = customer.billing_address.model_copy(
                update={"company": customer.company, "phone": customer.phone}
            )
            shipping = customer.shipping_address
            if shipping is not None and shipping == customer.billing_address:
                shipping = billing  # one address with both roles stays one
            customer = customer.model_copy(
                update={"billing_address": billing, "shipping_address": shipping}
            )
        await self.client.update_customer(
            customer_id, customer, memory=memory, settle=pair.duplicate_check_after
        )

    async def set_active(
        self,
        customer_id: str,
        active: bool,
        pair: PairConfig,
        *,
        memory: AttemptMemory = NO_MEMORY,
    ) -> None:
        current = await self.client.get_customer(customer_id)
        if current.active != active:
            await self.client.update_customer(
                customer_id, current.model_copy(update={"active": active})
            )

    async def open_orders(self, customer_id: str, pair: PairConfig) -> list[str]:
        """`_cnd[profileId]` (the order repository's condition on `orig_profile`), pages by
        id; the profile is compared again here, as an unknown condition is ignored."""
        wanted, found, offset = int(customer_id), [], 0
        while True:
            page = await self.client.list_orders_of_profile(
                wanted, offset=offset, limit=XCART_ORDER_PAGE
            )
            for record in page:
                if _orig_profile_id(record) != wanted:
                    continue
                status = xcart_mapping.order_status_from_native(
                    (record.get("shippingStatus") or {}).get("id"),
                    (record.get("paymentStatus") or {}).get("code"),
                    pair.xcart,
                )
                if status.value not in CLOSED_ORDER_STATES:
                    found.append(str(record["order_id"]))
            if len(page) < XCART_ORDER_PAGE:
                return found
            offset += XCART_ORDER_PAGE

    async def set_order_customer(self, order_id: str, customer_id: str, pair: PairConfig) -> None:
        wanted = int(customer_id)
        order = await self.client.get_order_record(order_id)
        if _orig_profile_id(order) != wanted:
            await self.client.set_order_orig_profile(order_id, wanted)


def _orig_profile_id(order: dict[str, Any]) -> int | None:
    orig = order.get("orig_profile")
    value = orig.get("profile_id") if isinstance(orig, dict) else orig
    return int(value) if value not in (None, "") else None
