"""Two-way customer sync outside merges, on both pairs: a store change reaches the ERP
and an ERP change reaches the store, each only with the fields its side owns, in one
write, and the event commerce-sync's own write raises is recognised as an echo."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from commerce_sync.domain.models import Customer
from commerce_sync.store.customer_writes import echo_verdict
from commerce_sync.store.db import make_engine
from tests.integration.customers.customer_views import (
    PAIRS,
    clear_requests,
    closed_run,
    erp_view,
    failures,
    last_run,
    open_letters,
    sandbox_requests,
    store_client,
    synced_customer,
)
from tests.integration.orders.order_stack import Stack, eventually


@pytest.mark.parametrize("pair", PAIRS)
async def test_store_change_reaches_the_erp_once_and_its_echo_is_dropped(
    stack: Stack, pair: str
) -> None:
    """The store-owned phone flows, the ERP-owned company does not; the ERP event our write
    raises is recognised as our own (the ERP-side run ends with `echo`) and writes nothing.

    The sync's read-back of the ERP record is slowed down (its reads of that record are
    the first two: the counterpart, then the read-back), so the event usually arrives
    before the write's answer does: the fingerprint stored before the write catches it."""
    _email, store_id, erp_id = await synced_customer(stack, pair)
    view = erp_view(stack, pair)
    store = view.store
    try:
        await clear_requests(stack, view.system, store)
        slow_reads = {"match": view.read_path(erp_id), "delay_s": 1.0, "count": 2}
        (
            await stack.sandbox.post(f"/{view.system}/_sandbox/faults", json=slow_reads)
        ).raise_for_status()
        since = datetime.now(UTC)
        edit = {"phone": "555 0199", "company": "Store Co"}
        response = await stack.sandbox.put(f"/{store}/_sandbox/customers/{store_id}", json=edit)
        assert response.status_code == 200, response.text
        store_run = await last_run(
            stack, f"customer:{pair}:{store_id}", since, lambda r: r["writes"] == 1
        )
        assert [s["name"] for s in store_run["steps"]][-1] == f"write {view.system}"
        customer = await view.get(erp_id)
        assert customer.phone == "555 0199"
        assert customer.company != "Store Co"
        echo = await last_run(
            stack, f"customer:{pair}:erp:{erp_id}", since, lambda r: r["changes_seen"] >= 1
        )
        assert echo["echoes_dropped"] == 1 and echo["writes"] == 0, echo
        assert echo["steps"][-1]["outcome"] == "echo", echo
        assert len(view.writes(await sandbox_requests(stack, view.system))) == 1
        store_writes = [
            r
            for r in await sandbox_requests(stack, store)
            if r["method"] in ("PUT", "POST", "PATCH")
        ]
        assert store_writes == [], store_writes
        assert failures(stack) == ([], [])
    finally:
        await view.aclose()


@pytest.mark.parametrize("pair", PAIRS)
async def test_erp_change_reaches_the_store_once(stack: Stack, pair: str) -> None:
    """Someone edits the ERP customer (Brightpearl `contact.modified`, Acumatica
    `CS-Customers` push): the ERP-owned company reaches the store, the store-owned phone
    does not; one store write, and nothing is written back to the ERP. A deactivation in
    the ERP afterwards syncs nothing."""
    _email, store_id, erp_id = await synced_customer(stack, pair)
    view = erp_view(stack, pair)
    store = view.store
    client = store_client(stack, store)
    try:
        before = await client.get_customer(store_id)
        current = await view.get(erp_id)
        await clear_requests(stack, view.system, store)
        since = datetime.now(UTC)
        await view.update(
            erp_id, current.model_copy(update={"company": "ERP Co", "phone": "555 0142"})
        )

        async def synced() -> Customer | None:
            found = await client.get_customer(store_id)
            return found if found.company == "ERP Co" else None

        after = await eventually(synced, 60, f"the company in {store}")
        assert after.phone == before.phone
        run = await last_run(
            stack, f"customer:{pair}:erp:{erp_id}", since, lambda r: r["writes"] == 1
        )
        assert run["steps"][-1]["name"] == f"write {store}", run
        store_writes = [
            r
            for r in await sandbox_requests(stack, store)
            if r["method"] in ("PUT", "POST", "PATCH")
        ]
        assert len(store_writes) == 1, store_writes
        # The test's own edit is the only ERP write: nothing bounced back.
        assert len(view.writes(await sandbox_requests(stack, view.system))) == 1

        # The ERP customer deactivated (as an order sync's compensation does): its event
        # starts a run that reads the record, finds it inactive and writes nothing.
        since = datetime.now(UTC)
        await clear_requests(stack, store)
        await view.update(erp_id, (await view.get(erp_id)).model_copy(update={"active": False}))
        run = await last_run(stack, f"customer:{pair}:erp:{erp_id}", since, bool)
        assert (run["writes"], run["steps"][-1]["outcome"]) == (0, "skipped"), run
        assert [r for r in await sandbox_requests(stack, store) if r["method"] != "GET"] == []
        assert failures(stack) == ([], [])
    finally:
        await client.aclose()
        await view.aclose()


@pytest.mark.parametrize("pair", PAIRS)
async def test_a_refused_write_fails_the_sync_once_and_a_later_sync_resolves_it(
    stack: Stack, pair: str
) -> None:
    """The ERP refuses the store change for good (400): the run fails with one dead letter
    (`customer-sync`) and one alert, and no event for the record waits on the write that
    never happened. The shopper's next change syncs and resolves the letter."""
    _email, store_id, erp_id = await synced_customer(stack, pair)
    view = erp_view(stack, pair)
    workflow_id = f"customer:{pair}:{store_id}"
    try:
        refuse = {"match": view.write_path(erp_id), "status": 400, "count": 1}
        (
            await stack.sandbox.post(f"/{view.system}/_sandbox/faults", json=refuse)
        ).raise_for_status()
        since = datetime.now(UTC)
        edit = {"phone": "555 0111"}
        response = await stack.sandbox.put(
            f"/{view.store}/_sandbox/customers/{store_id}", json=edit
        )
        assert response.status_code == 200, response.text
        failed = await closed_run(stack, workflow_id, since)
        assert failed.status is not None and failed.status.name == "FAILED"
        letters, alerts = failures(stack, "customer-sync")
        assert letters == [workflow_id]
        assert [a for a in alerts if a.startswith("customer_sync_failed")] == [
            f"customer_sync_failed {workflow_id}"
        ]
        assert (await view.get(erp_id)).phone != "555 0111"
        engine = make_engine(stack.database_url)
        assert echo_verdict(engine, view.system, erp_id, "0" * 64) == "new"
        engine.dispose()

        since = datetime.now(UTC)
        response = await stack.sandbox.put(
            f"/{view.store}/_sandbox/customers/{store_id}", json=edit
        )
        assert response.status_code == 200, response.text
        await last_run(stack, workflow_id, since, lambda r: r["writes"] == 1)
        assert (await view.get(erp_id)).phone == "555 0111"
        assert open_letters(stack) == []
    finally:
        await view.aclose()
