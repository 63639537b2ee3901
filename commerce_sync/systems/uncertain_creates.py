"""Creates whose answer was lost: no second request while the first may still land.

A create that times out may still be done by the system after the client has given up
(the request was queued or held on the way). An activity retry that looks for the
record, finds nothing yet and sends the create again makes a twin when the first
request lands afterwards: no look-up can see a request that has not landed.

So a connector whose system gives no idempotency key for the create:
1. writes a deterministic reference into the record (or compares its content), and
   looks for it before every create: found, it is reused;
2. notes in the activity's attempt memory (`systems/attempts.py`, kept in heartbeat
   details across retries) when it sent the create (`before_create`);
3. on a retry that still finds nothing, sends no second create until `settle` has passed
   since the first was sent: it raises `EarlierCreateInFlight` instead, a transient error
   whose retry comes back after a short wait and looks again. The first request, once
   landed, is then found and reused;
4. removes a twin (two records with one reference) at its next write of the record: the
   reconcile for a request that landed later than `settle`.

A create the system answered with a refusal (a throttle's 429/503, a 4xx) did not
land: `sending_create` forgets its send, so the retry posts again at once instead of
waiting out `settle` for a request that is known not to have been done.

`settle` is the pair's `duplicate_check_after`: the time after which the runs already
assume a lost answer's create has landed (pairs.toml). A request that never reached the
system costs the retry that wait, once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from commerce_sync.systems.attempts import AttemptMemory
from commerce_sync.systems.errors import (
    ConnectorError,
    EarlierCreateInFlight,
    PermanentError,
    ThrottledError,
)

POLL_S = 5.0
"""How soon a held-back retry looks again (at most)."""


def before_create(
    memory: AttemptMemory,
    system: str,
    reference: str,
    settle: timedelta,
    *,
    what: str = "record",
) -> None:
    """Call right before sending the create of the record named by `reference`, after a
    look-up for it found nothing. Raises `EarlierCreateInFlight` while an earlier attempt's
    create of the same record, sent less than `settle` ago, may still land; otherwise
    notes this send and returns (send the create)."""
    key = _key(system, reference)
    now = time.time()
    sent = memory.get(key)
    if sent:
        waited = now - float(sent)
        left = settle.total_seconds() - waited
        if left > 0:
            raise EarlierCreateInFlight(
                system,
                f"an earlier attempt's {what} create, sent {waited:.0f} s ago without an "
                f"answer, may still land: not sending a second for {left:.0f} s more",
                retry_after_s=min(left, POLL_S),
            )
    memory.put(key, f"{now:.3f}")


@contextmanager
def sending_create(
    memory: AttemptMemory,
    system: str,
    reference: str,
    settle: timedelta,
    *,
    what: str = "record",
) -> Iterator[None]:
    """`before_create`, then the body sends the create. If the system answers it with a
    refusal (`refused_unprocessed`), the send is forgotten: that request cannot land,
    so a retry needs no wait before it sends again."""
    before_create(memory, system, reference, settle, what=what)
    try:
        yield
    except ConnectorError as exc:
        if refused_unprocessed(exc):
            memory.put(_key(system, reference), "")
        raise


def refused_unprocessed(exc: ConnectorError) -> bool:
    """The system answered and did not do the request: a rate limit's refusal (Brightpearl
    503, Acumatica and the stores' 429) or a 4xx. A timeout has no answer, and another 5xx
    may come after the work was done: both stay uncertain."""
    return exc.status is not None and isinstance(exc, ThrottledError | PermanentError)


def _key(system: str, reference: str) -> str:
    return f"create-sent:{system}:{reference}"
