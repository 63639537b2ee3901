"""`commerce-sync check PAIR`: a read-only dry run of a pair against its real systems.

Before a pair is switched on against a real store and ERP, an operator wants to know that
the credentials work and that each connector can read what the runs will read. The check
authenticates with both systems by making the reads an order run makes first, and
writes nothing:

- the store: one order (the newest changed in the window, or `--order`), the product of
  its first line (or `--sku`), and the customers with the order's e-mail (or `--email`);
- the ERP: the same product by SKU, the customer by e-mail, and the order by the store's
  order number (absent is fine: it may not have been synced yet).

Only requests the order runs themselves make are used (no write, no test record), so the
check needs the same permissions as the product and no more. Its report names records
by id and number only: no e-mail, name or address is printed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from commerce_sync.commands.connectors import budgeted_connectors
from commerce_sync.config.pairs import PairConfig
from commerce_sync.config.settings import Settings
from commerce_sync.domain.models import Customer, Order, Product
from commerce_sync.systems.customer_ports import customer_port
from commerce_sync.systems.errors import AuthenticationFailed, ConnectorError
from commerce_sync.systems.ports import ErpPort, StorePort

Found = TypeVar("Found")

DEFAULT_WINDOW = timedelta(days=30)
"""Without `--order`: the newest order changed in the last 30 days."""


class Outcome(StrEnum):
    OK = "ok"
    NONE = "none"
    """The read worked and found nothing to read (no order in the window, say)."""
    FAILED = "failed"


@dataclass
class CheckLine:
    system: str
    read: str
    outcome: Outcome
    detail: str


@dataclass
class CheckReport:
    pair: str
    lines: list[CheckLine] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(line.outcome is Outcome.FAILED for line in self.lines)


@dataclass
class CheckTargets:
    """What to read; each left empty is taken from the order read first."""

    order_id: str = ""
    sku: str = ""
    email: str = ""
    window: timedelta = DEFAULT_WINDOW


def _failure(exc: ConnectorError) -> str:
    if isinstance(exc, AuthenticationFailed):
        return f"authentication refused: {exc}"
    return f"{type(exc).__name__}: {exc}"


class _Checker:
    def __init__(self, report: CheckReport) -> None:
        self._report = report

    async def read(
        self,
        system: str,
        read: str,
        call: Callable[[], Awaitable[Found]],
        describe: Callable[[Found], tuple[Outcome, str]],
    ) -> Found | None:
        """One read, reported; a connector failure is a failed line, not an exception."""
        try:
            value = await call()
        except ConnectorError as exc:
            self._report.lines.append(CheckLine(system, read, Outcome.FAILED, _failure(exc)))
            return None
        outcome, detail = describe(value)
        self._report.lines.append(CheckLine(system, read, outcome, detail))
        return value

    def skipped(self, system: str, read: str, why: str) -> None:
        self._report.lines.append(CheckLine(system, read, Outcome.NONE, why))


async def _an_order_id(store: StorePort, pair: PairConfig, since: datetime) -> str:
    """The highest id of the first page of changed orders (the store is not read to its
    end: one order is all the check needs)."""
    async for page in store.changed_order_ids(since, pair, page_size=100):
        if page:
            return max(page, key=lambda ident: (len(ident), ident))
    return ""


def _order_detail(order: Order) -> tuple[Outcome, str]:
    return (
        Outcome.OK,
        f"order {order.number} (id {order.origin.external_id}): {len(order.lines)} lines, "
        f"{order.total} {order.currency}, status {order.status.value}",
    )


def _sku_and_email(targets: CheckTargets, order: Order | None) -> tuple[str, str]:
    """What to read in both systems: the operator's choice, else the order's own."""
    sku = targets.sku or (order.lines[0].sku if order is not None and order.lines else "")
    email = targets.email or (order.customer.email if order is not None else "")
    return sku, email


async def _check_product(
    checker: _Checker,
    system: str,
    sku: str,
    lookup: Callable[[], Awaitable[Product | None]],
    absent: str,
) -> None:
    if not sku:
        checker.skipped(system, "product", "no SKU to read (give --sku)")
        return
    await checker.read(
        system,
        "product",
        lookup,
        lambda product: (
            (Outcome.OK, f"{sku}: id {product.origin.external_id if product.origin else '?'}")
            if product is not None
            else (Outcome.NONE, absent)
        ),
    )


async def check_pair(
    settings: Settings,
    pair: PairConfig,
    targets: CheckTargets,
    *,
    now: datetime | None = None,
) -> CheckReport:
    """Read through both systems of the pair; nothing is written."""
    report = CheckReport(pair.id)
    checker = _Checker(report)
    async with budgeted_connectors(settings) as connectors:
        store, erp = connectors.stores[pair.store], connectors.erps[pair.erp]
        order = await _check_store(checker, store, pair, targets, now or datetime.now(UTC))
        await _check_erp(checker, erp, pair, targets, order)
    return report


async def _check_store(
    checker: _Checker,
    store: StorePort,
    pair: PairConfig,
    targets: CheckTargets,
    now: datetime,
) -> Order | None:
    system = pair.store
    order_id = targets.order_id
    if not order_id:
        since = now - targets.window
        found = await checker.read(
            system,
            "orders changed",
            lambda: _an_order_id(store, pair, since),
            lambda ident: (
                (Outcome.OK, f"one changed since {since:%Y-%m-%d}: id {ident}")
                if ident
                else (Outcome.NONE, f"no order changed since {since:%Y-%m-%d}")
            ),
        )
        order_id = found or ""
    order = None
    if order_id:
        order = await checker.read(
            system, "order", lambda: store.get_order(order_id, pair), _order_detail
        )
    sku, email = _sku_and_email(targets, order)
    await _check_product(
        checker, system, sku, lambda: store.find_product(sku, pair), f"no product with SKU {sku}"
    )
    if email:
        customers = customer_port(store)
        await checker.read(
            system,
            "customer",
            lambda: customers.customers_by_email(email, pair),
            lambda found: (
                (Outcome.OK, "the order's e-mail: " + _ids(found))
                if found
                else (Outcome.NONE, "no customer record with the e-mail (a guest order?)")
            ),
        )
    else:
        checker.skipped(system, "customer", "no e-mail to read (give --email)")
    return order


async def _check_erp(
    checker: _Checker,
    erp: ErpPort,
    pair: PairConfig,
    targets: CheckTargets,
    order: Order | None,
) -> None:
    system = pair.erp
    sku, email = _sku_and_email(targets, order)
    await _check_product(
        checker,
        system,
        sku,
        lambda: erp.get_product(sku, pair),
        f"no product with SKU {sku}: its orders would be refused",
    )
    if email:
        await checker.read(
            system,
            "customer",
            lambda: erp.find_customer_by_email(email, pair),
            lambda ident: (
                (Outcome.OK, f"the order's e-mail: id {ident}")
                if ident
                else (Outcome.NONE, "no customer with the e-mail yet (the order run makes it)")
            ),
        )
    else:
        checker.skipped(system, "customer", "no e-mail to read (give --email)")
    if order is not None:
        number = order.number
        await checker.read(
            system,
            "order",
            lambda: erp.find_order(number, pair),
            lambda handle: (
                (Outcome.OK, f"store order {number} is ERP order {handle.number}")
                if handle is not None
                else (Outcome.NONE, f"store order {number} is not in the ERP yet")
            ),
        )
    else:
        checker.skipped(system, "order", "no store order to look for")


def _ids(customers: list[Customer]) -> str:
    ids = [customer.origin.external_id if customer.origin else "?" for customer in customers]
    return f"{len(ids)} record{'s' if len(ids) != 1 else ''} (id {', '.join(ids)})"
