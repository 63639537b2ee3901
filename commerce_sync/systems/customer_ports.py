"""What customer merge and customer sync need from every system, and how each system does it.

One adapter per system around the connector its port already holds (`port.client`), so
the store and ERP ports stay as they are. Reads answer None for a record that is gone;
writes are absolute (the whole record, an active flag, an order's customer), so a retry
repeats nothing harmful.

Open orders are re-pointed in every system: Brightpearl `PATCH order/{id}` on
`/parties/customer/contactId` and `/parties/billing/contactId` (SYSTEMS.md 2.5, api-docs
Order PATCH: not once invoiced), Acumatica a `PUT SalesOrder` with the new `CustomerID`
(open orders only), Kentico a `PUT ecommerce.order/{id}` of `OrderCustomerID` (SYSTEMS.md
3.3-3.4), X-Cart a `PUT order/{id}` of the `orig_profile` association (the customer's own
profile, SYSTEMS.md 4.3; the order's copy of the profile, its addresses as placed, stays).
A store order is open until the pair's lookups map its status to one of
`CLOSED_ORDER_STATES`.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from commerce_sync.config.pairs import PairConfig
from commerce_sync.domain.customers import email_variants, normalise_email, same_person
from commerce_sync.domain.models import Address, Customer
from commerce_sync.systems.acumatica import mapping as acumatica_mapping
from commerce_sync.systems.acumatica.client import CUSTOMER_EXPAND, AcumaticaClient
from commerce_sync.systems.acumatica.mapping import order_ref, parse_order_ref
from commerce_sync.systems.acumatica.schema import odata_string, value_of
from commerce_sync.systems.brightpearl import mapping as brightpearl_mapping
from commerce_sync.systems.brightpearl.client import BrightpearlClient
from commerce_sync.systems.errors import NotFound
from commerce_sync.systems.kentico.client import KenticoClient
from commerce_sync.systems.kentico.formats import where_text
from commerce_sync.systems.kentico.schema import ADDRESS, CUSTOMER, ORDER
from commerce_sync.systems.xcart import mapping as xcart_mapping
from commerce_sync.systems.xcart.client import XCartClient

ACUMATICA_OPEN_STATUSES = ("Open", "On Hold", "Back Order", "Credit Hold", "Pending Approval")
BRIGHTPEARL_CLOSED_STATES = ("shipped", "delivered", "cancelled", "rejected", "returned")
ROLES = ("AddressIsBilling", "AddressIsShipping")  # a Kentico address's roles
CLOSED_ORDER_STATES = frozenset(
    {"shipped", "delivered", "cancelled", "rejected", "returned", "refunded"}
)
XCART_ORDER_PAGE = 100


class CustomerPort(Protocol):
    system: str

    async def get_customer(self, customer_id: str, pair: PairConfig) -> Customer | None: ...

    async def customers_by_email(self, email: str, pair: PairConfig) -> list[Customer]:
        """Every customer (active or not) whose e-mail is this one, compared case-insensitively."""
        ...

    async def same_person(self, email: str, pair: PairConfig) -> list[Customer]:
        """Every customer whose e-mail normalises as this one does by the pair's rules
        (with plus-addressing on, `a@x` finds `a+tag@x` and `a+tag@x` finds `a@x`)."""
        ...

    async def write_customer(self, customer_id: str, customer: Customer, pair: PairConfig) -> None:
        """Write the synced fields, the addresses it carries and the active flag."""
        ...

    async def set_active(self, customer_id: str, active: bool, pair: PairConfig) -> None: ...

    async def open_orders(self, customer_id: str, pair: PairConfig) -> list[str]:
        """Ids of the customer's orders that may still change hands."""
        ...

    async def set_order_customer(self, order_id: str, customer_id: str, pair: PairConfig) -> None:
        """Make the order the customer's; nothing to do when it already is."""
        ...


def _same_email(found: Customer, email: str) -> bool:
    return found.email.strip().casefold() == email.strip().casefold()


def _base_parts(email: str, pair: PairConfig) -> tuple[str, str]:
    """The local part and the domain of the normalised address."""
    plus = pair.customers.plus_addressing_is_same_person
    local, _, domain = normalise_email(email, plus_addressing=plus).rpartition("@")
    return local, domain


def _same_person(found: list[Customer], email: str, pair: PairConfig) -> list[Customer]:
    unique = {c.origin.external_id if c.origin else c.email: c for c in found}
    return [c for c in unique.values() if same_person(c.email, email, pair.customers)]


async def _exact_variants(port: CustomerPort, email: str, pair: PairConfig) -> list[Customer]:
    """Where the API can only match a whole address: the address and its base address
    (so `a+tag@x` finds `a@x`; `a@x` cannot find `a+tag@x`)."""
    found: list[Customer] = []
    for variant in email_variants(email, pair.customers):
        found.extend(await port.customers_by_email(variant, pair))
    return _same_person(found, email, pair)


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
        rows = await self.client._list(
            CUSTOMER, where=f"CustomerEmail = {where_text(email.strip())}", orderby="CustomerID"
        )
        found = await self.client._customers_from_rows(rows) if rows else []
        return [customer for customer in found if _same_email(customer, email)]

    async def same_person(self, email: str, pair: PairConfig) -> list[Customer]:
        """`CustomerEmail LIKE 'base%@domain'`: every plus-address of the base (LIKE's
        wildcards in the base only widen the candidates; the e-mails are compared after)."""
        local, domain = _base_parts(email, pair)
        if not local or not pair.customers.plus_addressing_is_same_person:
            return await _exact_variants(self, email, pair)
        rows = await self.client._list(
            CUSTOMER,
            where=f"CustomerEmail LIKE {where_text(f'{local}%@{domain}')}",
            orderby="CustomerID",
        )
        found = await self.client._customers_from_rows(rows) if rows else []
        return _same_person(found, email, pair)

    async def write_customer(self, customer_id: str, customer: Customer, pair: PairConfig) -> None:
        await self.client.update_customer(customer_id, customer)
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
        for row in await self.client._list(ADDRESS, where=f"AddressCustomerID = {customer_id}"):
            clear = {column: False for column in missing if row.get(column)}
            if not clear:
                continue
            if not any(row.get(role) for role in ROLES if role not in clear):
                await self.client._delete(ADDRESS, int(row["AddressID"]))
            else:
                await self.client._update(ADDRESS, int(row["AddressID"]), clear)

    async def set_active(self, customer_id: str, active: bool, pair: PairConfig) -> None:
        await self.client._update(CUSTOMER, int(customer_id), {"CustomerEnabled": active})

    async def open_orders(self, customer_id: str, pair: PairConfig) -> list[str]:
        ids = pair.kentico.order_status_ids
        closed = {ids[state] for state in CLOSED_ORDER_STATES if state in ids}
        rows = await self.client._list(
            ORDER,
            where=f"OrderCustomerID = {int(customer_id)}",
            orderby="OrderID",
            columns=("OrderID", "OrderStatusID"),
        )
        return [str(row["OrderID"]) for row in rows if row["OrderStatusID"] not in closed]

    async def set_order_customer(self, order_id: str, customer_id: str, pair: PairConfig) -> None:
        wanted = int(customer_id)
        row = await self.client._get(ORDER, int(order_id))
        if row.get("OrderCustomerID") != wanted:
            await self.client._update(ORDER, int(order_id), {"OrderCustomerID": wanted})


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
        records = await self.client._list("profile", {"login": email.strip(), "limit": [0, 50]})
        found = [xcart_mapping.customer_from_native(record) for record in records]
        return [customer for customer in found if _same_email(customer, email)]

    async def same_person(self, email: str, pair: PairConfig) -> list[Customer]:
        """`_cnd[pattern]=base` (the profile repository's LIKE %pattern% on the login)."""
        local, _domain = _base_parts(email, pair)
        if not local or not pair.customers.plus_addressing_is_same_person:
            return await _exact_variants(self, email, pair)
        records = await self.client._list("profile", {"pattern": local, "limit": [0, 200]})
        found = [xcart_mapping.customer_from_native(record) for record in records]
        return _same_person(found, email, pair)

    async def write_customer(self, customer_id: str, customer: Customer, pair: PairConfig) -> None:
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
        await self.client.update_customer(customer_id, customer)

    async def set_active(self, customer_id: str, active: bool, pair: PairConfig) -> None:
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
            page = await self.client._list(
                "order",
                {
                    "profileId": wanted,
                    "orderBy": ["order_id", "asc"],
                    "limit": [offset, XCART_ORDER_PAGE],
                },
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
        order = await self.client._get_one("order", order_id)
        if _orig_profile_id(order) != wanted:
            await self.client._put_one("order", order_id, {"orig_profile": {"profile_id": wanted}})


def _orig_profile_id(order: dict[str, Any]) -> int | None:
    orig = order.get("orig_profile")
    value = orig.get("profile_id") if isinstance(orig, dict) else orig
    return int(value) if value not in (None, "") else None


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
        ids = [
            int(row["contactId"])
            async for row in self.client._search(
                "contact-service/contact-search",
                {"primaryEmail": email.strip(), "columns": "contactId", "sort": "contactId.ASC"},
            )
        ]
        found = [await self.client.get_contact(contact_id) for contact_id in ids]
        return [customer for customer in found if _same_email(customer, email)]

    async def same_person(self, email: str, pair: PairConfig) -> list[Customer]:
        """contact-search matches a whole e-mail (SYSTEMS.md 2.7 gives no pattern search):
        the address and its base address."""
        return await _exact_variants(self, email, pair)

    async def write_customer(self, customer_id: str, customer: Customer, pair: PairConfig) -> None:
        """Only what differs from the contact as it is, so that a record written back (a
        snapshot) leaves the contact exactly as it was: an empty value where the contact
        has none stays none, and addresses equal to the contact's keep their postal
        addresses (no new copies). A record without addresses drops the address links."""
        contact_id = int(customer_id)
        found = await self.client._request("GET", f"contact-service/contact/{contact_id}")
        native = found[0] if isinstance(found, list) else found
        current = await self.client.get_contact(contact_id)
        billing, shipping = customer.billing_address, customer.shipping_address
        address_ids: dict[str, int] = {}
        unlink = billing is None and shipping is None and bool(native.get("postAddressIds"))
        if not (
            _same_postal(current.billing_address, billing)
            and _same_postal(current.shipping_address, shipping)
        ) and not (billing is None and shipping is None):
            address_ids = await self.client._create_addresses(customer)
        ops = [
            _emptying(op)
            for op in brightpearl_mapping.customer_patch(customer, address_ids)
            if _changes(native, op)
        ]
        if unlink:
            ops.append({"op": "replace", "path": "/postAddressIds", "value": {}})
        if ops:
            await self.client._request(
                "PATCH", f"contact-service/contact/{contact_id}", json=ops, field="customer"
            )

    async def set_active(self, customer_id: str, active: bool, pair: PairConfig) -> None:
        current = await self.client.get_contact(int(customer_id))
        if current.active != active:
            await self.client.update_contact(
                int(customer_id), current.model_copy(update={"active": active})
            )

    async def open_orders(self, customer_id: str, pair: PairConfig) -> list[str]:
        statuses = pair.brightpearl.order_status_ids
        closed = {statuses[state] for state in BRIGHTPEARL_CLOSED_STATES if state in statuses}
        rows = self.client._search(
            "order-service/order-search",
            {
                "contactId": int(customer_id),
                "orderTypeId": 1,
                "columns": "orderId,orderStatusId",
                "sort": "orderId.ASC",
            },
        )
        return [str(row["orderId"]) async for row in rows if row["orderStatusId"] not in closed]

    async def set_order_customer(self, order_id: str, customer_id: str, pair: PairConfig) -> None:
        """The customer party, and the billing party when it names the same contact (a
        billing party of another contact, or of none, stays as it is)."""
        order = await self.client._get_native_order(int(order_id))
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
            await self.client._request(
                "PATCH", f"order-service/order/{int(order_id)}", json=ops, field="customer"
            )


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
        return [customer for customer in found if _same_email(customer, email)]

    async def same_person(self, email: str, pair: PairConfig) -> list[Customer]:
        """`startswith(MainContact/Email,'base') and endswith(MainContact/Email,'@domain')`,
        the e-mails compared after."""
        local, domain = _base_parts(email, pair)
        if not local or not pair.customers.plus_addressing_is_same_person:
            return await _exact_variants(self, email, pair)
        records: list[dict[str, Any]] = await self.client._json(
            "GET",
            "Customer",
            params={
                "$filter": f"startswith(MainContact/Email,{odata_string(local)}) and "
                f"endswith(MainContact/Email,{odata_string('@' + domain)})",
                "$expand": CUSTOMER_EXPAND,
            },
        )
        found = [acumatica_mapping.customer_from_native(record) for record in records]
        return _same_person(found, email, pair)

    async def write_customer(self, customer_id: str, customer: Customer, pair: PairConfig) -> None:
        """A record without a billing address (a snapshot written back) also empties the
        main contact's address, which reads back as the billing address otherwise."""
        await self.client.update_customer(customer_id, customer, pair.acumatica)
        if customer.billing_address is not None:
            return
        current = await self.client.get_customer(customer_id)
        if current.billing_address is None:
            return
        empty = {name: {"value": ""} for name in ("AddressLine1", "AddressLine2", "City")}
        empty.update({"State": {"value": ""}, "PostalCode": {"value": ""}})
        await self.client._request(
            "PUT",
            "Customer",
            body={"CustomerID": {"value": customer_id}, "MainContact": {"Address": empty}},
            headers={"If-Match": "*"},
            params={"$select": "CustomerID"},
        )

    async def set_active(self, customer_id: str, active: bool, pair: PairConfig) -> None:
        """`PUT Customer` with the `Status` only (selected back, so that the answer shows it)."""
        body = {
            "CustomerID": {"value": customer_id},
            "Status": {"value": "Active" if active else "Inactive"},
        }
        await self.client._request(
            "PUT",
            "Customer",
            body=body,
            headers={"If-Match": "*"},
            params={"$select": "CustomerID,Status"},
        )

    async def open_orders(self, customer_id: str, pair: PairConfig) -> list[str]:
        order_type = pair.acumatica.order_type
        records: list[dict[str, Any]] = await self.client._json(
            "GET",
            "SalesOrder",
            params={
                "$filter": f"CustomerID eq {odata_string(customer_id)} "
                f"and OrderType eq {odata_string(order_type)}",
                "$select": "OrderType,OrderNbr,Status",
            },
        )
        return [
            order_ref(str(value_of(r, "OrderType")), str(value_of(r, "OrderNbr")))
            for r in records
            if value_of(r, "Status") in ACUMATICA_OPEN_STATUSES
        ]

    async def set_order_customer(self, order_id: str, customer_id: str, pair: PairConfig) -> None:
        order_type, order_nbr = parse_order_ref(order_id, pair.acumatica.order_type)
        body = {
            "OrderType": {"value": order_type},
            "OrderNbr": {"value": order_nbr},
            "CustomerID": {"value": customer_id},
        }
        await self.client._request(
            "PUT",
            "SalesOrder",
            body=body,
            headers={"If-Match": "*"},
            params={"$select": "OrderType,OrderNbr"},
        )


def _same_postal(current: Address | None, wanted: Address | None) -> bool:
    if current is None or wanted is None:
        return current is wanted
    return brightpearl_mapping.same_postal(current, wanted)


def _changes(native: dict[str, Any], op: dict[str, Any]) -> bool:
    """Whether a JSON-Patch `replace` changes the record (empty and absent are the same)."""
    value: Any = native
    for part in str(op["path"]).strip("/").split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    if value in (None, "") and op["value"] in (None, ""):
        return False
    return bool(value != op["value"])


def _emptying(op: dict[str, Any]) -> dict[str, Any]:
    """A telephone made empty is removed: a contact's telephones are the numbers it has."""
    path = str(op["path"])
    if path.startswith("/communication/telephones/") and op["value"] in (None, ""):
        return {"op": "remove", "path": path}
    return op


def customer_port(port: object) -> CustomerPort:
    """The customer adapter of a store or ERP port (by the connector it holds)."""
    client = getattr(port, "client")  # noqa: B009 - every port holds its connector here
    adapters: list[tuple[type, Any]] = [
        (KenticoClient, KenticoCustomers),
        (XCartClient, XCartCustomers),
        (BrightpearlClient, BrightpearlCustomers),
        (AcumaticaClient, AcumaticaCustomers),
    ]
    for client_type, adapter in adapters:
        if isinstance(client, client_type):
            return cast(CustomerPort, adapter(client))
    raise TypeError(f"no customer adapter for {type(port).__name__}")
