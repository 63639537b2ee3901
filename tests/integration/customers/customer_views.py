"""Helpers of the customer tests (and of tests/histories/record_customers.py): each
pair's ERP records read and set up through the real connectors, the sandbox fault rules
that hit one merge step, merges started and followed through the API, shoppers whose
first order reached the ERP, and the database's links, dead letters and alerts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlmodel import select
from temporalio.client import WorkflowExecutionDescription
from temporalio.service import RPCError

from commerce_sync.domain.models import Address, Customer
from commerce_sync.store.db import make_engine, session_scope
from commerce_sync.store.links import upsert_link
from commerce_sync.store.models import (
    Alert,
    DeadLetter,
    DeadLetterStatus,
    EventStatus,
    Link,
    WebhookEvent,
)
from commerce_sync.systems.acumatica.client import AcumaticaClient
from commerce_sync.systems.acumatica.mapping import order_ref, parse_order_ref
from commerce_sync.systems.acumatica.schema import value_of
from commerce_sync.systems.brightpearl.client import BrightpearlClient
from commerce_sync.systems.kentico.client import KenticoClient
from commerce_sync.systems.xcart.client import XCartClient
from tests.integration.orders.order_stack import Stack, eventually

PAIRS = ["kentico-brightpearl", "xcart-acumatica"]

AUSTIN = Address(line1="1 Main St", city="Austin", region="TX", postal_code="78701", country="US")


def comparable(customer: Customer) -> dict[str, Any]:
    return customer.model_dump(exclude={"updated_at", "created_at"})


# Members every write stamps (a record written back is as it was but for these).
STAMPS = ("lastmodified", "updatedate", "lastrenewdate", "updatedon")


def unstamped(record: dict[str, Any]) -> dict[str, Any]:
    """`record` less the members every write stamps, at any depth."""
    return {k: _unstamped(v) for k, v in record.items() if not any(s in k.lower() for s in STAMPS)}


def _unstamped(value: Any) -> Any:
    if isinstance(value, dict):
        return unstamped(value)
    if isinstance(value, list):
        return [_unstamped(v) for v in value]
    return value


async def merge_records(
    stack: Stack, system: str, customers: list[str], orders: list[str]
) -> dict[str, Any]:
    """The records a merge of these customers writes, from the sandbox's `/_sandbox/state`
    (the customers with their addresses, and the orders), less the stamps of a write."""
    state = await stack.state_of(system)
    if system == "kentico":
        ids, order_ids = {int(c) for c in customers}, {int(o) for o in orders}
        found: dict[str, Any] = {
            "customers": [r for r in state["ecommerce.customer"] if r["CustomerID"] in ids],
            "addresses": [r for r in state["ecommerce.address"] if r["AddressCustomerID"] in ids],
            "orders": [r for r in state["ecommerce.order"] if r["OrderID"] in order_ids],
        }
    elif system == "xcart":
        ids, order_ids = {int(c) for c in customers}, {int(o) for o in orders}
        found = {
            "profiles": [r for r in state["profiles"] if r["profile_id"] in ids],
            "orders": [r for r in state["orders"] if r["order_id"] in order_ids],
        }
    elif system == "brightpearl":
        found = {
            "contacts": {c: state["contacts"][c] for c in customers},
            "orders": {o: state["orders"][o] for o in orders},
        }
    else:
        entities = state["entities"]
        found = {
            "customers": [r for r in entities["Customer"] if r["CustomerID"] in customers],
            "orders": [
                r
                for r in entities["SalesOrder"]
                if order_ref(str(r["OrderType"]), str(r["OrderNbr"])) in orders
            ],
        }
    assert all(found.values()), f"{system} holds none of {customers} {orders}: {found}"
    return unstamped(found)


def merge_fault(
    system: str, step: str, survivor: str, duplicate: str, order_id: str
) -> dict[str, Any]:
    """A one-shot permanent (400) fault rule hitting the merge's write step `step`
    (`update` the survivor, `re-point` the open order, `deactivate` the duplicate)."""
    target = survivor if step == "update" else duplicate
    if system == "kentico":
        path = (
            f"ecommerce.order/{order_id}" if step == "re-point" else f"ecommerce.customer/{target}"
        )
        match = f"PUT */rest/{path}"
    elif system == "xcart":
        path = f"order%2F{order_id}" if step == "re-point" else f"profile%2F{target}"
        match = f"PUT /admin.php?*_path={path}"
    elif system == "brightpearl":
        # The deactivation is Contact Status PUT, the survivor's fields Contact PATCH.
        match = {
            "re-point": f"PATCH */order-service/order/{order_id}",
            "deactivate": f"PUT */contact-service/contact/{target}/status",
        }.get(step, f"PATCH */contact-service/contact/{target}")
    else:
        # The re-point is the merge's only SalesOrder write, the deactivation its only
        # Customer write selecting the Status back, the survivor's its first Customer write
        # (systems/acumatica/customers.py).
        match = {
            "update": "PUT */Customer*",
            "re-point": "PUT */SalesOrder*",
            "deactivate": "PUT */Customer?*Status*",
        }[step]
    return {"match": match, "status": 400, "count": 1}


class ErpView(Protocol):
    pair: str
    system: str
    store: str

    async def create(self, customer: Customer) -> str: ...

    async def get(self, customer_id: str) -> Customer: ...

    async def update(self, customer_id: str, customer: Customer) -> None:
        """A change made in the ERP by someone else than commerce-sync."""
        ...

    async def open_order(self, customer_id: str) -> str: ...

    async def order_customer(self, order_id: str) -> str: ...

    def fault(self, step: str, order_id: str, duplicate: str) -> dict[str, Any]:
        """A one-shot permanent (400) fault rule hitting the merge step `step`."""
        ...

    def read_path(self, customer_id: str) -> str:
        """A fault rule `match` for the reads of this customer."""
        ...

    def write_path(self, customer_id: str) -> str:
        """A fault rule `match` for the writes of this customer's fields."""
        ...

    def writes(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The logged requests that changed a customer."""
        ...

    async def aclose(self) -> None: ...


@dataclass
class BrightpearlView:
    client: BrightpearlClient
    pair: str = "kentico-brightpearl"
    system: str = "brightpearl"
    store: str = "kentico"

    async def create(self, customer: Customer) -> str:
        return str(await self.client.create_contact(customer))

    async def get(self, customer_id: str) -> Customer:
        return await self.client.get_contact(int(customer_id))

    async def update(self, customer_id: str, customer: Customer) -> None:
        await self.client.update_contact(int(customer_id), customer)

    async def open_order(self, customer_id: str) -> str:
        order_id = await self.client._request(
            "POST",
            "order-service/order",
            json={"orderTypeCode": "SO", "parties": {"customer": {"contactId": int(customer_id)}}},
        )
        return str(order_id)

    async def order_customer(self, order_id: str) -> str:
        order = await self.client._get_native_order(int(order_id))
        return str(order["parties"]["customer"]["contactId"])

    def fault(self, step: str, order_id: str, duplicate: str) -> dict[str, Any]:
        match = {
            "re-point": f"PATCH */order-service/order/{order_id}",
            "deactivate": f"PUT */contact-service/contact/{duplicate}/status",
        }.get(step, f"PATCH */contact-service/contact/{duplicate}")
        return {"match": match, "status": 400, "count": 1}

    def read_path(self, customer_id: str) -> str:
        return f"GET */contact-service/contact/{customer_id}"

    def write_path(self, customer_id: str) -> str:
        return f"PATCH */contact-service/contact/{customer_id}"

    def writes(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in requests if r["method"] in ("PATCH", "PUT") and "/contact" in r["path"]]

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass
class AcumaticaView:
    client: AcumaticaClient
    pair: str = "xcart-acumatica"
    system: str = "acumatica"
    store: str = "xcart"

    async def create(self, customer: Customer) -> str:
        return await self.client.create_customer(customer)

    async def get(self, customer_id: str) -> Customer:
        return await self.client.get_customer(customer_id)

    async def update(self, customer_id: str, customer: Customer) -> None:
        await self.client.update_customer(customer_id, customer)

    async def open_order(self, customer_id: str) -> str:
        record = await self.client._json(
            "PUT",
            "SalesOrder",
            body={
                "OrderType": {"value": "SO"},
                "CustomerID": {"value": customer_id},
                "Details": [{"InventoryID": {"value": "WIDGET-1"}, "OrderQty": {"value": 1}}],
            },
            params={"$select": "OrderType,OrderNbr"},
        )
        return order_ref(str(value_of(record, "OrderType")), str(value_of(record, "OrderNbr")))

    async def order_customer(self, order_id: str) -> str:
        order_type, order_nbr = parse_order_ref(order_id)
        record = await self.client._json(
            "GET", f"SalesOrder/{order_type}/{order_nbr}", params={"$select": "CustomerID"}
        )
        return str(value_of(record, "CustomerID"))

    def fault(self, step: str, order_id: str, duplicate: str) -> dict[str, Any]:
        # The re-point is the merge's only SalesOrder write; the deactivation is its only
        # Customer write selecting the Status back (AcumaticaClient.set_customer_active).
        match = "PUT */SalesOrder*" if step == "re-point" else "PUT */Customer?*Status*"
        return {"match": match, "status": 400, "count": 1}

    def read_path(self, customer_id: str) -> str:
        return f"GET */Customer/{customer_id}"

    def write_path(self, customer_id: str) -> str:
        return "PUT */Customer?*"  # the key is in the body; the test makes no other write

    def writes(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in requests if r["method"] == "PUT" and "/Customer" in r["path"]]

    async def aclose(self) -> None:
        await self.client.aclose()


def erp_view(stack: Stack, pair: str) -> ErpView:
    if pair == "kentico-brightpearl":
        return BrightpearlView(BrightpearlClient(stack.settings.brightpearl))
    return AcumaticaView(AcumaticaClient(stack.settings.acumatica, timeout_s=5.0))


async def sandbox_requests(stack: Stack, system: str) -> list[dict[str, Any]]:
    response = await stack.sandbox.get(f"/{system}/_sandbox/requests")
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["requests"]
    return found


async def clear_requests(stack: Stack, *systems: str) -> None:
    for system in systems:
        (await stack.sandbox.delete(f"/{system}/_sandbox/requests")).raise_for_status()


async def merge_run(stack: Stack, system: str, survivor: str, since: datetime) -> dict[str, Any]:
    """The API's status of the merge into `survivor` started after `since`, once closed.
    (The sandboxes are reset for every test: an earlier test's merge may have the same id,
    and its worker is gone, so it is not asked.)"""

    async def closed() -> dict[str, Any] | None:
        try:
            described = await stack.client.get_workflow_handle(
                f"customer-merge:{system}:{survivor}"
            ).describe()
        except RPCError:
            return None
        if described.start_time < since:
            return None
        response = await stack.http.get(
            f"{stack.api}/customers/{system}/merge/{survivor}", headers=stack.headers()
        )
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if body["run_status"] in ("COMPLETED", "FAILED") else None

    return await eventually(closed, 60, f"merge into {system} {survivor}")


async def start_merge(stack: Stack, system: str, survivor: str, duplicates: list[str]) -> datetime:
    """POST the merge; answers when it was asked for (for `merge_run`)."""
    since = datetime.now(UTC)
    response = await stack.http.post(
        f"{stack.api}/customers/{system}/merge",
        json={"survivor": survivor, "duplicates": duplicates},
        headers=stack.headers(),
    )
    assert response.status_code == 202, response.text
    assert response.json()["workflow_id"] == f"customer-merge:{system}:{survivor}"
    return since


async def erp_duplicates(stack: Stack, pair: str) -> tuple[Any, str, str, str, str]:
    """An ERP survivor, and an older record of the same shopper under an address she no
    longer uses, with a billing address, an open order and a customer link. Answers
    (view, email, survivor, duplicate, order). The e-mails differ, so no ERP event
    starts a merge of its own (Acumatica pushes every customer it creates)."""
    view = erp_view(stack, pair)
    tag = uuid.uuid4().hex[:8]
    email, old_email = f"merge-{tag}@example.com", f"ann-{tag}@example.net"
    survivor = await view.create(Customer(email=email, first_name="Ann", last_name="Lee"))
    duplicate = await view.create(
        Customer(
            email=old_email,
            first_name="Annie",
            last_name="Lee",
            phone="555 0101",
            billing_address=AUSTIN,
        )
    )
    order_id = await view.open_order(duplicate)
    engine = make_engine(stack.database_url)
    upsert_link(engine, pair, "customer", old_email, duplicate)
    engine.dispose()
    return view, email, survivor, duplicate, order_id


async def synced_customer(stack: Stack, pair: str) -> tuple[str, str, str]:
    """A shopper whose first order reached the ERP: (email, store id, ERP id).

    Acumatica pushes the customer the order sync created (`CS-Customers`, an `Inserted`
    row alone): commerce-sync's own create coming back, handled without starting a
    customer sync (intake/dispatch.py `own_creation`). Should the push beat the create's
    note, the sync run that starts finds the store customer equal in the fields the ERP
    owns and writes nothing. Either way no dead letter and no alert."""
    store = "kentico" if pair == "kentico-brightpearl" else "xcart"
    email = f"sync-{uuid.uuid4().hex[:8]}@example.com"
    since, failed_before = datetime.now(UTC), failures(stack)
    order_id = await stack.place_order(
        store, customer={"email": email, "first_name": "Sam", "last_name": "Ray"}
    )
    await stack.wait_state(pair, order_id, "awaiting_shipment")
    client = store_client(stack, store)
    try:
        found = await client.find_customer_by_email(email)
    finally:
        await client.aclose()
    assert found is not None and found.origin is not None
    erp_id = erp_id_of(stack, pair, email)
    if pair == "xcart-acumatica":
        workflow_id = f"customer:{pair}:erp:{erp_id}"
        await eventually(
            lambda: creation_handled(stack, workflow_id), 30, f"the push of {erp_id} handled"
        )
        try:
            described = await stack.client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            described = None  # dropped as our own: no run (nor one of an earlier test's)
        if described is not None and described.start_time >= since:
            created = await last_run(stack, workflow_id, since, bool)
            assert created["writes"] == 0 and created["merges"] == [], created
    assert failures(stack) == failed_before, "the order's customer events raised failures"
    return email, found.origin.external_id, erp_id


async def store_duplicates(stack: Stack, store: str) -> tuple[str, str, str]:
    """A store survivor made through the REST API (no address, no event), and an older
    record of the same shopper under an address she no longer uses: a storefront shopper
    whose first order reached the ERP and is still open there and in the store (its
    customer link made by the order sync). Answers (survivor, duplicate, order)."""
    pair = "kentico-brightpearl" if store == "kentico" else "xcart-acumatica"
    _email, duplicate, _erp_id = await synced_customer(stack, pair)
    client = store_client(stack, store)
    try:
        survivor = await client.create_customer(
            Customer(
                email=f"merge-{uuid.uuid4().hex[:8]}@example.com",
                first_name="Sam",
                last_name="Ray",
                billing_address=None,
            )
        )
    finally:
        await client.aclose()
    state = await stack.state_of(store)
    if store == "kentico":
        orders = [
            str(o["OrderID"])
            for o in state["ecommerce.order"]
            if str(o["OrderCustomerID"]) == duplicate
        ]
    else:
        orders = [
            str(o["order_id"])
            for o in state["orders"]
            if str((o["orig_profile"] or {}).get("profile_id")) == duplicate
        ]
    assert len(orders) == 1, orders
    return survivor, duplicate, orders[0]


async def order_customer_in_store(stack: Stack, store: str, order_id: str) -> str:
    """The id of the customer account a store order belongs to."""
    state = await stack.state_of(store)
    if store == "kentico":
        (order,) = [o for o in state["ecommerce.order"] if str(o["OrderID"]) == order_id]
        return str(order["OrderCustomerID"])
    (order,) = [o for o in state["orders"] if str(o["order_id"]) == order_id]
    return str(order["orig_profile"]["profile_id"])


def failures(stack: Stack, process: str = "") -> tuple[list[str], list[str]]:
    """The business keys of the dead letters (of `process`, or all), and the alerts
    (`kind key`)."""
    engine = make_engine(stack.database_url)
    with session_scope(engine) as session:
        query = select(DeadLetter)
        if process:
            query = query.where(DeadLetter.process == process)
        letters = [d.business_key for d in session.exec(query).all()]
        alerts = [f"{a.kind} {a.key}" for a in session.exec(select(Alert)).all()]
    engine.dispose()
    return letters, alerts


async def creation_handled(stack: Stack, workflow_id: str) -> bool:
    """Whether a push naming `workflow_id` (an ERP customer's sync) was recorded and
    handled (started, or dropped as commerce-sync's own write)."""
    engine = make_engine(stack.database_url)
    with session_scope(engine) as session:
        handled = session.exec(
            select(WebhookEvent.id).where(
                WebhookEvent.workflow_id == workflow_id,
                WebhookEvent.status == EventStatus.STARTED,
            )
        ).first()
    engine.dispose()
    return handled is not None


def erp_id_of(stack: Stack, pair: str, email: str) -> str:
    engine = make_engine(stack.database_url)
    with session_scope(engine) as session:
        link = session.exec(
            select(Link).where(Link.pair == pair, Link.kind == "customer", Link.store_id == email)
        ).first()
        erp_id = link.erp_id if link is not None else ""
    engine.dispose()
    assert erp_id, f"no customer link for the shopper on {pair}"
    return erp_id


async def last_run(stack: Stack, workflow_id: str, since: datetime, settled: Any) -> dict[str, Any]:
    """The result of the latest run of `workflow_id` started after `since`, once it
    completed and `settled(result)`."""

    seen: list[Any] = []

    async def check() -> dict[str, Any] | None:
        handle = stack.client.get_workflow_handle(workflow_id)
        try:
            described = await handle.describe()
        except RPCError:
            return None
        seen[:] = [described.status, described.start_time]
        if described.start_time < since:
            return None
        if described.status is None or described.status.name != "COMPLETED":
            return None
        result: dict[str, Any] = await handle.result()
        seen.append(result)
        return result if settled(result) else None

    try:
        return await eventually(check, 30, f"a settled run of {workflow_id}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the latest run: {seen}") from None


def customer_links(stack: Stack, pair: str) -> dict[str, str]:
    engine = make_engine(stack.database_url)
    with session_scope(engine) as session:
        rows = session.exec(select(Link).where(Link.kind == "customer", Link.pair == pair)).all()
        found = {row.store_id: row.erp_id for row in rows}
    engine.dispose()
    return found


def store_client(stack: Stack, store: str) -> KenticoClient | XCartClient:
    if store == "kentico":
        return KenticoClient(stack.settings.kentico)
    return XCartClient(stack.settings.xcart)


async def closed_run(
    stack: Stack, workflow_id: str, since: datetime
) -> WorkflowExecutionDescription:
    """The latest run of `workflow_id` started after `since`, once it closed."""

    async def check() -> WorkflowExecutionDescription | None:
        try:
            described = await stack.client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            return None
        if described.start_time < since or described.close_time is None:
            return None
        return described

    return await eventually(check, 30, f"a closed run of {workflow_id}")


def open_letters(stack: Stack) -> list[str]:
    engine = make_engine(stack.database_url)
    with session_scope(engine) as session:
        query = select(DeadLetter).where(DeadLetter.status == DeadLetterStatus.OPEN)
        found = [letter.business_key for letter in session.exec(query).all()]
    engine.dispose()
    return found
