"""A store product create whose answer is lost and that lands after its retry's look-up
made the product again: once the pair's `duplicate_check_after` has passed, the catalog
run deletes the twin, so the store holds one product with the SKU, the run's.

Kentico keeps nothing unique on `SKUNumber` that the connector relies on, so the late
create makes a second SKU there; the X-Cart sandbox refuses a second product with the
SKU, so the late create is refused (had it been made, the same check would delete it).
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.integration.catalog.catalog_views import (
    erp_create,
    new_sku,
    store_products,
    wait_run,
)
from tests.integration.orders.order_stack import PAIRS, Stack, eventually
from tests.integration.orders.sandbox_views import alerts, inject

# The run looks for twins this long after the create: after the held one lands.
CHECK_AFTER_S = 12
CREATE = {"kentico": "POST /rest/ecommerce.sku*", "xcart": "POST /admin.php*_path=product*"}


@pytest.mark.parametrize("stack", [{"duplicate_check_after": CHECK_AFTER_S}], indirect=True)
@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_product_create_landing_after_its_retry_leaves_one_product(
    stack: Stack, pair: str
) -> None:
    store, erp = PAIRS[pair]
    held = stack.settings.http_timeout_s + 3.0  # past the timeout and the retry's look-up
    assert held < CHECK_AFTER_S
    await inject(stack, store, {"match": CREATE[store], "delay_s": held, "count": 1})
    sku = new_sku()
    await erp_create(stack, erp, sku, name="Late Lamp", description="", price="12.00")

    if store == "kentico":  # the held create lands beside the retry's product

        async def twin_landed() -> bool:
            return len(await store_products(stack, store, sku)) == 2

        await eventually(twin_landed, held + 30.0, "the late create to land")
    completed = WorkflowExecutionStatus.COMPLETED
    run = await wait_run(stack, pair, sku, "synced", completed, timeout_s=90.0)
    [product] = await store_products(stack, store, sku)
    assert product.id == run.state["store_product_id"] and product.enabled
    removed = {step["name"]: step["detail"] for step in run.state["steps"]}.get(
        "remove duplicate store products"
    )
    kinds = [a.kind for a in alerts(stack, f"catalog:{pair}:{sku}")]
    if store == "kentico":
        assert removed and product.id not in removed
        assert kinds == ["duplicate_store_product"]
    else:
        assert removed is None and kinds == []
