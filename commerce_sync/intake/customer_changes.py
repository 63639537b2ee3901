"""The customer change feed's starts: each store customer changed since the feed's mark
reaches the customer's sync (`customer:{pair}:{store id}`) once, as a webhook would.

A customer's sync is one workflow id for its whole life (signal-with-start, `rerun`), so
"is there a run" cannot tell whether a change was handled, as it does for orders. The
change's own stamp can: the feed records each change it passes on as an event, like a
webhook, with the store's stamp of the change as the event's time, and a change is
passed on only when no event of the store for that customer (a webhook's or an earlier
read's) carries that time or a later one. A change announced by a webhook and found by
the feed therefore reaches the sync once; a feed read that overlaps the last one passes
nothing on twice. A start Temporal does not take now is left to the relay, as a
webhook's is.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime

from sqlalchemy import Engine
from temporalio.client import Client

from commerce_sync.config.pairs import PairConfig
from commerce_sync.contracts.feeds import CustomerChange
from commerce_sync.contracts.ids import customer_workflow_id
from commerce_sync.intake.bodies import StoreEvent
from commerce_sync.intake.dispatch import ConnectedClient, StartOutcome, start_recorded
from commerce_sync.intake.missing_runs import Outcome, start_each
from commerce_sync.intake.routing import store_routes
from commerce_sync.store.events import CLAIM_LEASE, announced_since, record_event
from commerce_sync.systems.ports import StorePort

FEED_EVENT_TYPE = "customer.updated"


def feed_event(store: str, change: CustomerChange) -> tuple[str, dict[str, object]]:
    """The event id and body the feed records for a change: a thin store event, the
    webhook's own shape, stamped with the store's time of the change."""
    stamp = change.changed_at.isoformat().replace("+00:00", "Z")
    body: dict[str, object] = {
        "type": FEED_EVENT_TYPE,
        "timestamp": stamp,
        "data": {"id": change.customer_id, "store": store},
    }
    return f"feed:customer:{change.customer_id}:{stamp}", body


async def pass_on_customer_changes(
    client: Client,
    engine: Engine,
    store: StorePort,
    pair: PairConfig,
    since: datetime,
    task_queue: str,
    *,
    page_size: int,
    concurrency: int,
) -> tuple[int, Counter[Outcome]]:
    """(changes seen, outcomes): STARTED for a change passed on to the sync (or left to
    the relay), EXISTING for one announced already, UNSUCCESSFUL for one Temporal refused
    (recorded with its backoff, as a webhook's)."""
    connected = ConnectedClient(client)

    async def one(change: CustomerChange) -> Outcome:
        workflow_id = customer_workflow_id(pair.id, "store", change.customer_id)
        if await asyncio.to_thread(
            announced_since, engine, pair.store, workflow_id, change.changed_at
        ):
            return Outcome.EXISTING
        event_id, body = feed_event(pair.store, change)
        event, new = await asyncio.to_thread(
            record_event,
            engine,
            source=pair.store,
            event_id=event_id,
            event_type=FEED_EVENT_TYPE,
            workflow_id=workflow_id,
            payload={"body": body, "via": "feed"},
            claim_for=CLAIM_LEASE,  # started right here: the relays leave it alone
        )
        if not new:
            return Outcome.EXISTING
        routes = store_routes(StoreEvent.model_validate(body), {pair.id: pair})
        started = await start_recorded(engine, connected, event, routes, task_queue)
        return Outcome.UNSUCCESSFUL if started is StartOutcome.REFUSED else Outcome.STARTED

    return await start_each(store.changed_customers(since, pair, page_size), one, concurrency)
