"""Customer merge: duplicates of one system folded into a survivor, both systems consistent.

Workflow id `customer-merge:{system}:{survivor_id}`. Steps (compensation in brackets):
snapshot the survivor and every duplicate (a missing one fails the run: `NotFound`), and
read the linked record of the pair's other system as a source -> merge fields by the
pair's system-of-record rules (domain/customers.py) -> write the survivor [write its
snapshot back] -> re-point the duplicates' open orders to it [point each back]
-> deactivate the duplicates [write each snapshot back, active again] -> move the
customer links to the survivor [restore them as read before the move].

Every record written is remembered by its fingerprint, as intended before the write and
as read back after it, so the change events the writes raise are not synced back (echo suppression, customer_sync.py). A permanent failure runs
the compensations in reverse, records a dead letter (process `customer-merge`), alerts
and fails the run, as the order sync does.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from commerce_sync.contracts.activities import Config, Customers, Database
    from commerce_sync.contracts.customers import (
        CustomerActiveInput,
        CustomerEmailLookup,
        CustomerLinkLookup,
        CustomerMergeInput,
        CustomerMergeStatus,
        CustomerRecordRef,
        CustomerWriteInput,
        LinkRepoint,
        MergeState,
        OrderCustomerInput,
        StepRecord,
        WriteMemo,
    )
    from commerce_sync.contracts.steps import ResolveDeadLetters
    from commerce_sync.domain.customers import MERGE_FIELDS, changed_fields, fingerprint
    from commerce_sync.domain.customers import merge_customer as merge_records
    from commerce_sync.domain.models import STORE_SYSTEMS, Customer
    from commerce_sync.domain.pair_rules import PairRules
    from commerce_sync.workflows.saga import Compensation, PairSaga, permanent_failure


@workflow.defn(name="CustomerMerge")
class CustomerMergeWorkflow(PairSaga):
    @workflow.init
    def __init__(self, input: CustomerMergeInput) -> None:
        self._input = input
        self._status = CustomerMergeStatus(
            system=input.system, survivor=input.survivor, duplicates=list(input.duplicates)
        )
        self._pair: PairRules | None = None
        self._compensations: list[Compensation] = []

    @workflow.query(name="status")
    def status(self) -> CustomerMergeStatus:
        return self._status

    @workflow.run
    async def run(self, input: CustomerMergeInput) -> CustomerMergeStatus:
        self._pair = await self._act(Config.pair, input.pair, queue=None)
        self._status.state = MergeState.MERGING
        try:
            await self._merge()
        except ActivityError as error:
            failure = permanent_failure(error)
            if failure is None:
                raise
            await self._fail(failure.type or "failed", str(failure))
        except ApplicationError as error:
            if error.type != "NotFound":
                raise
            # A named customer does not exist (the API's 404): nothing was written, so
            # nothing to undo, no dead letter; the run fails saying which one.
            self._status.error = str(error)
            self._status.state = MergeState.FAILED
            self._step("snapshot", str(error), "failed")
            raise
        # What an earlier failed merge into this survivor left is settled now.
        await self._act(
            Database.resolve_dead_letters,
            ResolveDeadLetters(business_key=workflow.info().workflow_id, note="merged"),
            queue=None,
        )
        self._status.state = MergeState.MERGED
        self._step("merged", f"{len(input.duplicates)} duplicates into {input.survivor}")
        return self._status

    # ---- the steps -----------------------------------------------------------------

    @property
    def _system(self) -> str:
        return self._input.system

    @property
    def _is_store(self) -> bool:
        return self._system in STORE_SYSTEMS

    async def _get(self, system: str, customer_id: str) -> Customer | None:
        return await self._act(
            Customers.get,
            CustomerRecordRef(pair=self._input.pair, customer_id=customer_id),
            queue=system,
        )

    async def _merge(self) -> None:
        pair, system = self._input.pair, self._system
        snapshots: dict[str, Customer] = {}
        for customer_id in [self._input.survivor, *self._input.duplicates]:
            found = await self._get(system, customer_id)
            if found is None:
                raise ApplicationError(
                    f"{system} customer {customer_id} does not exist",
                    type="NotFound",
                    non_retryable=True,
                )
            snapshots[customer_id] = found
        survivor = snapshots[self._input.survivor]
        duplicates = [snapshots[d] for d in self._input.duplicates]
        self._step("snapshot", f"{len(snapshots)} records")
        others = [*duplicates, *await self._linked_records(survivor)]

        merged = merge_records(survivor, others, self._pair_config.customers)
        self._status.fields_changed = changed_fields(survivor, merged, MERGE_FIELDS)
        self._register(
            "restore the survivor",
            lambda: self._write(self._input.survivor, survivor, compensation=True),
        )
        await self._write(self._input.survivor, merged)
        self._step("update survivor", ", ".join(self._status.fields_changed) or "unchanged")

        for duplicate_id in self._input.duplicates:
            orders = await self._act(
                Customers.open_orders,
                CustomerRecordRef(pair=pair, customer_id=duplicate_id),
                queue=system,
            )
            for order_id in orders:
                self._register(
                    f"point order {order_id} back to {duplicate_id}",
                    lambda o=order_id, d=duplicate_id: self._set_order_customer(  # type: ignore[misc]
                        o, d, compensation=True
                    ),
                )
                await self._set_order_customer(order_id, self._input.survivor)
                self._status.orders_repointed[order_id] = duplicate_id
        self._step("re-point open orders", f"{len(self._status.orders_repointed)} orders")

        for duplicate in duplicates:
            assert duplicate.origin is not None
            duplicate_id, snapshot = duplicate.origin.external_id, duplicate
            self._register(
                f"reactivate {duplicate_id}",
                lambda d=duplicate_id, s=snapshot: self._write(d, s, compensation=True),  # type: ignore[misc]
            )
            await self._remember_intent(duplicate_id, snapshot.model_copy(update={"active": False}))
            written = await self._act(
                Customers.set_active,
                CustomerActiveInput(pair=pair, customer_id=duplicate_id, active=False),
                queue=system,
            )
            await self._remember(duplicate_id, written)
        self._step("deactivate duplicates", ", ".join(self._input.duplicates))

        if self._is_store:
            old_keys = [d.email.lower() for d in duplicates]
            new_key = survivor.email.lower()
        else:
            old_keys, new_key = list(self._input.duplicates), self._input.survivor
        repoint = LinkRepoint(
            pair=pair, side="store" if self._is_store else "erp", old_keys=old_keys, new_key=new_key
        )
        # The rows to move, as they are, read before the move: its compensation restores
        # these, whether or not the move's own answer arrived (a lost answer is retried,
        # and the retry finds nothing left to move).
        moving = await self._act(Database.customer_links_to_move, repoint, queue=None)
        self._register(
            "restore the customer links",
            lambda: self._act(
                Database.restore_customer_links,
                moving,
                queue=None,
                compensation=True,
            ),
        )
        await self._act(Database.repoint_customer_links, repoint, queue=None)
        self._step("update links", f"{len(moving)} links")
        self._compensations.clear()

    async def _linked_records(self, survivor: Customer) -> list[Customer]:
        """The pair's other system's record of this customer: a source of the fields it owns."""
        pair = self._pair_config
        if self._is_store:
            erp_id = await self._act(
                Database.find_customer_link,
                CustomerLinkLookup(pair=pair.id, store_id=survivor.email),
                queue=None,
            )
            linked = await self._get(pair.erp, erp_id) if erp_id else None
            return [linked] if linked is not None else []
        email = await self._act(
            Database.find_customer_link,
            CustomerLinkLookup(pair=pair.id, erp_id=self._input.survivor),
            queue=None,
        )
        found = await self._act(
            Customers.by_email,
            CustomerEmailLookup(pair=pair.id, email=email or survivor.email),
            queue=pair.store,
        )
        return [customer for customer in found if customer.active][:1]

    async def _write(
        self, customer_id: str, customer: Customer, *, compensation: bool = False
    ) -> None:
        await self._remember_intent(customer_id, customer, compensation=compensation)
        written = await self._act(
            Customers.write,
            CustomerWriteInput(pair=self._input.pair, customer_id=customer_id, customer=customer),
            queue=self._system,
            compensation=compensation,
        )
        await self._remember(customer_id, written)

    async def _remember_intent(
        self, customer_id: str, customer: Customer, *, compensation: bool = False
    ) -> None:
        """Before a write: its change event may come back before the write's answer."""
        await self._act(
            Database.remember_customer_intent,
            WriteMemo(
                system=self._system, customer_id=customer_id, fingerprint=fingerprint(customer)
            ),
            queue=None,
            compensation=compensation,
        )

    async def _remember(self, customer_id: str, written: Customer) -> None:
        await self._act(
            Database.remember_customer_write,
            WriteMemo(
                system=self._system, customer_id=customer_id, fingerprint=fingerprint(written)
            ),
            queue=None,
        )

    async def _set_order_customer(
        self, order_id: str, customer_id: str, *, compensation: bool = False
    ) -> None:
        await self._act(
            Customers.set_order_customer,
            OrderCustomerInput(pair=self._input.pair, order_id=order_id, customer_id=customer_id),
            queue=self._system,
            compensation=compensation,
        )

    # ---- failure -------------------------------------------------------------------

    async def _fail(self, reason: str, error: str) -> None:
        self._status.error = error
        self._status.state = MergeState.COMPENSATING
        await self._unwind(
            f"customer merge into {self._system} {self._input.survivor}", self._compensated
        )
        await self._dead_letter(
            self._input.pair,
            "customer-merge",
            reason,
            error,
            self._input.model_dump(mode="json"),
        )
        await self._alert(
            "customer_merge_failed",
            f"merge into {self._system} customer {self._input.survivor} ({reason}): {error}",
        )
        self._status.state = MergeState.FAILED
        raise ApplicationError(
            f"customer merge into {self._input.survivor} {reason}: {error}",
            type=reason,
            non_retryable=True,
        )

    def _compensated(self, name: str, outcome: str, detail: str) -> None:
        self._status.compensations.append(self._record(name, outcome, detail))

    def _record(self, name: str, outcome: str, detail: str = "") -> StepRecord:
        return StepRecord(name=name, at=workflow.now(), outcome=outcome, detail=detail)

    def _step(self, name: str, detail: str = "", outcome: str = "ok") -> None:
        self._status.steps.append(self._record(name, outcome, detail))
