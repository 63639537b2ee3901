"""Reference data a Kentico client keeps for a while instead of asking again per call.

Countries, states, the site's order statuses and SKU numbers change rarely (an
administrator edits them), so one read serves every run of the worker process until it
expires; after that the next call reads it afresh. Entries are per process, never shared
between workers, and never written to: a stale entry costs at most `ttl_s` of delay in
seeing an administrator's edit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

REFERENCE_TTL_S = 600.0
"""How long countries, states and order status ids are kept."""

SKU_NUMBER_TTL_S = 300.0
"""How long a SKUID -> SKUNumber pair is kept (a renumbered SKU shows after this)."""


@dataclass
class Expiring(Generic[K, V]):
    """A dictionary whose entries expire `ttl_s` seconds after they were stored."""

    ttl_s: float
    clock: Callable[[], float] = time.monotonic
    _entries: dict[K, tuple[float, V]] = field(default_factory=dict)

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        stored_at, value = found
        if self.clock() - stored_at >= self.ttl_s:
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (self.clock(), value)

    def put_many(self, items: Iterable[tuple[K, V]]) -> None:
        now = self.clock()
        for key, value in items:
            self._entries[key] = (now, value)

    def missing(self, keys: Iterable[K]) -> list[K]:
        """The keys without a live entry, in order, once each."""
        return [key for key in dict.fromkeys(keys) if self.get(key) is None]
