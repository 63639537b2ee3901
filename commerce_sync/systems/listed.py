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
from typing import Any

from commerce_sync.systems.expiring import ExpiringMap

LISTED_TTL_S = 60.0
"""How long a listed record may stand in for a read of it."""

Record = dict[str, Any]


class ListedRecords:
    """Records by id from the latest listings, each dropped `ttl_s` after it was listed."""

    def __init__(
        self, ttl_s: float = LISTED_TTL_S, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._records: ExpiringMap[str, Record] = ExpiringMap(ttl_s, clock=clock)

    def keep(self, records: Iterable[tuple[str, Record]]) -> None:
        """Keeps a listing's records (and lets go of the expired ones of earlier ones)."""
        self._records.prune()
        self._records.update(dict(records))

    def take(self, keys: Iterable[str]) -> tuple[dict[str, Record], list[str]]:
        """The kept records of `keys`, and the keys (in order, once each) it lacks."""
        wanted = list(dict.fromkeys(keys))
        found = self._records.found(wanted)
        return found, [key for key in wanted if key not in found]
