"""The per-process reference cache of the ERP connectors (`systems/expiring.py`)."""

import asyncio

import pytest

from commerce_sync.systems.expiring import ExpiringMap


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_served_until_it_expires_then_asked_again() -> None:
    clock = Clock()
    products: ExpiringMap[str, int] = ExpiringMap(60.0, clock=clock)
    products.update({"WIDGET-1": 1001, "WIDGET-2": 1002})
    clock.now += 59.9
    assert products.found(["WIDGET-1", "WIDGET-2", "GADGET"]) == {
        "WIDGET-1": 1001,
        "WIDGET-2": 1002,
    }
    products.put("WIDGET-2", 1002)  # stored again: lives from now
    clock.now += 0.1
    assert products.get("WIDGET-1") is None
    assert products.found(["WIDGET-1", "WIDGET-2"]) == {"WIDGET-2": 1002}
    assert len(products) == 1


def test_forgotten_entries_are_asked_again() -> None:
    products: ExpiringMap[str, int] = ExpiringMap(600.0, clock=Clock())
    products.update({"WIDGET-1": 1001, "WIDGET-2": 1002})
    products.forget(["WIDGET-1", "NEVER-SEEN"])
    assert products.found(["WIDGET-1", "WIDGET-2"]) == {"WIDGET-2": 1002}


class Lookups:
    """A lookup that answers only when the test lets it, recording what it was asked."""

    def __init__(self, catalog: dict[str, int]) -> None:
        self.catalog = catalog
        self.asked: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail_next = False

    async def __call__(self, skus: list[str]) -> dict[str, int]:
        self.asked.append(list(skus))
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("lookup failed")
        return {sku: self.catalog[sku] for sku in skus if sku in self.catalog}


async def test_callers_asking_at_the_same_time_share_one_lookup() -> None:
    products: ExpiringMap[str, int] = ExpiringMap(60.0)
    lookups = Lookups({"WIDGET-1": 1001, "WIDGET-2": 1002})
    first = asyncio.create_task(products.get_or_fetch(["WIDGET-1", "NOPE"], lookups))
    await asyncio.sleep(0)
    second = asyncio.create_task(products.get_or_fetch(["WIDGET-1", "WIDGET-2", "NOPE"], lookups))
    await asyncio.sleep(0)
    lookups.release.set()

    assert await first == {"WIDGET-1": 1001}
    assert await second == {"WIDGET-1": 1001, "WIDGET-2": 1002}
    # The second caller looked up only what nobody was looking up; the unknown SKU was
    # answered by the first caller's lookup, and is not kept.
    assert lookups.asked == [["WIDGET-1", "NOPE"], ["WIDGET-2"]]
    assert products.found(["WIDGET-1", "WIDGET-2", "NOPE"]) == {"WIDGET-1": 1001, "WIDGET-2": 1002}
    assert await products.get_or_fetch(["NOPE"], lookups) == {}
    assert lookups.asked[-1] == ["NOPE"]  # not found is asked again next time


async def test_a_caller_waiting_on_a_lookup_that_failed_looks_up_itself() -> None:
    products: ExpiringMap[str, int] = ExpiringMap(60.0)
    lookups = Lookups({"WIDGET-1": 1001})
    lookups.fail_next = True
    first = asyncio.create_task(products.get_or_fetch(["WIDGET-1"], lookups))
    await asyncio.sleep(0)
    second = asyncio.create_task(products.get_or_fetch(["WIDGET-1"], lookups))
    await asyncio.sleep(0)
    lookups.release.set()

    with pytest.raises(RuntimeError, match="lookup failed"):
        await first
    assert await second == {"WIDGET-1": 1001}
    assert lookups.asked == [["WIDGET-1"], ["WIDGET-1"]]


async def test_a_cancelled_lookup_leaves_the_waiting_caller_its_own() -> None:
    products: ExpiringMap[str, int] = ExpiringMap(60.0)
    lookups = Lookups({"WIDGET-1": 1001})
    first = asyncio.create_task(products.get_or_fetch(["WIDGET-1"], lookups))
    await asyncio.sleep(0)
    second = asyncio.create_task(products.get_or_fetch(["WIDGET-1"], lookups))
    await asyncio.sleep(0)
    first.cancel()  # its activity was cancelled mid-lookup
    with pytest.raises(asyncio.CancelledError):
        await first
    lookups.release.set()

    assert await second == {"WIDGET-1": 1001}
    assert lookups.asked == [["WIDGET-1"], ["WIDGET-1"]]
