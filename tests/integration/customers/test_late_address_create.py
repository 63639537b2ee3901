"""A store address create whose answer is lost (the store does the write after the
client has given up, a delay fault past the client timeout): the merge that writes the
address to its survivor still leaves the customer one address.

The shopper registers `base+tag@x` without an address, then `base@x` with one; the
second registration's event merges into the first, and the merge writes the address to
the first (Kentico: an `ecommerce.address` POST; X-Cart: a profile PUT carrying an
address without an id). That write is held past the client's timeout, so the write
activity is retried while the held request has not landed yet.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from temporalio.client import Client

from tests.integration.customers.customer_views import failures, merge_run, sandbox_requests
from tests.integration.orders.order_stack import (
    Stack,
    end_leftover_runs,
    pairs_file_with,
    running_stack,
    stack_settings,
)
from tests.integration.orders.sandbox_views import inject

# A retry holds a create back this long after an uncertain one was sent: past the
# held request's landing, well short of the merge's patience.
CHECK_AFTER_S = 12
WRITE = {
    "kentico": "POST /rest/ecommerce.address*",
    "xcart": "PUT /admin.php*_path=profile*",
}
ADDRESS = {
    "line1": "9 Elm St",
    "city": "Austin",
    "region": "TX",
    "postal_code": "78702",
    "country": "US",
}


@pytest.fixture
async def stack(
    temporal_client: Client,
    sandbox_url: str,
    sandboxes: httpx.AsyncClient,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    database_url = f"sqlite:///{tmp_path / 'commerce-sync.db'}"
    target = temporal_client.service_client.config.target_host
    settings = stack_settings(sandbox_url, database_url, tmp_path, target).model_copy(
        update={"pairs_file": pairs_file_with(tmp_path, {"duplicate_check_after": CHECK_AFTER_S})}
    )
    try:
        async with running_stack(settings, temporal_client, sandboxes) as running:
            yield running
    finally:
        await end_leftover_runs(temporal_client, settings.task_queue)


async def _addresses(stack: Stack, store: str, customer_id: str) -> list[dict[str, Any]]:
    state = await stack.state_of(store)
    if store == "kentico":
        return [
            row
            for row in state["ecommerce.address"]
            if str(row["AddressCustomerID"]) == customer_id
        ]
    [profile] = [p for p in state["profiles"] if str(p["profile_id"]) == customer_id]
    return list(profile["addresses"])


@pytest.mark.parametrize("store", ["kentico", "xcart"])
async def test_an_address_create_whose_answer_is_lost_leaves_one_address(
    stack: Stack, store: str
) -> None:
    held = stack.settings.http_timeout_s + 3.0  # past the timeout and the retry's look-up
    assert held < CHECK_AFTER_S
    base = f"late-{uuid.uuid4().hex[:8]}"
    since = datetime.now(UTC)
    first = await stack.sandbox.post(
        f"/{store}/_sandbox/customers",
        json={"email": f"{base}+news@example.com", "first_name": "Kim", "last_name": "Ode"},
    )
    assert first.status_code in (200, 201), first.text
    survivor = str(first.json()["id"])
    await inject(stack, store, {"match": WRITE[store], "delay_s": held, "count": 1})
    second = await stack.sandbox.post(
        f"/{store}/_sandbox/customers",
        json={
            "email": f"{base}@example.com",
            "first_name": "Kim",
            "last_name": "Ode",
            "address": ADDRESS,
        },
    )
    assert second.status_code in (200, 201), second.text
    run = await merge_run(stack, store, survivor, since)
    assert run["run_status"] == "COMPLETED", run

    # The held request was sent before the run ended: it has landed `held` later.
    await asyncio.sleep(held + 1.0)
    writes = [r for r in await sandbox_requests(stack, store) if _writes_to(r, store, survivor)]
    if store == "kentico":  # the retry found the held POST's row: no second POST
        assert len(writes) == 1, writes
    addresses = await _addresses(stack, store, survivor)
    assert len(addresses) == 1, addresses
    assert addresses[0]["AddressZip" if store == "kentico" else "zipcode"] == "78702"
    assert failures(stack) == ([], [])


def _writes_to(request: dict[str, Any], store: str, customer_id: str) -> bool:
    """An address write of the merge to the survivor (the held one or a retry's)."""
    if store == "kentico":
        return request["method"] == "POST" and "ecommerce.address" in request["path"]
    query = unquote(request["query"])
    return request["method"] == "PUT" and f"_path=profile/{customer_id}&" in f"{query}&"
