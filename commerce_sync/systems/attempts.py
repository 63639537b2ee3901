"""What an earlier attempt of the running activity already made, for creates in steps.

A create that takes several requests (a Brightpearl contact: its postal addresses, then
the contact) is retried as a whole when a later request fails. Where the system gives
no way to find or delete what the earlier requests made, the connector records each
piece as it is made (`put`) and a retry reuses it (`get`) instead of making it again.

The worker's implementation keeps the record in the activity's heartbeat details, which
Temporal hands to the activity's next attempt (`ops/heartbeat.py`); the connectors see
only this protocol, so systems/ stays free of Temporal. Outside an activity, and by
default, nothing is remembered (`NO_MEMORY`): every call makes what it needs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol


class AttemptMemory(Protocol):
    """Values (ids) recorded under keys by this activity's attempts so far."""

    def get(self, key: str) -> str | None:
        """What an attempt recorded under `key` (this one or an earlier one), or None."""
        ...

    def put(self, key: str, value: str) -> None:
        """Record `value` under `key`, for the rest of this attempt and for its retries."""
        ...


class _NoMemory:
    def get(self, key: str) -> str | None:
        return None

    def put(self, key: str, value: str) -> None:
        return None


NO_MEMORY: AttemptMemory = _NoMemory()
"""Remembers nothing: the default where no activity attempt is there to remember for."""


def fingerprint(*parts: Any) -> str:
    """A short stable digest of JSON-able parts, for keys that must change with the content
    they name (a different body is a different record, never one to reuse)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RequestsSent:
    """How many requests the running activity attempt has let go to outside systems."""

    def __init__(self) -> None:
        self.count = 0


_requests_sent: ContextVar[RequestsSent | None] = ContextVar(
    "commerce_sync_requests_sent", default=None
)


@contextmanager
def counting_requests() -> Iterator[RequestsSent]:
    """Count the requests sent within the block (an activity attempt), tasks it starts
    included: they share the count, as they copy the context that holds it."""
    sent = RequestsSent()
    token = _requests_sent.set(sent)
    try:
        yield sent
    finally:
        _requests_sent.reset(token)


def note_request_sent() -> None:
    """A request is about to go out (its call budget granted it): count it, if counted."""
    sent = _requests_sent.get()
    if sent is not None:
        sent.count += 1
