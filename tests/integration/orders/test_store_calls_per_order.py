"""Store calls per order, side runs included (issue #15, point 1): a new customer's order
and then a returning customer's, each from the webhook to shipped, counted in the store
sandbox's request log and put down to where each call comes from.

The order run's own calls are counted exactly; the side runs it sets off (the inventory
push after the ERP's stock change, the customer sync after the ERP's announcement of the
customer the run created) within their bounds; reference data (countries, states, order
statuses) is read once per worker process, on the first order only. Orders of one line
and of two lines: a push of several SKUs compares and writes them as a batch.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any
from urllib.parse import unquote

import pytest
from temporalio.service import RPCError

from commerce_sync.contracts.inventory import InventoryStatus
from tests.integration.orders.order_stack import PAIRS, Stack

# The log is settled when the inventory push has handled the ERP's stock change (a
# cycle, or an echo: its status counts both), has nothing pending, and no call came in
# for longer than the push gathers stock changes (`inventory.gather_window`, 5 s): a
# second cycle would have begun by then.
QUIET_S = 6.0
STOCK_WRITE = re.compile(r"/ecommerce\.sku/\d+$")
SETTLE_LIMIT_S = 90.0


async def requests_of(stack: Stack, system: str) -> list[dict[str, Any]]:
    response = await stack.sandbox.get(f"/{system}/_sandbox/requests")
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["requests"]
    return found


def order_listing(system: str, call: dict[str, Any]) -> bool:
    if system == "kentico":
        return "OrderLastModified" in call["query"]
    return "_path=order&" in call["query"]


async def pushes_handled(stack: Stack, pair: str) -> tuple[int, bool]:
    """The pair's inventory push so far: its store cycles plus the SKUs it took as the
    ERP's echo of linked orders, and whether it is idle with nothing pending."""
    handle = stack.client.get_workflow_handle(f"inventory:{pair}")
    try:
        status = await handle.query("status", result_type=InventoryStatus)
    except RPCError:
        return 0, True  # no push run yet
    idle = status.state == "idle" and status.pending == 0
    return status.cycles + status.totals.echoes, idle


async def settled_requests(
    stack: Stack, system: str, pair: str, handled_before: int
) -> list[dict[str, Any]]:
    """The store's request log once the side runs are done calling it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_LIMIT_S
    log = await requests_of(stack, system)
    while loop.time() < deadline:
        await asyncio.sleep(QUIET_S)
        again = await requests_of(stack, system)
        handled, idle = await pushes_handled(stack, pair)
        if len(again) == len(log) and handled > handled_before and idle:
            return again
        log = again
    raise AssertionError(f"{system} kept being called: {len(log)} calls")


def kentico_source(call: dict[str, Any]) -> str:
    path, query, method = call["path"], call["query"], call["method"]
    if any(kind in path for kind in ("cms.country", "cms.state", "ecommerce.orderstatus")):
        return "reference"
    if "OrderLastModified" in query or "where=SKUNumber" in query or STOCK_WRITE.search(path):
        return "inventory push"
    if "CustomerEmail" in query:
        return "customer sync"
    if "ecommerce.sku" in path:
        return "order read (SKU numbers)"
    if method == "PUT":
        return "order status/tracking"
    return "order read"


def xcart_source(call: dict[str, Any]) -> str:
    query, method = call["query"], call["method"]
    path = unquote(query.split("_path=")[1].split("&")[0])
    if path == "order" or path.split("/")[0] == "product":  # order listings, stock
        return "inventory push"
    if path == "profile":
        return "customer sync"
    if method != "GET":
        return "order status/tracking"
    return "order read"


def sources(store: str, log: list[dict[str, Any]]) -> Counter[str]:
    """Each call's source. The status and tracking writes read nothing first, so a GET of
    the order is the order read's: one put back before a write counts there."""
    source = kentico_source if store == "kentico" else xcart_source
    return Counter(source(call) for call in log)


# What each source may cost per order. Kentico's order read is five list/get calls (order,
# items, order addresses, customer, SKU numbers; the customer has the order's addresses, so
# its address book is not read; the SKU numbers are kept a while, so a returning order's
# read is four); its status and tracking writes are a PUT
# each, merged into the `OrderCustomData` the run read (and then wrote). X-Cart reads an
# order in one call; its status write is a PUT merged into the `adminNotes` the run read,
# its tracking write a PUT and a POST.
ORDER_RUN: dict[str, dict[str, dict[str, int]]] = {
    "kentico": {
        "new": {"order read": 4, "order read (SKU numbers)": 1, "order status/tracking": 2},
        "returning": {"order read": 4, "order status/tracking": 2},
    },
    "xcart": {
        "new": {"order read": 1, "order status/tracking": 3},
        "returning": {"order read": 1, "order status/tracking": 3},
    },
}
REFERENCE_ONCE = {"kentico": 3, "xcart": 0}
# A push cycle lists the store's orders, reads the SKUs' stock (Kentico: their rows;
# X-Cart: the product listing when its id cache misses or the catalog fits one page of
# it, else `GET product/{id}` for a one-SKU batch), writes the quantities that changed
# (Kentico a PUT per SKU, X-Cart one PUT per batch) and, when it wrote one, lists the
# orders again (an order placed meanwhile). The new customer's round writes (the first
# push finds the seed stock off). In the returning one's, the ERP's stock change is
# exactly the order linked since that push: the echo of an order the store counted
# itself, so the push reads the ERP only and calls the store not at all.
INVENTORY_PUSH_AT_MOST = {
    "kentico": {"new": 3, "returning": 0},  # + a PUT per SKU written
    "xcart": {"new": 4, "returning": 0},
}
PUT_PER_SKU = {"kentico": 1, "xcart": 0}
LINES = {
    "one line": [{"sku": "WIDGET-1", "quantity": 2}],
    "two lines": [{"sku": "WIDGET-1", "quantity": 2}, {"sku": "WIDGET-2", "quantity": 1}],
}
# The ERP's announcement of the customer the order run created starts no customer sync:
# Brightpearl's `contact.created` is not subscribed (`contact.modified` is), and
# Acumatica's push of the creation (an `Inserted` row alone) is dropped at dispatch: the
# create noted the e-mail before it was sent (`customer_writes.remember_creating`) and
# the customer id when it answered (`remember_created`).
CUSTOMER_SYNC_AT_MOST = {"kentico": 0, "xcart": 0}


def xcart_order_listings_within_lookback(log: list[dict[str, Any]]) -> bool:
    """X-Cart's push lists the orders placed within its lookback (`_cnd[date][0]`), not
    every order the store ever took (docs/systems/xcart.md §4)."""
    listings = [call["query"] for call in log if order_listing("xcart", call)]
    return bool(listings) and all("_cnd%5Bdate%5D%5B0%5D=" in query for query in listings)


@pytest.mark.parametrize("lines", list(LINES))
@pytest.mark.parametrize("pair", list(PAIRS))
async def test_store_calls_per_order_new_then_returning_customer(
    stack: Stack, pair: str, lines: str
) -> None:
    store, erp = PAIRS[pair]
    customer = {"email": f"calls-{pair}@example.com", "first_name": "Jane", "last_name": "Doe"}
    for round_ in ("new", "returning"):
        await stack.sandbox.delete(f"/{store}/_sandbox/requests")
        handled_before, _ = await pushes_handled(stack, pair)
        order_id = await stack.place_order(store, customer=customer, lines=LINES[lines])
        status = (await stack.wait_state(pair, order_id, "awaiting_shipment"))["status"]
        await stack.ship(
            erp,
            status["erp_order_id"] if erp == "brightpearl" else status["erp_order_number"],
            "1Z999AA10123456784",
        )
        await stack.wait_state(pair, order_id, "shipped", run_status="COMPLETED")
        log = await settled_requests(stack, store, pair, handled_before)
        counted = sources(store, log)

        order_run = {k: v for k, v in counted.items() if k.startswith("order ")}
        assert order_run == ORDER_RUN[store][round_], (round_, counted)
        assert counted["reference"] == (REFERENCE_ONCE[store] if round_ == "new" else 0)
        push_at_most = INVENTORY_PUSH_AT_MOST[store][round_]
        if round_ == "new":
            push_at_most += PUT_PER_SKU[store] * len(LINES[lines])
        assert counted["inventory push"] <= push_at_most, (round_, counted)
        if store == "xcart" and round_ == "new":
            assert xcart_order_listings_within_lookback(log), log
        assert counted["customer sync"] <= CUSTOMER_SYNC_AT_MOST[store], (round_, counted)
        if round_ == "returning":  # no customer was created: nothing announced it
            assert counted["customer sync"] == 0, counted
