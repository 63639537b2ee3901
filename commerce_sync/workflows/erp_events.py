"""ERP event router: an ERP webhook names shipments; find their store orders and wake them.

Workflow id `erp-event:{erp}:{event key}`. The ERP says which shipment (Brightpearl:
goods-out note ids; Acumatica: shipment rows with their order), an activity resolves
them to ERP order ids, the links table to store orders, and each order workflow gets
the signal `shipment` (it then reads the shipments itself). An order whose workflow
has ended is skipped.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from commerce_sync.contracts.activities import Database, Erp
    from commerce_sync.contracts.erp_events import ErpEventInput
    from commerce_sync.contracts.orders import ShipmentNotice
    from commerce_sync.contracts.steps import LinkLookup, ShipmentEventRef
    from commerce_sync.workflows.saga import HEARTBEAT_TIMEOUT

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=2))


@workflow.defn(name="ErpEventRouter")
class ErpEventRouterWorkflow:
    @workflow.run
    async def run(self, event: ErpEventInput) -> list[str]:
        woken: list[str] = []
        for pair in event.pairs:
            erp_order_ids: list[str] = await workflow.execute_activity(
                Erp.orders_for_shipments.name,
                ShipmentEventRef(pair=pair, ids=event.ids, rows=event.rows),
                result_type=Erp.orders_for_shipments.result_type,
                task_queue=event.erp,
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=RETRY,
            )
            for erp_order_id in erp_order_ids:
                store_order_id: str | None = await workflow.execute_activity(
                    Database.find_store_id.name,
                    LinkLookup(pair=pair, kind="order", erp_id=erp_order_id),
                    result_type=Database.find_store_id.result_type,
                    start_to_close_timeout=timedelta(seconds=30),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=RETRY,
                )
                if store_order_id is None:
                    workflow.logger.info("ERP order %s is not one of ours", erp_order_id)
                    continue
                workflow_id = f"order:{pair}:{store_order_id}"
                handle = workflow.get_external_workflow_handle(workflow_id)
                try:
                    await handle.signal(
                        "shipment", ShipmentNotice(erp_event_id=workflow.info().workflow_id)
                    )
                    woken.append(workflow_id)
                except Exception as exc:  # the order's run has ended: nothing waits
                    workflow.logger.info("%s not signalled: %s", workflow_id, exc)
        return woken
