"""What every per-pair saga workflow (order sync, catalog sync) shares: how a step is
called, how it is retried, how compensations are kept, and how an alert is raised.

Deterministic code only. A step is an activity called through its typed reference
(`contracts/activities.py`) on a task queue: the
outside system's own queue for calls to it (so its API budget applies), the workflow's
queue for the database and alerts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from commerce_sync.contracts.activities import ActivityRef, Database, Ops
    from commerce_sync.contracts.orders import ApprovalDecision, PendingApproval
    from commerce_sync.contracts.steps import AlertInput, DeadLetterInput
    from commerce_sync.domain.pair_rules import PairRules
    from commerce_sync.workflows.requeue import execute_bounded

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")

STEP_TIMEOUT = timedelta(seconds=60)
HEARTBEAT_TIMEOUT = timedelta(seconds=15)
"""How soon a step whose worker died is retried elsewhere (else only at STEP_TIMEOUT).
The worker's HeartbeatInterceptor (ops/heartbeat.py) beats for every running activity,
so a live worker never hits this; a dead one stops beating and the attempt times out."""
# Transient failures (timeouts, 5xx, throttling) are retried until they pass: an order
# must not be lost because a system was down for an hour.
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
LOCAL_STEP_TIMEOUT = timedelta(seconds=30)
"""An attempt of a local step (`PairSaga._act_here`): the database or a check that calls
nothing outside. Longer than the workflow task's 10 s, which the worker then extends by
heartbeating the task; a worker that dies meanwhile leaves the task to time out, and the
next worker to run it runs the step again."""
# Compensations are retried too, but a bounded number of times, so that one that fails
# for good is reported and the remaining ones still run.
COMPENSATION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
)


@dataclass
class Compensation:
    name: str
    run: Callable[[], Awaitable[Any]]


def permanent_failure(error: BaseException) -> ApplicationError | None:
    """The non-retryable application error behind an activity failure, if that is what it was."""
    cause = error.cause if isinstance(error, ActivityError) else error
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return cause
    return None


class ApprovalStatus(Protocol):
    """The part of a run's status that a person's decision is recorded in."""

    approval: PendingApproval | None
    decision: ApprovalDecision | None


class PairSaga:
    """Steps of a workflow that works for one integration pair (`self._pair`, read from
    the `config.pair` activity at the start of the run)."""

    _pair: PairRules | None
    _compensations: list[Compensation]
    _decision: ApprovalDecision | None

    @property
    def _pair_config(self) -> PairRules:
        assert self._pair is not None
        return self._pair

    @property
    def _store(self) -> str:
        return self._pair_config.store

    @property
    def _erp(self) -> str:
        return self._pair_config.erp

    async def _act(
        self,
        ref: ActivityRef[InputT, OutputT],
        arg: InputT,
        *,
        queue: str | None,
        compensation: bool = False,
    ) -> OutputT:
        # A compensation's retry is bounded: its budget hand-backs are not counted
        # (requeue.py); a step's is not, and goes through the same call unchanged.
        result: OutputT = await execute_bounded(
            ref.name,
            arg,
            result_type=ref.result_type,
            task_queue=queue or workflow.info().task_queue,
            start_to_close_timeout=STEP_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=COMPENSATION_RETRY if compensation else STEP_RETRY,
        )
        return result

    async def _act_here(self, ref: ActivityRef[InputT, OutputT], arg: InputT) -> OutputT:
        """A step on this worker's own resources (the database, a check that calls nothing
        outside) as a local activity: run by the worker running the workflow, in its
        workflow task, and recorded as a marker. It saves what a step on the task queue
        costs the server (scheduling, matching, its events) and the round trip of the
        workflow task that would carry its result. It still retries (`STEP_RETRY`), and
        must be as idempotent as any step: a workflow task that fails runs it again."""
        result: OutputT = await workflow.execute_local_activity(
            ref.name,
            arg,
            result_type=ref.result_type,
            start_to_close_timeout=LOCAL_STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
        )
        return result

    def _register(self, name: str, run: Callable[[], Awaitable[Any]]) -> None:
        """Keep a compensation; registered before its step, so a lost answer is undone too."""
        self._compensations.append(Compensation(name, run))

    async def _unwind(
        self,
        subject: str,
        done: Callable[[str, str, str], None],
        *,
        skip: tuple[str, ...] = (),
    ) -> None:
        """Run the kept compensations in reverse; `done(name, outcome, detail)` records each.
        One that fails for good is alerted and the rest still run."""
        for compensation in reversed(self._compensations):
            if compensation.name in skip:
                continue
            try:
                await compensation.run()
                done(compensation.name, "ok", "")
            except ActivityError as error:
                detail = str(error.cause or error)
                done(compensation.name, "failed", detail)
                await self._alert(
                    "compensation_failed", f"could not {compensation.name} for {subject}: {detail}"
                )
        self._compensations.clear()

    async def _wait_for_decision(
        self,
        status: ApprovalStatus,
        reasons: list[str],
        subject: str,
        decided: Callable[[], bool],
    ) -> None:
        """Wait for the `approve` update (or whatever else `decided` watches): the pending
        approval is shown in `status`, an `approval_waiting` alert goes out once after the
        pair's `escalate_after`, and at `reject_after` the run rejects it itself."""
        pair = self._pair_config
        now = workflow.now()
        # The run's "current details", on its User Metadata tab in the Web UI (answered
        # to a query: no command, so recorded runs replay unchanged).
        workflow.set_current_details(
            f"**Waits for approval** ({subject}):\n" + "\n".join(f"- {r}" for r in reasons)
        )
        status.approval = PendingApproval(
            reasons=reasons,
            since=now,
            escalate_at=now + pair.approval.escalate_after,
            reject_at=now + pair.approval.reject_after,
        )
        try:
            await workflow.wait_condition(decided, timeout=pair.approval.escalate_after)
        except TimeoutError:
            status.approval.escalated = True
            await self._alert(
                "approval_waiting",
                f"{subject} has waited {pair.approval.escalate_after} for approval: "
                + "; ".join(reasons),
            )
            try:
                await workflow.wait_condition(
                    decided, timeout=pair.approval.reject_after - pair.approval.escalate_after
                )
            except TimeoutError:
                self._decision = ApprovalDecision(
                    approved=False, by="commerce-sync", reason="approval timed out"
                )
                status.decision = self._decision
        workflow.set_current_details("")

    async def _dead_letter(
        self, pair: str, process: str, reason: str, error: str, payload: dict[str, Any]
    ) -> None:
        """One dead letter for this run, keyed by its workflow id (the business key), so a
        later run of the same key that succeeds resolves it."""
        await self._act(
            Database.record_dead_letter,
            DeadLetterInput(
                pair=pair,
                process=process,
                business_key=workflow.info().workflow_id,
                reason=reason,
                error=error,
                payload=payload,
                attempts=workflow.info().attempt,
            ),
            queue=None,
        )

    async def _alert(self, kind: str, message: str) -> None:
        await self._act(
            Ops.alert,
            AlertInput(kind=kind, key=workflow.info().workflow_id, message=message),
            queue=None,
        )
