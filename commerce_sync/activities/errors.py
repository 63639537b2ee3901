"""Connector errors -> Temporal retry decisions.

Transient errors are retried by Temporal's retry policy (with the system's throttle
delay when it gave one); permanent errors fail the activity for good, so the workflow
can compensate instead of retrying forever. Connectors never retry by themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from temporalio.exceptions import ApplicationError

from commerce_sync.systems.errors import ConnectorError

P = ParamSpec("P")
R = TypeVar("R")


def to_application_error(exc: ConnectorError) -> ApplicationError:
    delay = timedelta(seconds=exc.retry_after_s) if exc.retry_after_s is not None else None
    return ApplicationError(
        str(exc),
        {"system": exc.system, "status": exc.status, "field": exc.field, "message": exc.message},
        type=type(exc).__name__,
        non_retryable=not exc.retryable,
        next_retry_delay=delay,
    )


def classified(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap an activity so connector errors carry their retry decision to Temporal."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except ConnectorError as exc:
            raise to_application_error(exc) from exc

    return wrapper
