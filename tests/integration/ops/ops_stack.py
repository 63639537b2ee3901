"""Helpers of the operator-tool tests (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.integration.orders.order_stack import PAIRS, Stack
from tests.integration.orders.sandbox_views import add_store_only_product

UNREACHABLE_AFTER_S = 0.5


@dataclass
class Receiver:
    """A local HTTP endpoint apprise's `json://` plugin posts to; it records every body and
    answers 500 to the first `fail_next` requests."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    fail_next: int = 0

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [b for b in self.bodies if f"commerce-sync {kind}:" in str(b.get("title", ""))]


@dataclass
class OpsStack:
    stack: Stack
    receiver: Receiver
    worker_metrics: str
    temporal_metrics: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def dead_lettered_order(ops: OpsStack, pair: str) -> str:
    """An order with a SKU the ERP does not know: it fails for good (order_failed)."""
    store, _ = PAIRS[pair]
    sku = f"STORE-ONLY-{uuid.uuid4().hex[:6].upper()}"
    await add_store_only_product(ops.stack, store, sku, "12.50")
    order_id = await ops.stack.place_order(store, lines=[{"sku": sku, "quantity": 1}])
    await ops.stack.wait_state(pair, order_id, "dead_lettered", run_status="FAILED")
    return order_id
