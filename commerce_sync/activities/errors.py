"""Connector errors -> Temporal retry decisions.

Transient errors are retried by Temporal's retry policy (with the system's throttle
delay when it gave one); permanent errors fail the activity for good, so the workflow
can compensate instead of retrying forever. Connectors retry nothing themselves but a
read the system turned away for a moment (`systems/read_retries.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from commerce_sync.activities.attempts import note_handed_back
from commerce_sync.ops.alerts import current_watch
from commerce_sync.ops.metrics import STEPS_FAILED
from commerce_sync.systems.attempts import counting_requests
from commerce_sync.systems.errors import (
    BudgetQueued,
    ConnectorError,
    EarlierCreateInFlight,
    ThrottledError,
    TransientError,
)

P = ParamSpec("P")
R = TypeVar("R")


def to_application_error(
    exc: ConnectorError, *, failed_attempts: int | None = None
) -> ApplicationError:
    """`failed_attempts`, given with a budget hand-back: the attempts so far that did not
    hand back (`workflows/requeue.py` counts only those against a bounded retry)."""
    delay = timedelta(seconds=exc.retry_after_s) if exc.retry_after_s is not None else None
    details: dict[str, object] = {
        "system": exc.system,
        "status": exc.status,
        "field": exc.field,
        "message": exc.message,
    }
    if failed_attempts is not None:
        details["failed_attempts"] = failed_attempts
    return ApplicationError(
        str(exc),
        details,
        type=type(exc).__name__,
        non_retryable=not exc.retryable,
        next_retry_delay=delay,
    )


def classified(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap an activity so connector errors carry their retry decision to Temporal."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with counting_requests() as sent:
                result = await fn(*args, **kwargs)
        except BudgetQueued as exc:
            # Still queued for the call budget, nothing sent: no failed step, and no answer
            # of the system's either way; the retry of an attempt that sent nothing at all
            # is a first attempt still (attempts.py).
            failed = note_handed_back(sent.count) if activity.in_activity() else None
            raise to_application_error(exc, failed_attempts=failed) from exc
        except ConnectorError as exc:
            STEPS_FAILED.labels(
                system=exc.system, step=_step(), error_class=type(exc).__name__
            ).inc()
            await _watch_answer(exc.system, unreachable=unreachable(exc))
            raise to_application_error(exc) from exc
        except Exception as exc:
            STEPS_FAILED.labels(system=_queue(), step=_step(), error_class=type(exc).__name__).inc()
            raise
        await _watch_answer(_queue(), unreachable=False)
        return result

    return wrapper


def unreachable(exc: ConnectorError) -> bool:
    """Timeouts, connection errors and 5xx say the system is not answering; a throttle
    or a refusal (4xx) is an answer, and a create held back is no call at all."""
    if not isinstance(exc, TransientError) or isinstance(
        exc, (ThrottledError, EarlierCreateInFlight)
    ):
        return False
    return exc.status is None or exc.status >= 500


def _step() -> str:
    """The running activity's name (`erp.create_order`): the step that failed."""
    return activity.info().activity_type if activity.in_activity() else "unknown"


def _queue() -> str:
    """The running activity's task queue: one per outside system."""
    return activity.info().task_queue if activity.in_activity() else "unknown"


async def _watch_answer(system: str, *, unreachable: bool) -> None:
    """Tell this worker's unreachable-system watch (alerts.py) how the call went."""
    watch = current_watch()
    if watch is None:
        return
    await watch.report(watch.failed(system) if unreachable else watch.answered(system))
