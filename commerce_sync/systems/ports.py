"""What the business processes need from a store and from an ERP.

Each system's connector is adapted to one of these (`systems/<name>/port.py`), so the
activities and workflows are written once for every pair. Per-pair lookups come in as
the `PairConfig`; a port holds one pooled connector for the whole worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.documents import ErpOrderHandle, PriorReturns, StoreReturn
from commerce_sync.contracts.feeds import CustomerChange, OrderChange
from commerce_sync.contracts.stock import (
    Availability,
    OrderReservation,
    OrderStamp,
    StockChanges,
    StockWriteResult,
)
from commerce_sync.domain.models import (
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    Product,
    ReturnLine,
    ReturnStatus,
    Shipment,
)
from commerce_sync.systems.attempts import NO_MEMORY, AttemptMemory
from commerce_sync.systems.observe import RequestHook, ResponseHook


class StorePort(Protocol):
    system: str

    async def get_order(self, order_id: str, pair: PairConfig) -> Order: ...

    async def set_order_status(
        self,
        order_id: str,
        status: OrderStatus,
        pair: PairConfig,
        erp_ref: str | None = None,
        note: str | None = None,
        *,
        store_notes: str | None = None,
    ) -> str | None:
        """Write the status (and the ERP number and note into the store's notes field).

        `store_notes`: what that field holds now (`Order.store_notes`, or what the run's
        last write answered); given, the write merges into it and reads nothing first;
        None, the order is read first. Returns the field as written, or None when the
        write left it alone."""
        ...

    async def set_tracking(
        self,
        order_id: str,
        tracking_numbers: list[str],
        carrier: str,
        pair: PairConfig,
        *,
        store_notes: str | None = None,
    ) -> str | None:
        """Tracking numbers and carrier; `store_notes` and the answer as in
        `set_order_status` (a store that keeps the carrier in that field merges it)."""
        ...

    def changed_orders(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[OrderChange]]:
        """`changed_order_ids` with whether each order is cancelled in the store, from the
        same reads (no order is read whole for it)."""
        ...

    def changed_order_ids(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[str]]:
        """Ids of the orders changed after `since`, a page at a time, each id once.

        Ids only: the order sync run reads and validates each order itself, so an order
        that would not map does not stop a listing (`resync orders`).
        """
        ...

    # ---- catalog (catalog sync) -------------------------------------------------

    async def find_product(self, sku: str, pair: PairConfig) -> Product | None:
        """The store's product with this SKU (`origin.external_id` is its store id), or None."""
        ...

    async def create_product(self, product: Product, pair: PairConfig) -> str:
        """Create the product (no stock yet); returns its store id."""
        ...

    async def update_product(self, product_id: str, product: Product, pair: PairConfig) -> None:
        """Write name, description, price, SKU and enabled of an existing product."""
        ...

    async def delete_product(self, product_id: str, pair: PairConfig) -> bool:
        """Remove the product; False when it was already gone (an undo may repeat)."""
        ...

    async def remove_product_twins(self, sku: str, keep_id: str, pair: PairConfig) -> list[str]:
        """Delete every product with exactly this SKU but `keep_id` (made by a create whose
        answer was lost and that landed after its retry's look-up); their ids."""
        ...

    # ---- inventory (inventory push) ---------------------------------------------

    async def set_stock_levels(
        self, quantities: dict[str, int], pair: PairConfig
    ) -> StockWriteResult:
        """Absolute quantities per SKU, batched as the store allows; a SKU the store refuses
        is reported, the rest still land. Transient failures raise."""
        ...

    async def orders_changed_since(self, since: datetime, pair: PairConfig) -> list[OrderStamp]:
        """Every order changed after `since` (placed ones included), with its placing time."""
        ...

    async def order_reservations(
        self, order_ids: list[str], pair: PairConfig
    ) -> list[OrderReservation]:
        """Quantities per SKU of these orders; orders that are gone are left out."""
        ...

    # ---- returns (return sync) ----------------------------------------------------

    def changed_return_ids(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[str]]:
        """Ids of the return requests changed after `since`, a page at a time (the change
        feed starts the return run of each that has none)."""
        ...

    def changed_customers(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[CustomerChange]]:
        """Customers changed after `since`, each with the store's stamp of its change, a
        page at a time (the change feed signals the customer's sync)."""
        ...

    async def get_return(self, return_id: str, pair: PairConfig) -> StoreReturn:
        """The return request and its order's store id (`NotFound` when there is none)."""
        ...

    async def set_return_status(
        self, return_id: str, status: ReturnStatus, pair: PairConfig, note: str | None = None
    ) -> None:
        """Write the return's status in the store's own terms (idempotent)."""
        ...

    def observe_responses(self, hook: ResponseHook) -> None:
        """Call `hook` with every answer the system gives this connector."""
        ...

    def observe_requests(self, hook: RequestHook) -> None:
        """Await `hook` before every request this connector sends."""
        ...

    async def aclose(self) -> None: ...


class ErpPort(Protocol):
    system: str

    async def unknown_skus(self, skus: list[str], pair: PairConfig) -> list[str]: ...

    async def find_customer_by_email(self, email: str, pair: PairConfig) -> str | None: ...

    async def create_customer(
        self, customer: Customer, pair: PairConfig, *, memory: AttemptMemory = NO_MEMORY
    ) -> str:
        """`memory`: what an earlier attempt made on the way (`systems/attempts.py`), for a
        create in several requests."""
        ...

    async def delete_customer(
        self, customer_id: str, pair: PairConfig, *, memory: AttemptMemory = NO_MEMORY
    ) -> None: ...

    async def find_order(
        self, store_order_number: str, pair: PairConfig
    ) -> ErpOrderHandle | None: ...

    async def create_order(
        self,
        order: Order,
        customer_id: str,
        pair: PairConfig,
        *,
        first_attempt: bool = False,
        first_run: bool = False,
    ) -> tuple[ErpOrderHandle, bool]:
        """Create the order once per store order number: its handle, and whether this call
        made it (False: it existed). `first_attempt`: no earlier attempt of this step can
        have made it, so a system that keeps the store order number unique may write
        without looking first; with `first_run` too (no earlier run reached the ERP),
        nothing can have made it, and any system may."""
        ...

    async def cancel_order(self, handle: ErpOrderHandle, pair: PairConfig) -> None: ...

    async def remove_order_twins(
        self, keep: ErpOrderHandle, store_order_number: str, pair: PairConfig
    ) -> list[str]:
        """Cancel every live order other than `keep` that carries the store order number
        (made by a create whose answer was lost and that landed after its retry); their ids."""
        ...

    async def record_payment(
        self,
        handle: ErpOrderHandle,
        payment: Payment,
        customer_id: str,
        pair: PairConfig,
        *,
        first_on_new_order: bool = False,
    ) -> str:
        """Record the payment once per reference. `first_on_new_order`: the order was
        just made by the run and this is the step's first attempt, so no payment can be on
        it yet and a system without a unique key may write without looking first."""
        ...

    async def reverse_payment(
        self, handle: ErpOrderHandle, payment_id: str, pair: PairConfig
    ) -> None: ...

    async def get_shipments(self, handle: ErpOrderHandle, pair: PairConfig) -> list[Shipment]: ...

    async def orders_for_shipment_event(
        self, ids: list[str], rows: list[dict[str, Any]], pair: PairConfig
    ) -> list[str]:
        """ERP order ids (as `ErpOrderHandle.id`) behind the shipments a webhook named."""
        ...

    # ---- catalog (catalog sync) -------------------------------------------------

    async def get_product(self, sku: str, pair: PairConfig, product_id: str = "") -> Product | None:
        """The ERP's product with this SKU (mapped to the pair's lookups), or None.

        `product_id` (the ERP's own id, from a webhook) spares a search when it still
        carries this SKU."""
        ...

    async def product_skus(self, product_ids: list[str], pair: PairConfig) -> dict[str, str]:
        """ERP product id -> SKU for the ids that exist (webhooks name ids, runs use SKUs)."""
        ...

    def changed_products(
        self, since: datetime, pair: PairConfig, page_size: int = 100
    ) -> AsyncIterator[list[Product]]:
        """Products created or changed after `since`, a page at a time (`resync catalog`)."""
        ...

    # ---- inventory (inventory push) ---------------------------------------------

    async def stock_skus(self, erp_ids: list[str], pair: PairConfig) -> dict[str, str]:
        """ERP item id (as stock webhooks name them) -> SKU, for the items that exist."""
        ...

    async def read_stock(self, skus: list[str], pair: PairConfig) -> list[Availability]:
        """What the ERP can sell of each SKU, in one read per batch; unknown SKUs are left
        out (never reported as zero)."""
        ...

    async def stock_changed_since(self, since: datetime | None, pair: PairConfig) -> StockChanges:
        """SKUs whose stock changed after `since` (every stock SKU when None)."""
        ...

    # ---- returns (return sync) ----------------------------------------------------
    # Every write is keyed by `reference` (one per store return request): a retry finds
    # what an earlier attempt made instead of making a second one, and an undo finds what
    # to undo by the reference even when the answer of the create was lost.

    async def prior_returns(
        self, handle: ErpOrderHandle, pair: PairConfig, exclude: str = ""
    ) -> PriorReturns:
        """Earlier returns of the sales order (the one keyed `exclude` left out)."""
        ...

    async def create_credit(
        self, handle: ErpOrderHandle, lines: list[OrderLine], reference: str, pair: PairConfig
    ) -> str:
        """The ERP's credit for the returned lines, priced as sold (Brightpearl sales
        credit, Acumatica return order); returns its id."""
        ...

    async def cancel_credit(self, handle: ErpOrderHandle, reference: str, pair: PairConfig) -> None:
        """Cancel the credit keyed `reference`; none, or already cancelled: nothing to do."""
        ...

    async def restock(
        self, credit_id: str, lines: list[ReturnLine], reference: str, pair: PairConfig
    ) -> str:
        """Put the returned goods back on hand; returns an id of the stock document."""
        ...

    async def reverse_restock(self, credit_id: str, reference: str, pair: PairConfig) -> None:
        """Take back what `restock` put on hand; nothing restocked: nothing to do."""
        ...

    async def refund(
        self,
        handle: ErpOrderHandle,
        credit_id: str,
        amount: Decimal,
        currency: str,
        method: str,
        reference: str,
        pair: PairConfig,
    ) -> str:
        """Money back to the customer (Brightpearl `PAYMENT` on the credit, Acumatica
        `Refund`); returns the payment's id."""
        ...

    async def reverse_refund(self, credit_id: str, reference: str, pair: PairConfig) -> None:
        """Void the refund keyed `reference`; none, or already voided: nothing to do."""
        ...

    async def remove_return_twins(
        self,
        handle: ErpOrderHandle,
        reference: str,
        pair: PairConfig,
        *,
        credit_id: str,
        restock_id: str,
        refund_id: str,
    ) -> list[str]:
        """Remove every live document of the return keyed `reference` other than the ones
        the run recorded (`credit_id`, `restock_id`, `refund_id`): the twins of creates whose answers were lost and that
        landed after their retries. What was removed, as "credit 12", "restock 7" ...;
        idempotent (a removed twin is no longer live)."""
        ...

    def observe_responses(self, hook: ResponseHook) -> None:
        """Call `hook` with every answer the system gives this connector."""
        ...

    def observe_requests(self, hook: RequestHook) -> None:
        """Await `hook` before every request this connector sends."""
        ...

    async def aclose(self) -> None: ...
