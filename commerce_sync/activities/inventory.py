"""Inventory push activities (workflow `inventory:{pair}`).

- `InventoryErpActivities` on each ERP's queue: ERP item ids -> SKUs, one availability
  read per batch, the SKUs changed since a cursor (or all of them).
- `InventoryStoreActivities` on each store's queue: one batched absolute stock write,
  the store's orders changed since a time, and the lines of some orders.
- `InventoryDatabaseActivities` on the workflow queue: which store orders reached the
  ERP (the links table), dead letters for SKUs the store refused (business key
  `inventory:{pair}:{sku}`), resolved once a later push lands the SKU, and the signal a
  schedule tick sends to the push run.

All of them are idempotent: reads change nothing, stock writes are absolute, a dead
letter is recorded once per SKU while it is open, and a repeated push request is
recognised by its id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, func, select
from temporalio import activity
from temporalio.client import Client

from commerce_sync.activities.errors import classified
from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.activities import Inventory, implements, implements_sync
from commerce_sync.contracts.inventory import (
    ErpIdsInput,
    LandedSkus,
    LinkedOrders,
    LinkedOrdersInput,
    LinkedSince,
    LinkedSinceInput,
    OrderListing,
    OrderListingInput,
    PushSignalInput,
    ReservationsInput,
    StockChangesInput,
    StockReadInput,
    StockRejections,
    StockWriteInput,
)
from commerce_sync.contracts.stock import (
    Availability,
    OrderReservation,
    StockChanges,
    StockWriteResult,
)
from commerce_sync.domain.models import utc_now
from commerce_sync.intake.dispatch import dispatch
from commerce_sync.intake.routing import inventory_push_route
from commerce_sync.store.db import session_scope
from commerce_sync.store.dead_letters import (
    inventory_letter_key,
    record_dead_letter,
    resolve_inventory_letters,
    unresolved_inventory_skus,
)
from commerce_sync.store.links import order_links_since
from commerce_sync.store.models import DeadLetter, DeadLetterStatus, Link
from commerce_sync.systems.ports import ErpPort, StorePort

IN_CHUNK = 500
LINKED_SINCE_LOOKS = 20_000
"""Order links one `linked_since` looks at, newest first (it answers only those taking the
SKUs asked about): a SKU whose last push is older than that many links is pushed in full."""


class InventoryErpActivities:
    def __init__(self, port: ErpPort, pairs: dict[str, PairConfig]) -> None:
        self._port = port
        self._pairs = pairs

    @implements(Inventory.stock_skus)
    @classified
    async def stock_skus(self, ids: ErpIdsInput) -> dict[str, str]:
        return await self._port.stock_skus(ids.erp_ids, self._pairs[ids.pair])

    @implements(Inventory.read_stock)
    @classified
    async def read_stock(self, read: StockReadInput) -> list[Availability]:
        return await self._port.read_stock(read.skus, self._pairs[read.pair])

    @implements(Inventory.stock_changed_since)
    @classified
    async def stock_changed_since(self, query: StockChangesInput) -> StockChanges:
        return await self._port.stock_changed_since(query.since, self._pairs[query.pair])


class InventoryStoreActivities:
    def __init__(self, port: StorePort, pairs: dict[str, PairConfig]) -> None:
        self._port = port
        self._pairs = pairs

    @implements(Inventory.set_stock)
    @classified
    async def set_stock(self, write: StockWriteInput) -> StockWriteResult:
        return await self._port.set_stock_levels(write.quantities, self._pairs[write.pair])

    @implements(Inventory.store_orders)
    @classified
    async def store_orders(self, listing: OrderListingInput) -> OrderListing:
        """The time is taken before the store is asked: an order the listing misses was
        placed after it, and the next listing (from this time) finds it."""
        listed_at = datetime.now(UTC)
        stamps = await self._port.orders_changed_since(listing.since, self._pairs[listing.pair])
        return OrderListing(stamps=stamps, listed_at=listed_at)

    @implements(Inventory.order_reservations)
    @classified
    async def order_reservations(self, request: ReservationsInput) -> list[OrderReservation]:
        return await self._port.order_reservations(request.order_ids, self._pairs[request.pair])


class InventoryDatabaseActivities:
    """On the workflow queue: the application database, and starting pushes."""

    def __init__(self, engine: Engine, client: Client) -> None:
        self._engine = engine
        self._client = client

    @implements_sync(Inventory.linked_orders)
    def linked_orders(self, request: LinkedOrdersInput) -> list[str]:
        """The store orders the order sync has linked to an ERP order: the ERP holds their
        stock already (the link is recorded after the ERP order exists)."""
        with session_scope(self._engine) as session:
            return _linked_in(session, request)

    @implements_sync(Inventory.linked_orders_marked)
    def linked_orders_marked(self, request: LinkedOrdersInput) -> LinkedOrders:
        """`linked_orders`, with the mark they were asked at: the highest order link id.
        Every order linked after this answer has a higher id (one sequence), so the push
        can count, later, exactly the orders that reached the ERP after its read."""
        with session_scope(self._engine) as session:
            # The mark first: an order linked in between is in the answer and above the
            # mark, so it is counted again later, which fails the echo check (a full
            # push), never the other way round.
            mark = session.exec(
                select(func.max(Link.id)).where(Link.pair == request.pair, Link.kind == "order")
            ).one()
            return LinkedOrders(linked=_linked_in(session, request), mark=mark or 0)

    @implements_sync(Inventory.linked_since)
    def linked_since(self, request: LinkedSinceInput) -> LinkedSince:
        """The order links made after `mark` that take one of `skus` (or whose quantities
        are unknown), oldest first (`store/links.py` `order_links_since`)."""
        found = order_links_since(
            self._engine, request.pair, request.mark, request.skus, LINKED_SINCE_LOOKS
        )
        return LinkedSince(orders=found.links, mark=found.mark, whole_after=found.whole_after)

    @implements_sync(Inventory.record_rejections)
    def record_rejections(self, batch: StockRejections) -> int:
        """One open dead letter per refused SKU (process `inventory`): a SKU refused again
        while its letter is open adds an attempt to it instead of a second letter."""
        info = activity.info()
        attempt_key = f"{info.workflow_run_id}:{info.activity_id}"
        for rejection in batch.rejections:
            prefix = f"inventory:{batch.pair}:{rejection.sku}:"
            payload = {
                "pair": batch.pair,
                "store": batch.store,
                "sku": rejection.sku,
                "quantity": rejection.quantity,
            }
            with session_scope(self._engine) as session:
                open_letter = session.exec(
                    select(DeadLetter).where(
                        col(DeadLetter.dedupe_key).startswith(prefix),
                        DeadLetter.status == DeadLetterStatus.OPEN,
                    )
                ).first()
                if open_letter is not None:
                    repeated = str(open_letter.dedupe_key).endswith(attempt_key) or any(
                        entry.get("key") == attempt_key for entry in open_letter.history
                    )
                    if not repeated:  # not this very activity retried
                        now = utc_now()
                        open_letter.attempts += 1
                        open_letter.error = rejection.error
                        open_letter.payload = payload
                        open_letter.updated_at = now
                        open_letter.history = [
                            *open_letter.history,
                            {"at": now.isoformat(), "event": "refused again", "key": attempt_key},
                        ]
                        session.add(open_letter)
                    continue
            record_dead_letter(
                self._engine,
                pair=batch.pair,
                process="inventory",
                business_key=inventory_letter_key(batch.pair, rejection.sku),
                reason="store_rejected",
                error=rejection.error,
                payload=payload,
                dedupe_key=f"{prefix}{attempt_key}",
            )
        return len(batch.rejections)

    @implements_sync(Inventory.lettered_skus)
    def lettered_skus(self, pair: str) -> list[str]:
        """The pair's SKUs with an unresolved letter: the run resolves them once it lands
        one (asked once per run, so a push of SKUs without letters costs nothing more)."""
        return unresolved_inventory_skus(self._engine, pair)

    @implements_sync(Inventory.resolve_letters)
    def resolve_letters(self, landed: LandedSkus) -> int:
        """The store took these SKUs' stock: their open or replayed letters are resolved,
        history kept (a retry finds them resolved and changes nothing)."""
        note = "a later push wrote the SKU to the store"
        return resolve_inventory_letters(self._engine, landed.pair, landed.skus, note)

    @implements(Inventory.request_push)
    async def request_push(self, request: PushSignalInput) -> str:
        """Signal-with-start `inventory:{pair}` on this worker's workflow queue; the run
        ignores a request id it has seen, so a retry asks for nothing twice."""
        route = inventory_push_route(request.pair, request.request)
        await dispatch(self._client, route, activity.info().task_queue)
        return route.workflow_id


def _linked_in(session: Session, request: LinkedOrdersInput) -> list[str]:
    """Which of the request's store orders have an order link (one query per chunk)."""
    linked: list[str] = []
    ids = list(dict.fromkeys(request.order_ids))
    for start in range(0, len(ids), IN_CHUNK):
        statement = select(Link.store_id).where(
            Link.pair == request.pair,
            Link.kind == "order",
            col(Link.store_id).in_(ids[start : start + IN_CHUNK]),
        )
        linked.extend(session.exec(statement).all())
    return linked
