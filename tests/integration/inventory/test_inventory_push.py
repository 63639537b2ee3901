"""Inventory push end to end, both pairs: an ERP stock change reaches the store as
sellable stock (available - safety stock), pushed as absolute quantities."""

from __future__ import annotations

import math
import time
from datetime import timedelta

import pytest

from commerce_sync.contracts.inventory import InventoryStatus, PushProgress
from commerce_sync.systems.kentico.client import KenticoClient
from commerce_sync.systems.xcart.client import XCartClient
from tests.integration.inventory.bulk import (
    add_in_brightpearl,
    bulk_skus,
    create_in_erp,
    create_in_store,
    receive_in_acumatica,
)
from tests.integration.inventory.inventory_stack import (
    BATCH_SIZE,
    PAIRS,
    InventoryStack,
    approve,
    erp_stock_reads,
    stock_writes,
)
from tests.integration.orders.order_stack import eventually, point_webhooks


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_stock_change_in_the_erp_reaches_the_store(
    inventory: InventoryStack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    before = await inventory.store_stocks(pair)
    await inventory.set_erp_stock(pair, "WIDGET-3", 37)
    expected = inventory.sellable(pair, 37)

    async def landed() -> bool:
        return await inventory.store_stock(pair, "WIDGET-3") == expected

    await eventually(landed, what=f"WIDGET-3 at {expected} in {store}")
    status = await inventory.wait_status(pair, "the push idle", lambda s: s.state == "idle")
    assert status.totals.written == 1 and status.totals.rejected == 0
    assert status.last_cycle is not None and status.last_cycle.skus == 1
    # Only that SKU moved in the store; one read of the ERP, one write to the store.
    after = await inventory.store_stocks(pair)
    assert {sku: qty for sku, qty in after.items() if before.get(sku) != qty} == {
        "WIDGET-3": expected
    }
    assert len(erp_stock_reads(erp, await inventory.calls(erp))) == 1
    assert len(stock_writes(store, await inventory.calls(store))) == 1


# ---- a thousand SKUs at once -------------------------------------------------------------


def _not_auth(call: dict[str, object]) -> bool:
    return not str(call["path"]).startswith(("/identity/", "/entity/auth/"))


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_thousand_skus_changed_at_once_take_one_erp_read_per_batch(
    inventory: InventoryStack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    settings = inventory.stack.settings
    skus = bulk_skus(1000)
    # Made with the ERP's webhooks held: a thousand product events are catalog sync's.
    await inventory.hold_webhooks(erp)
    await create_in_erp(inventory, pair, skus, on_hand=10)
    # The store already shows the right figure for most: a full push only fixes drift.
    await create_in_store(settings, store, skus, amount=inventory.sellable(pair, 10))
    everything = len(skus) + 10  # and the seed catalog

    # The full reconciliation (what runs nightly): every ERP SKU, read a batch at a time.
    await inventory.forget_calls(erp)
    response = await inventory.http.post(
        f"{inventory.stack.api}/inventory/{pair}/push", headers=inventory.headers()
    )
    assert response.status_code == 202, response.text
    assert response.json()["mode"] == "all" and response.json()["skus"] is None
    full = await inventory.wait_request(pair, response.json()["request_id"], timeout_s=240)
    assert (full.phase, full.total, full.done) == ("done", everything, everything)
    assert (full.counts.read, full.counts.rejected, full.counts.not_in_erp) == (everything, 0, 0)
    if store == "kentico":  # it compares before it writes: only the seed SKUs drifted
        assert (full.counts.written, full.counts.unchanged) == (10, len(skus))
    else:  # one update-many per batch writes the batch, but for the SKUs whose amount
        # the listing that refreshed the product id cache (once, for the first batch with
        # new SKUs) showed in place already: at most one batch is compared, for free
        assert full.counts.written + full.counts.unchanged == everything
        assert 0 < full.counts.unchanged <= BATCH_SIZE, full.counts
    calls = [call for call in await inventory.calls(erp) if _not_auth(call)]
    reads = erp_stock_reads(erp, calls)
    listing_pages = 1 if erp == "acumatica" else math.ceil(everything / 500)
    # One read per batch, plus the listing of every SKU (Acumatica: one inquiry for all).
    assert len(calls) == math.ceil(everything / BATCH_SIZE) + listing_pages, calls
    assert len(reads) >= math.ceil(everything / BATCH_SIZE)
    stocks = await inventory.store_stocks(pair)
    assert {stocks[sku] for sku in skus} == {inventory.sellable(pair, 10)}

    # Now all thousand change at once: one stock correction / one released receipt.
    await point_webhooks(inventory.sandbox, settings, inventory.stack.api)
    if erp == "brightpearl":
        state = await inventory.stack.state_of("brightpearl")
        wanted = set(skus)
        ids = [int(i) for i, p in state["products"].items() if p["identity"]["sku"] in wanted]
        assert len(ids) == len(skus)
        await add_in_brightpearl(settings, ids, 5)
    else:
        await receive_in_acumatica(settings, skus, 5, "bulk count")
    changed_at = time.time()
    expected = inventory.sellable(pair, 15)

    async def all_landed() -> bool:
        stocks = await inventory.store_stocks(pair)
        return all(stocks[sku] == expected for sku in skus)

    await eventually(all_landed, 240.0, f"a thousand SKUs at {expected} in {store}")
    await inventory.wait_status(pair, "the push idle", lambda s: s.state == "idle")
    pushed = [c for c in await inventory.calls(erp) if c["time"] >= changed_at and _not_auth(c)]
    assert pushed == erp_stock_reads(erp, pushed)  # nothing but availability reads
    assert len(pushed) <= math.ceil(len(skus) / BATCH_SIZE), pushed
    # Seed SKUs did not change, so they were not pushed.
    stocks = await inventory.store_stocks(pair)
    assert stocks["WIDGET-1"] == inventory.sellable(pair, 100)


# ---- a SKU the store refuses -------------------------------------------------------------


async def remove_from_store(inventory: InventoryStack, store: str, sku: str) -> None:
    """The store stops selling the SKU (deleted through its own API); the ERP keeps it."""
    settings = inventory.stack.settings
    state = await inventory.stack.state_of(store)
    if store == "kentico":
        rows = [row for row in state["ecommerce.sku"] if row["SKUNumber"] == sku]
        async with KenticoClient(settings.kentico) as kentico:
            await kentico.delete_product(rows[0]["SKUID"])
    else:
        found = [p for p in state["products"] if p["sku"] == sku]
        async with XCartClient(settings.xcart) as xcart:
            assert await xcart.delete_product(found[0]["product_id"])
    assert sku not in await inventory.store_stocks_of(store)


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_sku_the_store_refuses_is_a_dead_letter_and_the_others_land(
    inventory: InventoryStack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    await remove_from_store(inventory, store, "WIDGET-5")
    skus = ["WIDGET-4", "WIDGET-5", "WIDGET-6"]

    async def push() -> PushProgress:
        response = await inventory.http.post(
            f"{inventory.stack.api}/inventory/{pair}/push",
            json={"skus": skus},
            headers=inventory.headers(),
        )
        assert response.status_code == 202, response.text
        assert response.json()["skus"] == len(skus)
        return await inventory.wait_request(pair, response.json()["request_id"])

    done = await push()
    assert (done.phase, done.total, done.counts.read) == ("done", 3, 3)
    assert (done.counts.written, done.counts.rejected) == (2, 1)
    stocks = await inventory.store_stocks(pair)
    assert stocks["WIDGET-4"] == stocks["WIDGET-6"] == inventory.sellable(pair, 100)
    assert "WIDGET-5" not in stocks

    letters = inventory.dead_letters(pair)
    assert len(letters) == 1
    letter = letters[0]
    assert (letter.process, letter.reason, letter.status) == ("inventory", "store_rejected", "open")
    assert letter.business_key == f"inventory:{pair}:WIDGET-5"
    assert letter.payload == {
        "pair": pair,
        "store": store,
        "sku": "WIDGET-5",
        "quantity": inventory.sellable(pair, 100),
    }
    assert "WIDGET-5" in letter.error or "unknown SKU" in letter.error

    # Refused again: the open letter counts another attempt; no second letter.
    again = await push()
    assert (again.counts.rejected, again.counts.written + again.counts.unchanged) == (1, 2)
    letters = inventory.dead_letters(pair)
    assert [(each.id, each.attempts) for each in letters] == [(letter.id, 2)]
    # The ERP was only read (Acumatica's inquiries are PUTs that change nothing).
    calls = [c for c in await inventory.calls(erp) if _not_auth(c)]
    assert [c for c in calls if c["method"] != "GET" and not erp_stock_reads(erp, [c])] == []


# ---- a failed ERP read ------------------------------------------------------------------

READ_FAILS = {
    "brightpearl": {"match": "GET */warehouse-service/product-availability/*", "status": 500},
    "acumatica": {"match": "PUT */InventoryQuantityAvailable*", "status": 500},
}


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_failed_erp_read_pushes_nothing_until_a_read_works(
    inventory: InventoryStack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    await inventory.fault(erp, {**READ_FAILS[erp], "message": "warehouse service down"})
    await inventory.forget_calls(store)
    await inventory.set_erp_stock(pair, "WIDGET-7", 40)

    status = await inventory.wait_status(
        pair,
        "the read given up and the SKU waiting for a retry",
        lambda s: s.totals.read_failed >= 1 and s.retrying >= 1,
    )
    assert status.totals.written == status.totals.unchanged == 0
    assert "warehouse service down" in status.last_error
    assert await inventory.fault_hits(erp) >= 2  # `inventory.attempts` tries
    # Nothing reached the store: not a zero, not a guess.
    assert stock_writes(store, await inventory.calls(store)) == []
    assert await inventory.store_stock(pair, "WIDGET-7") == 100

    # The ERP answers again: the retry pushes the SKU.
    await inventory.clear_faults(erp)
    expected = inventory.sellable(pair, 40)

    async def landed() -> bool:
        return await inventory.store_stock(pair, "WIDGET-7") == expected

    await eventually(landed, what=f"WIDGET-7 at {expected} after the retry")
    assert len(stock_writes(store, await inventory.calls(store))) == 1


# ---- the oversell race -------------------------------------------------------------------

# The store's stock write is held up for a few seconds: the window between the ERP read
# and the write stays open long enough to place an order in it.
SLOW_STOCK_WRITE = {
    "kentico": {"match": "PUT /rest/ecommerce.sku/*", "delay_s": 4, "count": 1},
    "xcart": {"match": "PUT /admin.php?*_path=product", "delay_s": 4, "count": 1},
}


async def cycled(inventory: InventoryStack, pair: str, what: str) -> InventoryStatus:
    """The push once it has run a cycle and has nothing left to push."""
    return await inventory.wait_status(
        pair, what, lambda s: s.state == "idle" and s.cycles >= 1 and s.pending == 0
    )


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_store_orders_not_yet_in_the_erp_are_held_back_even_mid_push(
    inventory: InventoryStack, pair: str
) -> None:
    store = PAIRS[pair][0]
    stack = inventory.stack
    # A shopper ordered 3 before the push; the order waits for approval, not in the ERP.
    early = await stack.place_order(store, lines=[{"sku": "WIDGET-2", "quantity": 3}])
    await stack.wait_state(pair, early, "awaiting_approval")

    await inventory.fault(store, SLOW_STOCK_WRITE[store])
    await inventory.set_erp_stock(pair, "WIDGET-2", 40)
    # The ERP has been read (40) and the write is on its way: another shopper orders 5.
    await eventually(lambda: inventory.fault_hits(store), what="the stock write in flight")
    late = await stack.place_order(store, lines=[{"sku": "WIDGET-2", "quantity": 5}])
    await stack.wait_state(pair, late, "awaiting_approval")

    status = await cycled(inventory, pair, "the push cycle written and verified")
    # The ERP can sell 40 less safety stock; 8 of that are the two orders' (not in it yet).
    held_back = inventory.sellable(pair, 40, held=3 + 5)
    assert await inventory.store_stock(pair, "WIDGET-2") == held_back
    assert status.reserved == {"WIDGET-2": 8}
    assert status.reserved_orders == sorted([early, late])
    assert status.last_cycle is not None and status.last_cycle.counts.corrected == 1
    assert (await inventory.erp_available(pair))["WIDGET-2"] == 40

    # Both orders are approved and reach the ERP, which now holds their 8 itself.
    await approve(inventory, pair, early)
    await approve(inventory, pair, late)
    for order_id in (early, late):
        await stack.wait_state(pair, order_id, "awaiting_shipment")
    settled = await inventory.wait_status(
        pair,
        "no order held back any more",
        lambda s: s.state == "idle" and not s.reserved and s.pending == 0,
    )
    assert settled.reserved_orders == []
    assert (await inventory.erp_available(pair))["WIDGET-2"] == 32
    # Never more than the ERP can sell: the same figure, now from the ERP's own count.
    assert (
        await inventory.store_stock(pair, "WIDGET-2") == held_back == inventory.sellable(pair, 32)
    )


SLOW_ORDER_LISTING = {
    "kentico": {"match": "GET /rest/ecommerce.order/site/*", "delay_s": 5, "count": 1},
    "xcart": {"match": "GET /admin.php?*_path=order&*", "delay_s": 5, "count": 1},
}


async def push_activities(inventory: InventoryStack, pair: str) -> list[str]:
    """The activity types the pair's push run scheduled so far, in order."""
    history = await inventory.client.get_workflow_handle(f"inventory:{pair}").fetch_history()
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_an_order_placed_after_the_write_is_verified_with_one_listing(
    inventory: InventoryStack, pair: str
) -> None:
    """The store counted an order placed after the cycle's write landed itself: the
    verification's correction finds the store right and writes nothing, and nothing was
    written since that listing, so the verification ends (no second listing)."""
    store = PAIRS[pair][0]
    stack = inventory.stack
    await inventory.fault(store, SLOW_STOCK_WRITE[store])
    await inventory.set_erp_stock(pair, "WIDGET-4", 30)
    await eventually(lambda: inventory.fault_hits(store), what="the stock write in flight")
    # The listing after the write is held 5 s before the store answers it.
    await inventory.fault(store, SLOW_ORDER_LISTING[store])
    written = inventory.sellable(pair, 30)

    async def write_landed() -> bool:
        return await inventory.store_stock(pair, "WIDGET-4") == written

    await eventually(write_landed, what="the stock write landed")
    order = await stack.place_order(store, lines=[{"sku": "WIDGET-4", "quantity": 2}])
    await stack.wait_state(pair, order, "awaiting_approval")

    status = await cycled(inventory, pair, "the cycle verified")
    assert await inventory.store_stock(pair, "WIDGET-4") == inventory.sellable(pair, 30, held=2)
    assert status.reserved == {"WIDGET-4": 2}
    assert status.last_cycle is not None and status.last_cycle.counts.corrected == 0

    async def watched_since() -> list[str] | None:
        """What the run did after the cycle's write, once a hold's watch has listed the
        orders and asked the links (a verification's listing asks no links)."""
        scheduled = await push_activities(inventory, pair)
        after = scheduled[scheduled.index("inventory.set_stock") + 1 :]
        return after if "inventory.linked_orders" in after else None

    after = await eventually(watched_since, what="the hold's watch")
    assert after[:3] == [
        "inventory.store_orders",  # the verification's listing finds the new order
        "inventory.order_reservations",
        "inventory.set_stock",  # its correction: the store has it already
    ], after
    assert after[3:5] == ["inventory.store_orders", "inventory.linked_orders"], after
    await approve(inventory, pair, order)
    await stack.wait_state(pair, order, "awaiting_shipment")


# ---- the ERP's echo of an order the store counted -----------------------------------------


STOCK_SKUS = "inventory.stock_skus"


async def settle_at(inventory: InventoryStack, pair: str, sku: str, available: int) -> int:
    """Set the SKU's ERP stock and wait for the push to land it: the run's full cycle for
    it (a change no order explains). Answers the store's figure."""
    await inventory.set_erp_stock(pair, sku, available)
    expected = inventory.sellable(pair, available)

    async def landed() -> bool:
        return await inventory.store_stock(pair, sku) == expected

    await eventually(landed, what=f"{sku} at {expected} in the store")
    await cycled(inventory, pair, "the push idle")
    return expected


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_the_erps_echo_of_an_order_the_store_counted_asks_the_store_nothing(
    inventory: InventoryStack, pair: str
) -> None:
    """The store took the order off its count when it was placed; when the order reaches
    the ERP, the ERP's stock falls by the same 2 and its webhook names the SKU. The push
    reads the ERP, finds the change is exactly the order it linked since, and neither
    lists, reads nor writes the store."""
    store = PAIRS[pair][0]
    stack = inventory.stack
    shown = await settle_at(inventory, pair, "WIDGET-5", 30)
    order = await stack.place_order(store, lines=[{"sku": "WIDGET-5", "quantity": 2}])
    await stack.wait_state(pair, order, "awaiting_approval")
    assert await inventory.store_stock(pair, "WIDGET-5") == shown - 2  # the store's own count
    before = len(await push_activities(inventory, pair))
    writes_before = len(stock_writes(store, await inventory.calls(store)))

    await approve(inventory, pair, order)
    await stack.wait_state(pair, order, "awaiting_shipment")
    status = await inventory.wait_status(
        pair, "the echo checked", lambda s: s.totals.echoes >= 1 and s.pending == 0
    )
    assert (await inventory.erp_available(pair))["WIDGET-5"] == 28
    assert await inventory.store_stock(pair, "WIDGET-5") == inventory.sellable(pair, 28)
    assert status.totals.echoes == 1
    # (Brightpearl's webhook names product ids: `stock_skus` looks their SKUs up in it.)
    after = [a for a in (await push_activities(inventory, pair))[before:] if a != STOCK_SKUS]
    assert after == ["inventory.linked_since", "inventory.read_stock"], after
    assert len(stock_writes(store, await inventory.calls(store))) == writes_before


@pytest.mark.parametrize("inventory", [{"cycles_per_run": 1}], indirect=True)
@pytest.mark.parametrize("pair", list(PAIRS))
async def test_the_echo_is_recognised_by_the_run_that_continued_as_new(
    inventory: InventoryStack, pair: str
) -> None:
    """The SKU's base comes over the continue-as-new after the cycle that set it (one
    cycle per run): the next run recognises the order's echo without a store call."""
    store = PAIRS[pair][0]
    stack = inventory.stack
    await settle_at(inventory, pair, "WIDGET-6", 30)
    order = await stack.place_order(store, lines=[{"sku": "WIDGET-6", "quantity": 3}])
    await stack.wait_state(pair, order, "awaiting_approval")
    writes_before = len(stock_writes(store, await inventory.calls(store)))

    await approve(inventory, pair, order)
    await stack.wait_state(pair, order, "awaiting_shipment")
    status = await inventory.wait_status(
        pair, "the echo checked", lambda s: s.totals.echoes >= 1 and s.pending == 0
    )
    assert status.run >= 1 and status.totals.echoes == 1 and status.cycles == 1
    assert await inventory.store_stock(pair, "WIDGET-6") == inventory.sellable(pair, 27)
    assert len(stock_writes(store, await inventory.calls(store))) == writes_before


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_an_erp_change_no_linked_order_explains_is_pushed_in_full(
    inventory: InventoryStack, pair: str
) -> None:
    """After an echo was recognised, a count in the ERP (30 -> 24 on hand, no order) is
    no echo: the push lists the store's orders and writes the ERP's figure."""
    store = PAIRS[pair][0]
    stack = inventory.stack
    await settle_at(inventory, pair, "WIDGET-5", 30)
    order = await stack.place_order(store, lines=[{"sku": "WIDGET-5", "quantity": 2}])
    await stack.wait_state(pair, order, "awaiting_approval")
    await approve(inventory, pair, order)
    await stack.wait_state(pair, order, "awaiting_shipment")
    await inventory.wait_status(
        pair, "the echo checked", lambda s: s.totals.echoes == 1 and s.pending == 0
    )
    before = len(await push_activities(inventory, pair))

    # On hand 24 with the order's 2 allocated: 22 available.
    await inventory.set_erp_stock(pair, "WIDGET-5", 24)
    expected = inventory.sellable(pair, 22)

    async def landed() -> bool:
        return await inventory.store_stock(pair, "WIDGET-5") == expected

    await eventually(landed, what=f"WIDGET-5 at {expected} in {store}")
    status = await cycled(inventory, pair, "the push idle")
    assert status.totals.echoes == 1
    after = [a for a in (await push_activities(inventory, pair))[before:] if a != STOCK_SKUS]
    assert after[:2] == ["inventory.linked_since", "inventory.read_stock"], after
    assert "inventory.store_orders" in after and "inventory.set_stock" in after, after


# ---- the Brightpearl throttle ------------------------------------------------------------


async def test_a_brightpearl_throttle_answer_is_the_retry_delay(inventory: InventoryStack) -> None:
    """Brightpearl says 503 and `brightpearl-next-throttle-period: 6000` (ms), longer than
    the connector waits for a read itself: the read is tried again when the period ends,
    not on Temporal's own backoff."""
    pair = "kentico-brightpearl"
    await inventory.fault(
        "brightpearl",
        {
            "match": "GET */warehouse-service/product-availability/*",
            "status": 503,
            "count": 1,
            "retry_after_s": 6,
        },
    )
    await inventory.set_erp_stock(pair, "WIDGET-6", 44)
    expected = inventory.sellable(pair, 44)

    async def landed() -> bool:
        return await inventory.store_stock(pair, "WIDGET-6") == expected

    await eventually(landed, what=f"WIDGET-6 at {expected} after the throttle")
    history = await inventory.client.get_workflow_handle(f"inventory:{pair}").fetch_history()
    scheduled = {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    }
    retried = [
        event.activity_task_started_event_attributes
        for event in history.events
        if event.HasField("activity_task_started_event_attributes")
        and event.activity_task_started_event_attributes.attempt == 2
        and scheduled[event.activity_task_started_event_attributes.scheduled_event_id]
        == "inventory.read_stock"
    ]
    assert len(retried) == 1
    failure = retried[0].last_failure.application_failure_info
    assert failure.type == "ThrottledError"
    assert failure.next_retry_delay.ToTimedelta() == timedelta(seconds=6)
