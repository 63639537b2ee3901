"""A read the system turned away for a moment is sent again by the connector.

Most activities make several reads (a Kentico order is six GETs: the order, its items,
its addresses, the customer, the customer's addresses, SKU numbers). Were every fault
left to Temporal, one 503 on the fifth read would restart the activity from its first:
the reads that succeeded are paid for again out of the API budget, and with a system
answering one call in five with 429 or 503 a six-read attempt succeeds about one time
in four, so the run backs off for minutes (what `bench/chaos.py` found stuck).

So a GET (safe and idempotent, RFC 9110 §9.2) that the system answered with a throttle
or a 5xx is sent again here, at most `READ_ATTEMPTS` times in all, after the wait the
system asked for (Retry-After, Brightpearl's throttle period) or a short backoff. What
is not retried here, and goes to Temporal's retry as before:
- writes: whether a create or update may be sent again is each connector's decision
  (`uncertain_creates.py`);
- a read with no answer (timeout, connection error): it already spent its timeout, and
  the activity's own timeout is the better judge of another;
- a wait longer than `MAX_READ_WAIT_S` (Brightpearl's spent throttle period, up to 60 s):
  the activity gives its slot back instead of sleeping in it;
- the call budget's own refusal (no status: nothing was sent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from commerce_sync.systems.errors import EarlierCreateInFlight, TransientError

READ_ATTEMPTS = 3
MAX_READ_WAIT_S = 5.0
FIRST_BACKOFF_S = 0.5

T = TypeVar("T")


async def read_with_retries(
    send: Callable[[], Awaitable[T]],
    *,
    attempts: int = READ_ATTEMPTS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`send()`, sent again while the system answers it with a passing fault."""
    for attempt in range(1, attempts + 1):
        try:
            return await send()
        except TransientError as exc:
            wait = _wait_before_again(exc, attempt)
            if attempt == attempts or wait is None:
                raise
        await sleep(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _wait_before_again(exc: TransientError, attempt: int) -> float | None:
    """How long to wait before sending the read again, or None to leave it to Temporal."""
    if exc.status is None or isinstance(exc, EarlierCreateInFlight):
        return None
    asked = exc.retry_after_s
    if asked is not None:
        return float(asked) if asked <= MAX_READ_WAIT_S else None
    return min(FIRST_BACKOFF_S * float(2 ** (attempt - 1)), MAX_READ_WAIT_S)
