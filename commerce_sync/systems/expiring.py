"""A per-process map whose entries expire: reference data an ERP connector has read
(a SKU's product id) reused by the next order instead of read again.

Only what was found is kept: a SKU the ERP did not know is asked again next time (it
may have been added since). An entry lives `ttl_s` seconds from when it was stored, so
a product renumbered or removed in the ERP is seen again at the latest that long after.

`get_or_fetch` reads what is missing once however many callers ask for it at the same
time: under a backlog, runs naming the same SKU wait side by side for their lookups, and
each would otherwise search for it before the first answer is kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_FAILED = object()
"""What a caller waiting on another's fetch is told when that fetch failed or was
cancelled: it fetches for itself (its own attempt, its own budget deadline)."""


class ExpiringMap(Generic[K, V]):
    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._fetching: dict[K, asyncio.Future[object]] = {}

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

    async def get_or_fetch(
        self, keys: list[K], fetch: Callable[[list[K]], Awaitable[dict[K, V]]]
    ) -> dict[K, V]:
        """The values of `keys` that exist: those held, the rest through `fetch` (which
        answers the keys it found), kept. A key another caller of this event loop is
        fetching right now is waited for, not fetched again."""
        known = self.found(keys)
        loop = asyncio.get_running_loop()
        theirs: dict[K, asyncio.Future[object]] = {}
        mine: list[K] = []
        for key in dict.fromkeys(keys):
            if key in known:
                continue
            pending = self._fetching.get(key)
            if pending is not None and pending.get_loop() is loop and not pending.done():
                theirs[key] = pending
            else:
                mine.append(key)
        if mine:
            known.update(await self._fetch(mine, fetch, loop))
        if theirs:
            answers = await asyncio.gather(*(asyncio.shield(f) for f in theirs.values()))
            again = []
            for key, answer in zip(theirs, answers, strict=True):
                if answer is _FAILED:
                    again.append(key)
                elif answer is not None:
                    known[key] = answer  # type: ignore[assignment]
            if again:
                known.update(await self._fetch(again, fetch, loop))
        return known

    async def _fetch(
        self,
        keys: list[K],
        fetch: Callable[[list[K]], Awaitable[dict[K, V]]],
        loop: asyncio.AbstractEventLoop,
    ) -> dict[K, V]:
        futures = {key: loop.create_future() for key in keys}
        self._fetching.update(futures)
        found: dict[K, V] | None = None
        try:
            found = await fetch(keys)
            self.update(found)
            return found
        finally:
            for key, future in futures.items():
                if not future.done():
                    future.set_result(_FAILED if found is None else found.get(key))
                if self._fetching.get(key) is future:
                    del self._fetching[key]

    def __len__(self) -> int:
        return len(self._entries)
