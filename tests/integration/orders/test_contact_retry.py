"""A new shopper's Brightpearl contact whose create is throttled after its postal addresses
were made: the retry reuses the addresses the failed attempt made (kept in the activity's
heartbeat details, commerce_sync/ops/heartbeat.py) instead of posting them again.

Brightpearl creates a contact in two steps, `POST postal-address` for each address, then
`POST contact` naming them (docs/systems/brightpearl.md §8), and has no postal-address
search or delete: an address posted again on each retry would be left behind for good,
referenced by no contact (91 addresses for 68 contacts under real budgets).
"""

from __future__ import annotations

import uuid

from tests.integration.orders.order_stack import Stack
from tests.integration.orders.sandbox_views import erp_customers, fault_hits, inject

PAIR = "kentico-brightpearl"
THROTTLED = 2
"""Contact POSTs answered 503 (Brightpearl's throttle) before one gets through."""

BILLING = {
    "line1": "9 Billing Rd",
    "line2": "Suite 4",
    "city": "Dallas",
    "region": "TX",
    "postal_code": "75201",
    "country": "US",
}


async def test_a_throttled_contact_create_leaves_no_orphan_postal_address(stack: Stack) -> None:
    before = set((await stack.state_of("brightpearl"))["postal_addresses"])
    await inject(
        stack,
        "brightpearl",
        {
            "match": "POST */contact-service/contact",
            "status": 503,
            "count": THROTTLED,
            "retry_after_s": 0.5,
        },
    )
    email = f"throttled-{uuid.uuid4().hex[:8]}@example.com"
    # Billing and shipping differ: two postal addresses to make, and to reuse.
    order_id = await stack.place_order(
        "kentico", customer={"email": email, "first_name": "Tia"}, billing_address=BILLING
    )
    status = (await stack.wait_state(PAIR, order_id, "awaiting_shipment", timeout_s=90))["status"]
    assert await fault_hits(stack, "brightpearl") == THROTTLED

    contacts = await erp_customers(stack, "brightpearl", email)
    assert [str(c["contactId"]) for c in contacts] == [status["erp_customer_id"]]
    referenced = {str(i) for i in contacts[0]["postAddressIds"].values()}
    made = set((await stack.state_of("brightpearl"))["postal_addresses"]) - before
    assert len(referenced) == 2, contacts[0]["postAddressIds"]
    assert made == referenced, f"postal addresses no contact refers to: {made - referenced}"
