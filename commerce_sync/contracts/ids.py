"""Workflow ids are business keys: a duplicate event or a resync finds the run that is
already there instead of starting a second one."""

from __future__ import annotations


def order_workflow_id(pair: str, store_order_id: str) -> str:
    return f"order:{pair}:{store_order_id}"


def return_workflow_id(pair: str, rma_id: str) -> str:
    return f"return:{pair}:{rma_id}"


def catalog_workflow_id(pair: str, sku: str) -> str:
    return f"catalog:{pair}:{sku}"


def inventory_workflow_id(pair: str) -> str:
    return f"inventory:{pair}"


def customer_workflow_id(pair: str, side: str, customer_id: str) -> str:
    """`customer:{pair}:{store id}` for a store change, `customer:{pair}:erp:{erp id}` for
    an ERP change (its event names only the ERP id)."""
    if side == "store":
        return f"customer:{pair}:{customer_id}"
    return f"customer:{pair}:erp:{customer_id}"


def merge_workflow_id(system: str, survivor_id: str) -> str:
    return f"customer-merge:{system}:{survivor_id}"
