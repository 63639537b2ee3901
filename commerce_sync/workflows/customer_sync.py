"""Customer sync outside merges: a change in one system reaches the pair's other system.

Workflow id `customer:{pair}:{store_customer_id}` for a store change (`customer.created`,
`customer.updated`) and `customer:{pair}:erp:{erp_customer_id}` for an ERP change
(Brightpearl `contact.modified`, Acumatica `CS-Customers` push): the ERP event names
only the ERP id. One run at a time per customer: later events signal `customer_changed`
(signal-with-start) and the run reads the record again.

Each change: read the record -> drop it when it is the record commerce-sync itself wrote
(its fingerprint as intended before the write or as read back after it,
`customer_writes`: echo suppression; while that write is under way, read again shortly)
or an inactive one -> another
active customer of the same system with the same normalised e-mail starts the merge
`customer-merge:{system}:{oldest}` (child workflow) and the sync goes on with the
survivor -> find the other system's record (customer link, else by e-mail) -> write the
fields the change's side may write (system-of-record rules), only when one differs ->
remember what was written. Nothing is created: a customer reaches the ERP with its first
order (order sync). A write the other system refuses for good fails the run with one dead
letter (process `customer-sync`) and one alert; a later run of the customer that ends
well resolves it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from commerce_sync.contracts.activities import Config, Customers, Database
    from commerce_sync.contracts.customers import (
        CustomerChanged,
        CustomerEmailLookup,
        CustomerLinkLookup,
        CustomerMergeInput,
        CustomerRecordRef,
        CustomerSyncInput,
        CustomerSyncStatus,
        CustomerWriteInput,
        StepRecord,
        WriteMemo,
    )
    from commerce_sync.contracts.ids import merge_workflow_id
    from commerce_sync.contracts.steps import LinkInput, ResolveDeadLetters
    from commerce_sync.domain.customers import (
        apply_fields,
        changed_fields,
        fingerprint,
        flowing_fields,
        numbering_key,
        same_person,
    )
    from commerce_sync.domain.models import Customer
    from commerce_sync.domain.pair_rules import PairRules
    from commerce_sync.workflows.customer_merge import CustomerMergeWorkflow
    from commerce_sync.workflows.saga import Compensation, PairSaga, permanent_failure

MERGE_TIMEOUT = timedelta(hours=1)
# A write of ours still under way when its change event arrives: read the record again
# this often, at most this many times (customer_writes.PENDING_FOR bounds the wait too).
PENDING_PAUSE = timedelta(seconds=1)
PENDING_CHECKS = 30


def _id_order(customer: Customer) -> tuple[int, str]:
    """Oldest first (`numbering_key`)."""
    return numbering_key(customer.origin.external_id if customer.origin else "")


@workflow.defn(name="CustomerSync")
class CustomerSyncWorkflow(PairSaga):
    @workflow.init
    def __init__(self, input: CustomerSyncInput) -> None:
        self._input = input
        self._status = CustomerSyncStatus(
            pair=input.pair, side=input.side, customer_id=input.customer_id
        )
        self._pair: PairRules | None = None
        self._compensations: list[Compensation] = []
        self._pending = 0

    @workflow.query(name="status")
    def status(self) -> CustomerSyncStatus:
        return self._status

    @workflow.signal(name="customer_changed")
    def customer_changed(self, change: CustomerChanged | None = None) -> None:
        self._pending += 1

    @workflow.run
    async def run(self, input: CustomerSyncInput) -> CustomerSyncStatus:
        # A signal-with-start has counted its change already; a plain start counts here.
        self._pending = max(self._pending, 1)
        self._pair = await self._act(Config.pair, input.pair, queue=None)
        while self._pending:
            while self._pending:
                self._pending = 0
                self._status.changes_seen += 1
                await self._sync_once()
            # What an earlier failed sync of this customer left is settled now. (A change
            # signalled meanwhile is synced before the run ends.)
            await self._act(
                Database.resolve_dead_letters,
                ResolveDeadLetters(business_key=workflow.info().workflow_id, note="synced"),
                queue=None,
            )
        return self._status

    @property
    def _source(self) -> str:
        return self._store if self._input.side == "store" else self._erp

    @property
    def _target(self) -> str:
        return self._erp if self._input.side == "store" else self._store

    async def _sync_once(self) -> None:
        pair = self._pair_config
        customer_id = self._input.customer_id
        record = await self._read_settled(customer_id)
        if record is None:
            return
        record = await self._merge_duplicates(record)
        assert record.origin is not None
        target = await self._counterpart(record)
        if target is None or target.origin is None:
            self._step("find counterpart", f"no {self._target} customer", "skipped")
            return
        fields = flowing_fields(pair.customers, self._input.side)
        changed = changed_fields(target, record, fields)
        store_email, erp_id = (
            (record.email, target.origin.external_id)
            if self._input.side == "store"
            else (target.email, record.origin.external_id)
        )
        await self._act(
            Database.record_link,
            LinkInput(pair=pair.id, kind="customer", store_id=store_email.lower(), erp_id=erp_id),
            queue=None,
        )
        if not changed:
            self._step("compare", f"{self._target} {target.origin.external_id} is up to date")
            return
        wanted = apply_fields(target, record, changed)
        await self._act(
            Database.remember_customer_intent,
            WriteMemo(
                system=self._target,
                customer_id=target.origin.external_id,
                fingerprint=fingerprint(wanted),
            ),
            queue=None,
        )
        try:
            written = await self._act(
                Customers.write,
                CustomerWriteInput(
                    pair=pair.id, customer_id=target.origin.external_id, customer=wanted
                ),
                queue=self._target,
            )
        except ActivityError as error:
            failure = permanent_failure(error)
            if failure is None:
                raise
            await self._act(
                Database.abandon_customer_intent,
                WriteMemo(
                    system=self._target, customer_id=target.origin.external_id, fingerprint=""
                ),
                queue=None,
            )
            await self._fail(
                f"write {self._target}", failure.type or "failed", str(failure), changed
            )
        await self._act(
            Database.remember_customer_write,
            WriteMemo(
                system=self._target,
                customer_id=target.origin.external_id,
                fingerprint=fingerprint(written),
            ),
            queue=None,
        )
        self._status.writes += 1
        self._step(f"write {self._target}", ", ".join(changed))

    async def _fail(self, step: str, reason: str, error: str, fields: list[str]) -> NoReturn:
        """A write refused for good: one dead letter (process `customer-sync`), one alert,
        the run failed. Nothing to undo: the one write this run makes is the failed one."""
        self._status.error = error
        self._step(step, ", ".join(fields), "failed")
        await self._dead_letter(
            self._input.pair,
            "customer-sync",
            reason,
            error,
            self._input.model_dump(mode="json"),
        )
        await self._alert(
            "customer_sync_failed",
            f"{self._input.side} change of customer {self._input.customer_id} could not be "
            f"written to {self._target} ({reason}): {error}",
        )
        raise ApplicationError(
            f"customer sync to {self._target} {reason}: {error}", type=reason, non_retryable=True
        )

    async def _read_settled(self, customer_id: str) -> Customer | None:
        """The changed record, or None when there is nothing to sync: it is gone, inactive,
        or commerce-sync's own write coming back (echo). While a write of ours to it is
        under way (intended, not yet read back) the record is read again a little later."""
        for _ in range(PENDING_CHECKS):
            record = await self._get(self._source, customer_id)
            if record is None or not record.active:
                self._step("read", "gone or inactive: nothing to sync", "skipped")
                return None
            verdict = await self._act(
                Database.customer_echo,
                WriteMemo(
                    system=self._source, customer_id=customer_id, fingerprint=fingerprint(record)
                ),
                queue=None,
            )
            if verdict == "echo":
                self._status.echoes_dropped += 1
                self._step("read", "commerce-sync's own write coming back", "echo")
                return None
            if verdict != "pending":
                return record
            await workflow.sleep(PENDING_PAUSE)
        return record

    async def _merge_duplicates(self, record: Customer) -> Customer:
        """Another active customer of this system with the same person's e-mail: merge
        them into the oldest, then go on with the survivor."""
        pair = self._pair_config
        rules = pair.customers
        found: dict[str, Customer] = {}
        for customer in await self._act(
            Customers.same_person,
            CustomerEmailLookup(pair=pair.id, email=record.email),
            queue=self._source,
        ):
            if customer.origin is not None:
                found[customer.origin.external_id] = customer
        assert record.origin is not None
        found[record.origin.external_id] = record
        same = sorted(
            (c for c in found.values() if c.active and same_person(c.email, record.email, rules)),
            key=_id_order,
        )
        if len(same) < 2:
            return record
        survivor, *duplicates = same
        assert survivor.origin is not None
        survivor_id = survivor.origin.external_id
        merge_id = merge_workflow_id(self._source, survivor_id)
        self._status.merges.append(merge_id)
        try:
            await workflow.execute_child_workflow(
                CustomerMergeWorkflow.run,
                CustomerMergeInput(
                    system=self._source,
                    pair=pair.id,
                    survivor=survivor_id,
                    duplicates=[d.origin.external_id for d in duplicates if d.origin is not None],
                    trigger=f"duplicate e-mail on {workflow.info().workflow_id}",
                ),
                id=merge_id,
                parent_close_policy=ParentClosePolicy.ABANDON,
                retry_policy=RetryPolicy(maximum_attempts=1),
                execution_timeout=MERGE_TIMEOUT,
            )
            self._step("merge duplicates", merge_id)
        except WorkflowAlreadyStartedError:
            # The other duplicate's event started the same merge first: it does the work.
            self._step("merge duplicates", f"{merge_id} runs already", "skipped")
        except ChildWorkflowError:
            # The merge compensated, recorded its dead letter and alerted: the survivor
            # (as it was) still syncs.
            self._step("merge duplicates", f"{merge_id} failed", "failed")
        merged = await self._get(self._source, survivor_id)
        return merged if merged is not None else survivor

    async def _counterpart(self, record: Customer) -> Customer | None:
        pair = self._pair_config
        assert record.origin is not None
        if self._input.side == "store":
            erp_id = await self._act(
                Database.find_customer_link,
                CustomerLinkLookup(pair=pair.id, store_id=record.email),
                queue=None,
            )
            if erp_id:
                linked = await self._get(self._target, erp_id)
                if linked is not None and linked.active:
                    return linked
            emails = [record.email]
        else:
            email = await self._act(
                Database.find_customer_link,
                CustomerLinkLookup(pair=pair.id, erp_id=record.origin.external_id),
                queue=None,
            )
            emails = [e for e in (email, record.email) if e]
        for email in emails:
            found = await self._act(
                Customers.by_email,
                CustomerEmailLookup(pair=pair.id, email=email),
                queue=self._target,
            )
            active = sorted((c for c in found if c.active), key=_id_order)
            if active:
                return active[0]
        return None

    async def _get(self, system: str, customer_id: str) -> Customer | None:
        return await self._act(
            Customers.get,
            CustomerRecordRef(pair=self._input.pair, customer_id=customer_id),
            queue=system,
        )

    def _step(self, name: str, detail: str = "", outcome: str = "ok") -> None:
        self._status.steps.append(
            StepRecord(name=name, at=workflow.now(), outcome=outcome, detail=detail)
        )
