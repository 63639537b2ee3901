"""Which workflow an accepted webhook starts or signals. Pure: the receiver and the
relay compute the same routes from the same recorded body.

Store events go to the order workflow `order:{pair}:{store order id}`; ERP events
that name shipments go to an ERP event router, which finds the store orders behind
them and signals their workflows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from commerce_sync.api.webhook_bodies import AcumaticaPush, BrightpearlEvent, StoreEvent
from commerce_sync.config.pairs import PairConfig
from commerce_sync.systems.brightpearl.idsets import IdSetError, parse_id_set
from commerce_sync.workflows.erp_event_messages import ErpEventInput
from commerce_sync.workflows.order_messages import CancelRequest, OrderSyncInput

ACUMATICA_SHIPMENT_QUERIES = ("CS-Shipments",)


class RoutingError(ValueError):
    """The body is valid but cannot be routed (an ID set that does not parse, ...)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class Route:
    workflow: str
    workflow_id: str
    arg: BaseModel
    signal: str | None = None
    signal_arg: BaseModel | None = None
    search: dict[str, str] = field(default_factory=dict)


def order_workflow_id(pair: str, store_order_id: str) -> str:
    return f"order:{pair}:{store_order_id}"


def store_routes(event: StoreEvent, pairs: dict[str, PairConfig]) -> list[Route]:
    routes: list[Route] = []
    for pair in pairs.values():
        if pair.store != event.data.store:
            continue
        order_id = event.data.id
        if not event.type.startswith("order."):
            continue  # returns and customers have no process yet: recorded, not started
        arg = OrderSyncInput(pair=pair.id, store_order_id=order_id)
        search = {"IntegrationPair": pair.id, "StoreOrderId": order_id}
        workflow_id = order_workflow_id(pair.id, order_id)
        if event.type == "order.created":
            routes.append(Route("OrderSync", workflow_id, arg, search=search))
        elif event.type == "order.updated":
            routes.append(Route("OrderSync", workflow_id, arg, "store_order_changed", None, search))
        elif event.type == "order.cancelled":
            routes.append(Route("OrderSync", workflow_id, arg, "cancel", CancelRequest(), search))
    return routes


def _erp_pairs(erp: str, pairs: dict[str, PairConfig]) -> list[str]:
    return [pair.id for pair in pairs.values() if pair.erp == erp]


def brightpearl_key(raw_body: bytes) -> str:
    """Brightpearl sends no event id: the same delivery repeated has the same bytes."""
    return hashlib.sha256(raw_body).hexdigest()[:40]


def brightpearl_routes(
    event: BrightpearlEvent, key: str, pairs: dict[str, PairConfig]
) -> list[Route]:
    full = event.fullEvent or f"{event.resourceType}.{event.lifecycleEvent}"
    if not (event.resourceType == "goods-out-note" and full.endswith("shipped")):
        return []
    try:
        ids = [str(each) for each in parse_id_set(event.id)]
    except IdSetError as exc:
        raise RoutingError("id", str(exc)) from None
    arg = ErpEventInput(
        erp="brightpearl", kind="shipment", pairs=_erp_pairs("brightpearl", pairs), ids=ids
    )
    return [Route("ErpEventRouter", f"erp-event:brightpearl:{key}", arg)]


def acumatica_key(push: AcumaticaPush) -> str:
    """`Id` names the notification; with its `TimeStamp` it names this delivery."""
    return f"{push.Id}:{push.TimeStamp}"


def acumatica_routes(push: AcumaticaPush, pairs: dict[str, PairConfig]) -> list[Route]:
    if push.Query not in ACUMATICA_SHIPMENT_QUERIES or not push.Inserted:
        return []
    rows: list[dict[str, Any]] = list(push.Inserted)
    arg = ErpEventInput(
        erp="acumatica", kind="shipment", pairs=_erp_pairs("acumatica", pairs), rows=rows
    )
    return [Route("ErpEventRouter", f"erp-event:acumatica:{acumatica_key(push)}", arg)]
