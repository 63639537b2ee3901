"""Store records an order listing answered, kept a short while for the read that follows.

The inventory push lists the store's changed orders and then asks for the lines of
those it must classify (`StorePort.order_reservations`): two activities of one cycle,
one right after the other. Where the listing answered whole records (X-Cart's order
listing) or the rows the follow-up needs (Kentico's `COM_Order` rows), reading them
again is a repeated lookup inside one run. The port keeps what the listing answered
for `LISTED_TTL_S` and reads only what it lacks: a worker that did not make the
listing (another replica), or a follow-up later than that, reads as before.

A kept record is as fresh as the listing, which is what the push classified by: a
change after it moves the order's modification stamp past the push's cursor, so the
next listing lists the order again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

LISTED_TTL_S = 60.0
"""How long a listed record may stand in for a read of it."""

Record = dict[str, Any]


@dataclass
class ListedRecords:
    """Records by id from the latest listings, each dropped `ttl_s` after it was listed."""

    ttl_s: float = LISTED_TTL_S
    clock: Callable[[], float] = time.monotonic
    _records: dict[str, tuple[float, Record]] = field(default_factory=dict)

    def keep(self, records: Iterable[tuple[str, Record]]) -> None:
        now = self.clock()
        self._records = {
            key: kept for key, kept in self._records.items() if now - kept[0] < self.ttl_s
        }
        for key, record in records:
            self._records[key] = (now, record)

    def take(self, keys: Iterable[str]) -> tuple[dict[str, Record], list[str]]:
        """The kept records of `keys`, and the keys (in order, once each) it lacks."""
        now = self.clock()
        found: dict[str, Record] = {}
        missing: list[str] = []
        for key in dict.fromkeys(keys):
            kept = self._records.get(key)
            if kept is not None and now - kept[0] < self.ttl_s:
                found[key] = kept[1]
            else:
                missing.append(key)
        return found, missing
