"""Bounded retries that count only failed attempts, not budget hand-backs.

An attempt still queued for its system's call budget when its time is nearly up hands
its place back (`BudgetQueued`, nothing sent) and is retried in the same place. Steps
retry without limit, so that costs them nothing. A retry policy with a maximum number of
attempts (compensations, the change feed's reads, the inventory push's calls) would
count those hand-backs too, and give up behind a long enough backlog although the
system never answered anything. So when the last allowed attempt handed its place back,
the activity is scheduled again with the attempts that are left: those that did not
hand back (the activity counts them in its heartbeat details and says so in the error,
`activities/errors.py`) are still counted.

The activity scheduled again starts at attempt 1 with no heartbeat memory: only
activities with no first-attempt shortcut (`activities/attempts.py`) go through here.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

REQUEUE_PATCH = "requeue-budget-hand-backs"
HANDED_BACK = "BudgetQueued"  # the error type of a hand-back (`systems/errors.py`)


def attempts_left(error: ActivityError, policy: RetryPolicy) -> int | None:
    """The attempts still allowed when `error` ended a bounded retry on a hand-back that
    reported how many attempts failed; None when the retry is over for good."""
    cause = error.cause
    if policy.maximum_attempts <= 0 or not isinstance(cause, ApplicationError):
        return None
    if cause.type != HANDED_BACK or not cause.details:
        return None
    details = cause.details[0]
    failed = details.get("failed_attempts") if isinstance(details, dict) else None
    if not isinstance(failed, int):
        return None  # an activity of a build that did not count them
    left = policy.maximum_attempts - failed
    return left if left > 0 else None


async def execute_bounded(
    activity: str,
    arg: Any,
    *,
    result_type: type | None,
    retry_policy: RetryPolicy,
    start_to_close_timeout: timedelta,
    task_queue: str | None = None,
    heartbeat_timeout: timedelta | None = None,
) -> Any:
    """`workflow.execute_activity` whose `retry_policy.maximum_attempts` counts only the
    attempts that did not hand their budget place back."""
    policy = retry_policy
    while True:
        try:
            return await workflow.execute_activity(
                activity,
                arg,
                result_type=result_type,
                task_queue=task_queue,
                start_to_close_timeout=start_to_close_timeout,
                heartbeat_timeout=heartbeat_timeout,
                retry_policy=policy,
            )
        except ActivityError as error:
            left = attempts_left(error, policy)
            if left is None or not workflow.patched(REQUEUE_PATCH):
                raise
            policy = dataclasses.replace(policy, maximum_attempts=left)
