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

`settle` is the pair's `duplicate_check_after`: the time after which the runs already
assume a lost answer's create has landed (pairs.toml). A request that never reached the
system costs the retry that wait, once.
"""

from __future__ import annotations

import time
from datetime import timedelta

from commerce_sync.systems.attempts import AttemptMemory
from commerce_sync.systems.errors import EarlierCreateInFlight

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
    key = f"create-sent:{system}:{reference}"
    now = time.time()
    sent = memory.get(key)
    if sent is not None:
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
