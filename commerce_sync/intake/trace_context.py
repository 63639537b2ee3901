"""A webhook's trace, carried from the request that recorded it to the relay that
starts its run (W3C `traceparent`, kept beside the body in the event's payload), so one
trace still goes from the webhook through the workflow to the outgoing calls."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry import context, propagate, trace


def current_trace() -> dict[str, str] | None:
    """The current span's context as headers, or None when nothing is being traced."""
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


@contextlib.contextmanager
def continued(carrier: Any) -> Iterator[None]:
    """Spans made inside belong to the trace of `carrier` (no-op when there is none)."""
    if not isinstance(carrier, dict) or not carrier:
        yield
        return
    token = context.attach(propagate.extract({str(k): str(v) for k, v in carrier.items()}))
    try:
        yield
    finally:
        context.detach(token)
