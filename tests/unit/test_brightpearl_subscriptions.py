"""The Brightpearl webhooks a deployment subscribes to are exactly the events routing acts
on: each subscribed event starts or signals a run, and what is left out would be dropped."""

from __future__ import annotations

import pytest

from commerce_sync.config.pairs import load_pairs
from commerce_sync.intake.bodies import BrightpearlEvent
from commerce_sync.intake.routing import BRIGHTPEARL_SUBSCRIPTIONS, brightpearl_routes
from sandboxes.brightpearl.sandbox import subscribed

PAIRS = load_pairs()
ROUTED = [
    "product.created",
    "product.modified",
    "product.modified.on-hand-modified",
    "contact.modified",
    "goods-out-note.modified.shipped",
]
DROPPED = [
    "sales-order.created",
    "order.modified.order-status",
    "contact.created",
    "goods-out-note.created",
    "goods-out-note.modified",
    "product.destroyed",
]


def event(full_event: str) -> BrightpearlEvent:
    resource, lifecycle = full_event.split(".")[:2]
    return BrightpearlEvent(
        accountCode="sandbox",
        resourceType=resource,
        id="1001",
        lifecycleEvent=lifecycle,
        fullEvent=full_event,
        raisedOn="2026-12-07T10:00:00.000Z",
    )


def delivered(full_event: str) -> bool:
    return any(subscribed(name, full_event) for name in BRIGHTPEARL_SUBSCRIPTIONS)


@pytest.mark.parametrize("full_event", ROUTED)
def test_a_subscribed_event_is_routed(full_event: str) -> None:
    assert delivered(full_event)
    assert brightpearl_routes(event(full_event), "k", PAIRS) != []


@pytest.mark.parametrize("full_event", DROPPED)
def test_an_event_routing_drops_is_not_subscribed(full_event: str) -> None:
    assert brightpearl_routes(event(full_event), "k", PAIRS) == []
    assert not delivered(full_event)
