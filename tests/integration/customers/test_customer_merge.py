"""Customer merge against the real dev server and sandboxes, on both pairs: started by the
API (ERP and store customers, their open orders and links) and by duplicate-email store
and ERP events, and a permanent fault at each write step, in every system, leaving every
record as it was."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from commerce_sync.domain.models import Customer
from tests.integration.customers.customer_views import (
    PAIRS,
    clear_requests,
    customer_links,
    erp_duplicates,
    erp_view,
    failures,
    last_run,
    merge_fault,
    merge_records,
    merge_run,
    order_customer_in_store,
    sandbox_requests,
    start_merge,
    store_client,
    store_duplicates,
)
from tests.integration.orders.order_stack import Stack


async def test_merge_api_refuses_bad_input(stack: Stack) -> None:
    url = f"{stack.api}/customers/brightpearl/merge"
    cases = [
        ({"survivor": "1", "duplicates": ["1", "2"]}, url, "duplicates"),
        ({"survivor": "1", "duplicates": []}, url, "duplicates"),
        ({"survivor": "", "duplicates": ["2"]}, url, "survivor"),
        ({"survivor": "1", "duplicates": ["2"]}, f"{stack.api}/customers/shopify/merge", "system"),
    ]
    for body, target, field in cases:
        response = await stack.http.post(target, json=body, headers=stack.headers())
        assert response.status_code == 422, response.text
        assert field in str(response.json()["detail"]), response.text
    refused = await stack.http.post(url, json=cases[0][0], headers=stack.headers("nope"))
    assert refused.status_code in (401, 403)


@pytest.mark.parametrize("pair", PAIRS)
async def test_merge_via_api_moves_orders_links_and_deactivates(stack: Stack, pair: str) -> None:
    view, email, survivor, duplicate, order_id = await erp_duplicates(stack, pair)
    old_email = (await view.get(duplicate)).email
    try:
        since = await start_merge(stack, view.system, survivor, [duplicate])
        run = await merge_run(stack, view.system, survivor, since)
        assert run["run_status"] == "COMPLETED", run
        merged = await view.get(survivor)
        # No store record: each field from the newest non-empty ERP record.
        assert (merged.first_name, merged.last_name, merged.phone) == ("Annie", "Lee", "555 0101")
        assert merged.billing_address is not None
        assert merged.billing_address.postal_code == "78701"
        assert merged.email == email and merged.active
        assert not (await view.get(duplicate)).active
        assert await view.order_customer(order_id) == survivor
        assert customer_links(stack, pair)[old_email] == survivor
        assert run["status"]["orders_repointed"] == {order_id: duplicate}
        assert [s["name"] for s in run["status"]["steps"]] == [
            "snapshot",
            "update survivor",
            "re-point open orders",
            "deactivate duplicates",
            "update links",
            "merged",
        ]
    finally:
        await view.aclose()


MERGE_CASES = [
    *[(system, step) for system in ("kentico", "xcart") for step in ("none", "update")],
    *[
        (system, step)
        for system in ("brightpearl", "acumatica", "kentico", "xcart")
        for step in ("re-point", "deactivate")
    ],
    ("brightpearl", "update"),
    ("acumatica", "update"),
]


@pytest.mark.parametrize(("system", "step"), MERGE_CASES)
async def test_a_merge_re_points_open_orders_or_a_permanent_failure_restores_every_record(
    stack: Stack, system: str, step: str
) -> None:
    """A merge of a duplicate with an open order into a survivor without an address, in
    each system, started by the API: with no fault (`none`), the order is the survivor's;
    with a permanent (400) fault at a write step (update the survivor, re-point the
    order, deactivate the duplicate), every record the merge touched is, in the
    sandbox's own state, as before the merge; links as before; one dead letter, one alert."""
    store = system in ("kentico", "xcart")
    pair = "kentico-brightpearl" if system in ("kentico", "brightpearl") else "xcart-acumatica"
    if store:
        survivor, duplicate, order_id = await store_duplicates(stack, system)
    else:
        view, _email, survivor, duplicate, order_id = await erp_duplicates(stack, pair)
        await view.aclose()
    before = await merge_records(stack, system, [survivor, duplicate], [order_id])
    links_before = customer_links(stack, pair)
    letters_before, _alerts = failures(stack)
    if step != "none":
        rule = merge_fault(system, step, survivor, duplicate, order_id)
        (await stack.sandbox.post(f"/{system}/_sandbox/faults", json=rule)).raise_for_status()
    since = await start_merge(stack, system, survivor, [duplicate])
    run = await merge_run(stack, system, survivor, since)
    if store:
        assert "billing_address" in run["status"]["fields_changed"], run
    if step == "none":
        assert run["run_status"] == "COMPLETED", run
        assert run["status"]["orders_repointed"] == {order_id: duplicate}
        assert await order_customer_in_store(stack, system, order_id) == survivor
        after = await merge_records(stack, system, [survivor, duplicate], [order_id])
        assert after["orders"] != before["orders"]
        links = customer_links(stack, pair)  # the duplicate's link now keys the survivor
        assert links != links_before and sorted(links.values()) == sorted(links_before.values())
        assert failures(stack)[0] == letters_before
        return
    assert run["run_status"] == "FAILED", run
    assert run["status"]["state"] == "failed"
    done = {c["name"]: c["outcome"] for c in run["status"]["compensations"]}
    assert set(done.values()) == {"ok"}, run
    assert "restore the survivor" in done
    # Registered before the re-point: a write refused for good may still have been made.
    assert (f"point order {order_id} back to {duplicate}" in done) == (step != "update")
    assert (f"reactivate {duplicate}" in done) == (step == "deactivate")
    after = await merge_records(stack, system, [survivor, duplicate], [order_id])
    if system == "brightpearl" and step != "update":
        # Brightpearl documents no way to unlink a postal address from a contact (Contact
        # PATCH lists no `/postAddressIds`, Contact Postal Address PUT only links:
        # docs/systems/brightpearl.md §8), so the survivor, which had none, keeps the
        # address the merge linked; everything else is as it was.
        gained = after["contacts"][survivor]
        assert set(gained["postAddressIds"].values()) == set(map(int, gained["postalAddresses"]))
        assert [a["addressLine1"] for a in gained["postalAddresses"].values()] == ["1 Main St"]
        before["contacts"][survivor] |= {
            key: gained[key] for key in ("postAddressIds", "postalAddresses")
        }
    assert after == before, "\n".join(_differences(before, after))
    assert customer_links(stack, pair) == links_before
    letters, alerts = failures(stack)
    assert letters == [*letters_before, f"customer-merge:{system}:{survivor}"]
    assert len([a for a in alerts if a.startswith("customer_merge_failed")]) == 1, alerts


def _differences(before: Any, after: Any, where: str = "") -> list[str]:
    """Where two states differ, as paths (for the assertion message)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            line
            for key in sorted({*before, *after}, key=str)
            for line in _differences(before.get(key), after.get(key), f"{where}.{key}")
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            line
            for n, (b, a) in enumerate(zip(before, after, strict=True))
            for line in _differences(b, a, f"{where}[{n}]")
        ]
    return [] if before == after else [f"{where}: {before!r} -> {after!r}"]


@pytest.mark.parametrize("pair", PAIRS)
async def test_a_duplicate_email_store_event_merges_into_the_oldest(
    stack: Stack, pair: str
) -> None:
    """The shopper registers `base+tag@x` first, then ` BASE@x ` with an address: with the
    pair's plus-addressing rule on, the second `customer.created` finds the first (a search
    by the base address), merges into it, and the store-owned address moves to it."""
    store = "kentico" if pair == "kentico-brightpearl" else "xcart"
    base = f"dup-{uuid.uuid4().hex[:8]}"
    since = datetime.now(UTC)
    first = await stack.sandbox.post(
        f"/{store}/_sandbox/customers",
        json={"email": f"{base}+news@example.com", "first_name": "Kim", "last_name": "Ode"},
    )
    assert first.status_code in (200, 201), first.text
    survivor = first.json()["id"]
    address = {
        "line1": "9 Elm St",
        "city": "Austin",
        "region": "TX",
        "postal_code": "78702",
        "country": "US",
    }
    second = await stack.sandbox.post(
        f"/{store}/_sandbox/customers",
        json={
            "email": f"{base.upper()}@Example.com",
            "first_name": "Kim",
            "last_name": "Ode",
            "phone": "555 0177",
            "address": address,
        },
    )
    assert second.status_code in (200, 201), second.text
    duplicate = second.json()["id"]
    run = await merge_run(stack, store, survivor, since)
    assert run["run_status"] == "COMPLETED", run
    assert run["status"]["duplicates"] == [duplicate]
    client = store_client(stack, store)
    try:
        merged = await client.get_customer(survivor)
        assert merged.active and merged.email == f"{base}+news@example.com"
        assert merged.billing_address is not None
        assert merged.billing_address.postal_code == "78702"
        assert not (await client.get_customer(duplicate)).active
    finally:
        await client.aclose()


@pytest.mark.parametrize("pair", PAIRS)
async def test_a_duplicate_email_erp_event_merges_into_the_oldest(stack: Stack, pair: str) -> None:
    """Two ERP customers of one shopper (`a@x`, then `a+shop@x`). The ERP's event for the
    newer one (Acumatica pushes the customer it created; Brightpearl raises
    `contact.modified` for an edit) finds the older by the base address and merges into it."""
    view = erp_view(stack, pair)
    try:
        email = f"erpdup-{uuid.uuid4().hex[:8]}@example.com"
        since = datetime.now(UTC)
        survivor = await view.create(Customer(email=email, first_name="Bo", last_name="Tan"))
        duplicate = await view.create(
            Customer(email=email.replace("@", "+shop@"), first_name="Bo", last_name="Tan")
        )
        if view.system == "brightpearl":  # a contact's creation raises no change event
            current = await view.get(duplicate)
            await view.update(duplicate, current.model_copy(update={"phone": "555 0160"}))
        run = await merge_run(stack, view.system, survivor, since)
        assert run["run_status"] == "COMPLETED", run
        assert run["status"]["duplicates"] == [duplicate]
        assert (await view.get(survivor)).active
        assert not (await view.get(duplicate)).active
        assert failures(stack) == ([], [])
    finally:
        await view.aclose()


@pytest.mark.parametrize("plus_addressing", [False])
async def test_without_plus_addressing_a_plus_address_is_another_shopper(stack: Stack) -> None:
    """The same registrations on a pair whose rules say `a+tag@x` is not `a@x`: the second
    `customer.created` syncs on its own and merges nothing."""
    base = f"solo-{uuid.uuid4().hex[:8]}"
    since = datetime.now(UTC)
    ids = []
    for email in (f"{base}+news@example.com", f"{base}@example.com"):
        answer = await stack.sandbox.post(
            "/kentico/_sandbox/customers",
            json={"email": email, "first_name": "Kim", "last_name": "Ode"},
        )
        assert answer.status_code in (200, 201), answer.text
        ids.append(answer.json()["id"])
    run = await last_run(stack, f"customer:kentico-brightpearl:{ids[1]}", since, bool)
    assert run["merges"] == [], run
    client = store_client(stack, "kentico")
    try:
        assert all([(await client.get_customer(i)).active for i in ids])
    finally:
        await client.aclose()


async def test_a_merge_naming_a_missing_customer_fails_without_a_write(stack: Stack) -> None:
    """The API's 404: the run's first step finds no such customer; it fails saying so,
    having written nothing (no dead letter: there is nothing to replay or undo)."""
    view = erp_view(stack, "xcart-acumatica")
    try:
        survivor = await view.create(
            Customer(email=f"lone-{uuid.uuid4().hex[:8]}@example.com", first_name="Al")
        )
        await clear_requests(stack, view.system)
        since = await start_merge(stack, view.system, survivor, ["C999999"])
        run = await merge_run(stack, view.system, survivor, since)
        assert run["run_status"] == "FAILED", run
        assert run["status"]["state"] == "failed"
        assert "C999999 does not exist" in run["status"]["error"]
        assert view.writes(await sandbox_requests(stack, view.system)) == []
        assert failures(stack, "customer-merge") == ([], [])
    finally:
        await view.aclose()
