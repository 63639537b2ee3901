"""Catalog sync: the ERP's product, created or changed, reaches the store once.

Workflow id `catalog:{pair}:{sku}`, started (or signalled, `product_changed`) by ERP
product webhooks and by `resync catalog`. Each pass: read the ERP product by SKU ->
check it -> look the store product up by SKU -> update it when a field differs
(name, description, price, enabled), or create it [remove it again] hidden, publish
it (enable) when the ERP sells it, and record the link SKU <-> ERP product id.

A new product is created disabled and enabled as a separate, later step, so that a
shopper never sees a product whose set-up failed half way; when a step after the
create fails for good, the product this run created is removed again (compensations
registered before their step, run in reverse, each failure alerted and never hiding
the original error), a dead letter is recorded, an alert raised, and the run fails.

A change signalled while a pass runs makes one more pass, so the last change always
lands; a change after the run completed starts a fresh run (the route's `rerun`).

`CatalogEventRouter` (`catalog-event:{erp}:{event key}`) serves ERPs whose webhooks
name product ids rather than SKUs (Brightpearl): it looks the SKUs up and starts the
catalog runs. Deterministic code only: activities are called by name on their
system's queue.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from commerce_sync.contracts import search_attributes as sa
    from commerce_sync.contracts.activities import Catalog, Config, Database, Erp, Store
    from commerce_sync.contracts.catalog import (
        CatalogAction,
        CatalogEventInput,
        CatalogStart,
        CatalogStarts,
        CatalogState,
        CatalogStep,
        CatalogSyncInput,
        CatalogSyncStatus,
        ErpProductIds,
        ErpProductRef,
        ProductChanged,
        StoreProductCreated,
        StoreProductRef,
        StoreProductRemoval,
        StoreProductTwinCheck,
        StoreProductWrite,
    )
    from commerce_sync.contracts.steps import (
        LinkInput,
        ResolveDeadLetters,
    )
    from commerce_sync.domain.models import Product
    from commerce_sync.domain.pair_rules import PairRules
    from commerce_sync.workflows.saga import (
        HEARTBEAT_TIMEOUT,
        STEP_RETRY,
        STEP_TIMEOUT,
        Compensation,
        PairSaga,
        permanent_failure,
    )


MAX_PASSES = 20
"""Passes before continue-as-new: a product changed non-stop must not grow the history."""
TWIN_CHECK_PATCH = "remove-duplicate-store-products"
# Runs recorded before this end without looking for a twin of the product they created.


class InvalidProduct(Exception):
    """The ERP product cannot go to the store as it is; nothing was written."""


def product_problems(product: Product, sku: str) -> list[str]:
    """Why the ERP product cannot go to the store as it is (empty when it can)."""
    problems: list[str] = []
    if product.sku != sku:
        problems.append(f"sku: the ERP product carries {product.sku!r}, not {sku!r}")
    if not product.name.strip():
        problems.append("name: empty")
    if product.price < 0:
        problems.append(f"price: negative ({product.price})")
    return problems


def differing_fields(store: Product, erp: Product) -> list[str]:
    """The synced fields where the store's product differs from the ERP's."""
    fields: list[str] = []
    if store.name != erp.name:
        fields.append("name")
    if store.description != erp.description:
        fields.append("description")
    if store.price != erp.price:
        fields.append("price")
    if store.enabled != erp.enabled:
        fields.append("enabled")
    return fields


@workflow.defn(name="CatalogSync")
class CatalogSyncWorkflow(PairSaga):
    @workflow.init
    def __init__(self, input: CatalogSyncInput) -> None:
        self._input = input
        self._status = CatalogSyncStatus(
            pair=input.pair,
            sku=input.sku,
            state=CatalogState.STARTED,
            erp_product_id=input.erp_product_id,
        )
        self._pair: PairRules | None = None
        self._changes = 0
        self._product_id_hint = input.erp_product_id
        self._compensations: list[Compensation] = []
        self._twins_checked = False

    # ---- messages ------------------------------------------------------------------

    @workflow.query(name="status")
    def status(self) -> CatalogSyncStatus:
        return self._status

    @workflow.signal(name="product_changed")
    def product_changed(self, change: ProductChanged | None = None) -> None:
        self._changes += 1
        if change is not None and change.erp_product_id:
            self._product_id_hint = change.erp_product_id

    # ---- the run -------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CatalogSyncInput) -> CatalogSyncStatus:
        workflow.upsert_search_attributes([sa.INTEGRATION_PAIR.value_set(input.pair)])
        self._set_state(CatalogState.SYNCING)
        self._pair = await self._act(Config.pair, input.pair, queue=None)
        while True:
            self._changes = 0
            self._status.passes += 1
            try:
                state = await self._sync_once()
            except InvalidProduct as problem:
                return await self._end_failed(
                    "invalid_product", str(problem), CatalogState.DEAD_LETTERED
                )
            except ActivityError as error:
                failure = permanent_failure(error)
                if failure is None:
                    raise
                return await self._end_failed(
                    failure.type or "failed", str(failure), CatalogState.FAILED
                )
            if self._changes == 0:
                if state == CatalogState.SYNCED:  # an earlier failed run's letters are done
                    await self._act(
                        Database.resolve_dead_letters,
                        ResolveDeadLetters(
                            business_key=workflow.info().workflow_id, note="product synced"
                        ),
                        queue=None,
                    )
                if (
                    state == CatalogState.SYNCED
                    and self._status.created_by_this_run
                    and not self._twins_checked
                    and workflow.patched(TWIN_CHECK_PATCH)
                ):
                    await self._remove_twins()
                    if self._changes:
                        continue  # changed while the run waited: one more pass
                return self._end(state)
            if self._status.passes >= MAX_PASSES:
                workflow.continue_as_new(
                    CatalogSyncInput(
                        pair=input.pair,
                        sku=input.sku,
                        erp_product_id=self._product_id_hint,
                        trigger="continued",
                    )
                )

    async def _sync_once(self) -> CatalogState:
        """One pass: the store ends up with the ERP product as it is now."""
        pair, sku = self._pair_config, self._input.sku
        product = await self._act(
            Erp.get_product,
            ErpProductRef(pair=pair.id, sku=sku, erp_product_id=self._product_id_hint),
            queue=self._erp,
        )
        if product is None:
            self._step("read ERP product", f"{pair.erp} has no product {sku}", "skipped")
            return CatalogState.SKIPPED
        if product.origin is not None:
            self._status.erp_product_id = self._product_id_hint = product.origin.external_id
        self._step("read ERP product", f"{product.name}, {product.price} {product.currency}")
        problems = product_problems(product, sku)
        if problems:
            raise InvalidProduct("; ".join(problems))

        existing = await self._act(
            Store.find_product,
            StoreProductRef(pair=pair.id, sku=sku),
            queue=self._store,
        )
        if existing is None:
            created = await self._create(product)
            if not created.created:  # it appeared since the look-up: bring it up to date
                await self._write(product, created.product_id, "all fields")
        else:
            store_id = existing.origin.external_id if existing.origin is not None else ""
            self._status.store_product_id = store_id
            fields = differing_fields(existing, product)
            if fields:
                await self._write(product, store_id, ", ".join(fields))
            else:
                self._status.action = self._status.action or CatalogAction.UNCHANGED
                self._step("update store product", f"{store_id} unchanged")

        await self._act(
            Database.record_link,
            LinkInput(
                pair=pair.id, kind="product", store_id=sku, erp_id=self._status.erp_product_id
            ),
            queue=None,
        )
        self._step("record link", f"{sku} <-> {pair.erp} {self._status.erp_product_id}")
        self._compensations.clear()  # the pass is complete: nothing left to undo
        return CatalogState.SYNCED

    async def _create(self, product: Product) -> StoreProductCreated:
        """Create the product hidden, then publish it (enable) when the ERP sells it."""
        pair = self._pair_config
        # Registered before the step: a create whose answer was lost is still undone.
        self._register(
            "remove the store product this run created",
            lambda: self._act(
                Store.delete_product,
                StoreProductRemoval(
                    pair=pair.id, sku=product.sku, product_id=self._status.store_product_id
                ),
                queue=self._store,
                compensation=True,
            ),
        )
        created = await self._act(
            Store.create_product,
            StoreProductWrite(pair=pair.id, product=product.model_copy(update={"enabled": False})),
            queue=self._store,
        )
        self._status.store_product_id = created.product_id
        if not created.created:
            self._compensations.pop()  # someone else's product: never ours to remove
            self._step("create store product", f"{created.product_id} exists already")
            return created
        self._status.created_by_this_run = True
        self._status.action = CatalogAction.CREATED
        self._step("create store product", f"created {created.product_id}, hidden")
        if product.enabled:
            await self._act(
                Store.update_product,
                StoreProductWrite(pair=pair.id, product=product, product_id=created.product_id),
                queue=self._store,
            )
            self._step("publish", f"{created.product_id} enabled")
        return created

    async def _remove_twins(self) -> None:
        """A create whose answer was lost can land after its retry's look-up made the
        product again: a second, hidden product with the SKU. Once the pair's
        `duplicate_check_after` has passed since the create, any such twin is deleted.
        A check that fails is alerted; the product itself stands as synced."""
        self._twins_checked = True
        await workflow.sleep(self._pair_config.duplicate_check_after)
        check = StoreProductTwinCheck(
            pair=self._input.pair, sku=self._input.sku, keep=self._status.store_product_id
        )
        try:
            twins = await self._act(Store.remove_product_twins, check, queue=self._store)
        except ActivityError as error:
            await self._alert(
                "duplicate_check_failed",
                f"product {self._input.sku}: could not look for duplicate store products: "
                f"{error.cause or error}",
            )
            return
        if twins:
            self._step("remove duplicate store products", ", ".join(twins))
            await self._alert(
                "duplicate_store_product",
                f"product {self._input.sku}: removed duplicates made by lost answers: "
                + ", ".join(twins),
            )

    async def _write(self, product: Product, store_id: str, what: str) -> None:
        await self._act(
            Store.update_product,
            StoreProductWrite(pair=self._pair_config.id, product=product, product_id=store_id),
            queue=self._store,
        )
        if self._status.action != CatalogAction.CREATED:
            self._status.action = CatalogAction.UPDATED
        self._step("update store product", f"{store_id}: {what}")

    # ---- failure and compensation --------------------------------------------------

    async def _compensate(self) -> None:
        """Undo in reverse; a compensation that fails for good is alerted, the rest still run."""
        if not self._compensations:
            return
        self._set_state(CatalogState.COMPENSATING)
        await self._unwind(self._input.sku, self._compensated)

    def _compensated(self, name: str, outcome: str, detail: str) -> None:
        self._status.compensations.append(self._record(name, outcome, detail))

    async def _end_failed(self, reason: str, error: str, state: CatalogState) -> CatalogSyncStatus:
        self._status.error = error
        self._step(reason, error, "failed")
        await self._compensate()
        await self._dead_letter(
            self._input.pair,
            "catalog",
            reason,
            error,
            {
                "pair": self._input.pair,
                "sku": self._input.sku,
                "erp_product_id": self._status.erp_product_id,
            },
        )
        await self._alert("catalog_failed", f"product {self._input.sku} ({reason}): {error}")
        self._set_state(state)
        raise ApplicationError(
            f"product {self._input.sku} {reason}: {error}", type=reason, non_retryable=True
        )

    # ---- helpers -------------------------------------------------------------------

    def _record(self, name: str, outcome: str, detail: str = "") -> CatalogStep:
        return CatalogStep(name=name, at=workflow.now(), outcome=outcome, detail=detail)

    def _step(self, name: str, detail: str = "", outcome: str = "ok") -> None:
        self._status.steps.append(self._record(name, outcome, detail))

    def _set_state(self, state: CatalogState) -> None:
        self._status.state = state
        workflow.upsert_search_attributes([sa.SYNC_STATE.value_set(state.value)])

    def _end(self, state: CatalogState) -> CatalogSyncStatus:
        self._set_state(state)
        return self._status


@workflow.defn(name="CatalogEventRouter")
class CatalogEventRouterWorkflow:
    """An ERP webhook named product ids: find their SKUs and start their catalog runs."""

    @workflow.run
    async def run(self, event: CatalogEventInput) -> list[str]:
        starts: list[CatalogStart] = []
        for pair in event.pairs:
            skus: dict[str, str] = await workflow.execute_activity(
                Erp.product_skus.name,
                ErpProductIds(pair=pair, product_ids=event.product_ids),
                result_type=Erp.product_skus.result_type,
                task_queue=event.erp,
                start_to_close_timeout=STEP_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=STEP_RETRY,
            )
            starts += [
                CatalogStart(
                    pair=pair,
                    sku=sku,
                    erp_product_id=product_id,
                    erp_event_id=workflow.info().workflow_id,
                )
                for product_id, sku in sorted(skus.items())
            ]
        if not starts:
            return []
        started: list[str] = await workflow.execute_activity(
            Catalog.start_runs.name,
            CatalogStarts(starts=starts),
            result_type=Catalog.start_runs.result_type,
            start_to_close_timeout=STEP_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=STEP_RETRY,
        )
        return started
