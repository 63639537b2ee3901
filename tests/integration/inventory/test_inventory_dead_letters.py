"""Inventory dead letters, keyed by SKU (`inventory:{pair}:{sku}`): one replayed through
the API is a push request for its SKU on the pair's push run, recorded in the letter's
history; a SKU the store still refuses is refused again and leaves a new open letter, the
replayed one kept. Once the store takes the SKU again, the next push that writes it
resolves every unresolved letter of that SKU (history kept) and no other letter."""

from __future__ import annotations

import pytest

from tests.integration.inventory.bulk import create_in_store
from tests.integration.inventory.inventory_stack import PAIRS, InventoryStack
from tests.integration.inventory.test_inventory_push import remove_from_store


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_inventory_letter_replayed_then_resolved_once_its_sku_lands(
    inventory: InventoryStack, pair: str
) -> None:
    store, _ = PAIRS[pair]
    api = inventory.stack.api
    await remove_from_store(inventory, store, "WIDGET-5")
    await remove_from_store(inventory, store, "WIDGET-6")

    async def push(skus: list[str]) -> tuple[int, int]:
        pushed = await inventory.http.post(
            f"{api}/inventory/{pair}/push", json={"skus": skus}, headers=inventory.headers()
        )
        assert pushed.status_code == 202, pushed.text
        done = await inventory.wait_request(pair, pushed.json()["request_id"])
        return done.counts.written + done.counts.unchanged, done.counts.rejected

    assert await push(["WIDGET-4", "WIDGET-5", "WIDGET-6"]) == (1, 2)
    letter, other = inventory.dead_letters(pair)
    assert (letter.payload["sku"], other.payload["sku"]) == ("WIDGET-5", "WIDGET-6")
    assert letter.business_key == f"inventory:{pair}:WIDGET-5"
    assert other.business_key == f"inventory:{pair}:WIDGET-6"

    wrong = await inventory.http.post(
        f"{api}/dead-letters/{letter.id}/replay",
        json={"payload": {**letter.payload, "sku": "WIDGET-4"}},
        headers=inventory.headers(),
    )
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"][-1] == "sku"

    replayed = await inventory.http.post(
        f"{api}/dead-letters/{letter.id}/replay", headers=inventory.headers()
    )
    assert replayed.status_code == 202, replayed.text
    entry = replayed.json()["history"][-1]
    assert entry["event"] == "replayed" and entry["workflow_id"] == f"inventory:{pair}"
    again = await inventory.wait_request(pair, entry["request_id"])
    assert (again.total, again.counts.rejected) == (1, 1)  # only its SKU, still refused

    letters = inventory.dead_letters(pair)
    assert [(each.id, each.status) for each in letters[:2]] == [
        (letter.id, "replayed"),
        (other.id, "open"),
    ]
    [refused_again] = letters[2:]
    assert (refused_again.status, refused_again.business_key) == ("open", letter.business_key)

    # The fault cleared: the store sells WIDGET-5 again, and the next push that writes it
    # resolves both of its letters; WIDGET-6's stays as it was.
    await create_in_store(inventory.stack.settings, store, ["WIDGET-5"], amount=0)
    assert await push(["WIDGET-5"]) == (1, 0)
    assert (await inventory.store_stocks(pair))["WIDGET-5"] == inventory.sellable(pair, 100)
    for resolved_id, events in (
        (letter.id, ["created", "replayed", "resolved"]),
        (refused_again.id, ["created", "resolved"]),
    ):
        shown = await inventory.http.get(
            f"{api}/dead-letters/{resolved_id}", headers=inventory.headers()
        )
        assert shown.status_code == 200, shown.text
        body = shown.json()
        assert (body["status"], body["resolved_at"] is not None) == ("resolved", True)
        assert [each["event"] for each in body["history"]] == events
        assert "wrote the SKU" in body["history"][-1]["note"]
    untouched = next(each for each in inventory.dead_letters(pair) if each.id == other.id)
    assert (untouched.status, untouched.resolved_at, untouched.history) == (
        "open",
        None,
        other.history,
    )
    # Resolved letters are history: a replay is refused, nothing is deleted.
    refused = await inventory.http.post(
        f"{api}/dead-letters/{letter.id}/replay", headers=inventory.headers()
    )
    assert refused.status_code == 409, refused.text
    assert len(inventory.dead_letters(pair)) == 3
