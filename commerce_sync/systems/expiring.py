"""A per-process map whose entries expire: reference data an ERP connector has read
(a SKU's product id) reused by the next order instead of read again.

Only what was found is kept: a SKU the ERP did not know is asked again next time (it
may have been added since). An entry lives `ttl_s` seconds from when it was stored, so
a product renumbered or removed in the ERP is seen again at the latest that long after.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ExpiringMap(Generic[K, V]):
    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        if self._clock() - stored_at >= self.ttl_s:
            del self._entries[key]
            return None
        return value

    def found(self, keys: Iterable[K]) -> dict[K, V]:
        """The keys held and not expired, with their values."""
        result: dict[K, V] = {}
        for key in keys:
            value = self.get(key)
            if value is not None:
                result[key] = value
        return result

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (self._clock(), value)

    def update(self, values: dict[K, V]) -> None:
        for key, value in values.items():
            self.put(key, value)

    def prune(self) -> None:
        """Drops every expired entry (`get` drops only the ones it is asked for)."""
        now = self._clock()
        self._entries = {
            key: entry for key, entry in self._entries.items() if now - entry[0] < self.ttl_s
        }

    def forget(self, keys: Iterable[K]) -> None:
        for key in keys:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
