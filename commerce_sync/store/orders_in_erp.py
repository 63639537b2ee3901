"""What the app database records once an order is in the ERP, in one transaction."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from commerce_sync.store.db import session_scope
from commerce_sync.store.dead_letters import resolve_dead_letters_in
from commerce_sync.store.links import link_in


def record_order_in_erp(
    engine: Engine,
    *,
    pair: str,
    customer_email: str,
    customer_id: str,
    store_order_id: str,
    erp_order_id: str,
    business_key: str,
    quantities: dict[str, int],
) -> None:
    """Link the order's customer and the order, and resolve what earlier failed runs of it
    left in the dead letters: one transaction per order instead of three (one commit of
    the app database on the order's path, not three). The order's link carries its
    quantities per SKU (`Link.quantities`). Safe to repeat (a retried create records the
    same again) and when another writer inserts a link first (tried again)."""
    for _ in range(2):
        try:
            with session_scope(engine) as session:
                link_in(session, pair, "customer", customer_email.lower(), customer_id)
                link_in(session, pair, "order", store_order_id, erp_order_id, quantities=quantities)
                resolve_dead_letters_in(session, business_key, "order synced to the ERP")
            return
        except IntegrityError:
            continue  # a link inserted by another writer meanwhile: read and update it
    raise RuntimeError(f"could not record order {pair}/{store_order_id} in the ERP")
