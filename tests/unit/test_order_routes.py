"""Store order events -> the order run's start: the start carries the pair's rules, so the
run takes no step to read them (pure routing, as the receiver and the relay compute it)."""

from __future__ import annotations

import json

import pytest

from commerce_sync.config.pairs import load_pairs, rules_of
from commerce_sync.contracts.orders import OrderSyncInput
from commerce_sync.domain.pair_rules import PairRules
from commerce_sync.intake.bodies import StoreEvent
from commerce_sync.intake.routing import store_routes

PAIRS = load_pairs()
STORES = {"kentico-brightpearl": "kentico", "xcart-acumatica": "xcart"}


@pytest.mark.parametrize("event_type", ["order.created", "order.updated", "order.cancelled"])
@pytest.mark.parametrize("pair_id", list(STORES))
def test_an_order_event_starts_its_run_with_the_pairs_rules(pair_id: str, event_type: str) -> None:
    event = StoreEvent.model_validate(
        {
            "type": event_type,
            "timestamp": "2026-12-06T10:00:00Z",
            "data": {"id": "42", "store": STORES[pair_id]},
        }
    )
    [route] = store_routes(event, PAIRS)
    arg = route.arg
    assert isinstance(arg, OrderSyncInput)
    assert arg.rules == rules_of(PAIRS[pair_id])
    assert arg.rules.id == pair_id and arg.rules.store == STORES[pair_id]
    # What is recorded with the start is the rules alone: no system's lookups.
    recorded = json.loads(arg.model_dump_json())["rules"]
    assert set(recorded) == set(PairRules.model_fields)
    assert not {"kentico", "xcart", "brightpearl", "acumatica"} & set(recorded)
