"""An inventory dead letter replayed through the API: a push request for the letter's SKU
on the pair's push run, recorded in the letter's history; a SKU the store still refuses
is refused again and leaves a new open letter, the replayed one kept."""

from __future__ import annotations

import pytest
from inventory_stack import PAIRS, InventoryStack
from test_inventory_push import remove_from_store


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_inventory_letter_replayed_pushes_its_sku_again(
    inventory: InventoryStack, pair: str
) -> None:
    store, _ = PAIRS[pair]
    api = inventory.stack.api
    await remove_from_store(inventory, store, "WIDGET-5")
    pushed = await inventory.http.post(
        f"{api}/inventory/{pair}/push",
        json={"skus": ["WIDGET-4", "WIDGET-5"]},
        headers=inventory.headers(),
    )
    assert pushed.status_code == 202, pushed.text
    first = await inventory.wait_request(pair, pushed.json()["request_id"])
    assert (first.counts.written, first.counts.rejected) == (1, 1)
    [letter] = inventory.dead_letters(pair)

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
    assert (letters[0].id, letters[0].status) == (letter.id, "replayed")
    assert [(each.status, each.payload["sku"]) for each in letters[1:]] == [("open", "WIDGET-5")]
