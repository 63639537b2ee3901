"""What customer merge and customer sync need from every system, and what the systems share.

Each system binds `CustomerPort` in `systems/{system}/customers.py`, around the connector
its store or ERP port already holds (`port.client`), so the store and ERP ports stay as
they are; `customer_port` picks the binding. Reads answer None for a record that is gone;
writes are absolute (the whole record, an active flag, an order's customer), so a retry
repeats nothing harmful.

Open orders are re-pointed in every system (how, in each binding's module). A store
order is open until the pair's lookups map its status to one of `CLOSED_ORDER_STATES`.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, cast

from commerce_sync.config.pairs import PairConfig
from commerce_sync.domain.customers import email_variants, normalise_email, same_person
from commerce_sync.domain.models import Customer
from commerce_sync.systems.acumatica.client import AcumaticaClient
from commerce_sync.systems.attempts import NO_MEMORY, AttemptMemory
from commerce_sync.systems.brightpearl.client import BrightpearlClient
from commerce_sync.systems.kentico.client import KenticoClient
from commerce_sync.systems.xcart.client import XCartClient

CLOSED_ORDER_STATES = frozenset(
    {"shipped", "delivered", "cancelled", "rejected", "returned", "refunded"}
)

BINDINGS: tuple[tuple[type, str, str], ...] = (
    (KenticoClient, "kentico", "KenticoCustomers"),
    (XCartClient, "xcart", "XCartCustomers"),
    (BrightpearlClient, "brightpearl", "BrightpearlCustomers"),
    (AcumaticaClient, "acumatica", "AcumaticaCustomers"),
)
"""The connector class, the system (`systems/{system}/customers.py`) and its binding class."""


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

    async def write_customer(
        self,
        customer_id: str,
        customer: Customer,
        pair: PairConfig,
        *,
        memory: AttemptMemory = NO_MEMORY,
    ) -> None:
        """Write the synced fields, the addresses it carries and the active flag. `memory`:
        what an earlier attempt made on the way (`systems/attempts.py`), for a system that
        writes in several requests (Brightpearl's postal addresses, then the contact)."""
        ...

    async def set_active(
        self,
        customer_id: str,
        active: bool,
        pair: PairConfig,
        *,
        memory: AttemptMemory = NO_MEMORY,
    ) -> None: ...

    async def open_orders(self, customer_id: str, pair: PairConfig) -> list[str]:
        """Ids of the customer's orders that may still change hands."""
        ...

    async def set_order_customer(self, order_id: str, customer_id: str, pair: PairConfig) -> None:
        """Make the order the customer's; nothing to do when it already is."""
        ...


def is_same_email(found: Customer, email: str) -> bool:
    """Whether the customer's e-mail is this one (case and surrounding blanks aside)."""
    return found.email.strip().casefold() == email.strip().casefold()


def email_base_parts(email: str, pair: PairConfig) -> tuple[str, str]:
    """The local part and the domain of the normalised address."""
    plus = pair.customers.plus_addressing_is_same_person
    local, _, domain = normalise_email(email, plus_addressing=plus).rpartition("@")
    return local, domain


def only_same_person(found: list[Customer], email: str, pair: PairConfig) -> list[Customer]:
    """The candidates that are the same person as `email` by the pair's rules, each once."""
    unique = {c.origin.external_id if c.origin else c.email: c for c in found}
    return [c for c in unique.values() if same_person(c.email, email, pair.customers)]


async def exact_variants(port: CustomerPort, email: str, pair: PairConfig) -> list[Customer]:
    """Where the API can only match a whole address: the address and its base address
    (so `a+tag@x` finds `a@x`; `a@x` cannot find `a+tag@x`)."""
    found: list[Customer] = []
    for variant in email_variants(email, pair.customers):
        found.extend(await port.customers_by_email(variant, pair))
    return only_same_person(found, email, pair)


def customer_port(port: object) -> CustomerPort:
    """The customer binding of a store or ERP port (by the connector it holds).

    The bindings import this module's helpers, so their modules are imported here when
    asked for (as `registry.py` does for the ports)."""
    client = getattr(port, "client")  # noqa: B009 - every port holds its connector here
    for client_type, system, binding in BINDINGS:
        if isinstance(client, client_type):
            module = importlib.import_module(f"commerce_sync.systems.{system}.customers")
            adapter: Any = getattr(module, binding)
            return cast(CustomerPort, adapter(client))
    raise TypeError(f"no customer adapter for {type(port).__name__}")
