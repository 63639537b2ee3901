"""Each outside system's call budget as one row of the app database, shared by every
worker process of the deployment.

Why a row in the app database: every worker of a deployment already shares it (the SQLite
file of the embedded default, Postgres when workers run on several machines), so the
budget holds across processes and machines with nothing new to run. Temporal's own
`max_task_queue_activities_per_second` counts activities, not calls (an activity makes
1-3), splits its rate over the queue's partitions (a lone task waited 0.1-2.9 s), and
hands tasks out first in, first out; Temporal's priority keys order tasks but do not rate
them. A Redis or a separate rate service would be one more thing to run and to lose.

The bucket is a GCRA (generic cell rate algorithm), the token bucket written as one
number: `ready_at`, the time at which the bucket would be full again if calls went out
exactly at the sustained rate. A call is granted while `ready_at - tolerance <= now`
(`tolerance = (burst - 1) x interval`), and moves `ready_at` to
`max(ready_at, now) + interval`. One conditional UPDATE grants a call: atomic in SQLite
(the database's write lock) and in Postgres (the row's lock), with no read-modify-write
race between processes. In any window of `W` seconds at most `W / interval + burst`
calls are granted, which `CallBudgetSettings` keeps within the system's budget.

Priorities across processes: a process whose most urgent waiting call was refused
records it in `claim_priority` / `claim_until` (until its next slot, one interval on);
meanwhile a less urgent call from any process is refused, so a process full of catalog
calls cannot take the slots an order's call in another process waits for. A claim lapses
by itself when nobody renews it.

A system's throttle answer (Brightpearl 503 with `brightpearl-next-throttle-period`, a
429 with Retry-After) moves `ready_at` past the pause for every process (`hold`).

Times are Unix seconds from each process's clock (`time.time()`): machines sharing a
Postgres budget must keep their clocks in step (NTP); a skew of s seconds can let one
machine's calls run s seconds early, which the budget's `margin` absorbs for small s.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, and_, case, or_, select, update
from sqlalchemy.exc import IntegrityError

from commerce_sync.store.models import ApiBudget

TABLE = ApiBudget.__table__  # type: ignore[attr-defined]
MIN_WAIT_S = 0.001


@dataclass(frozen=True)
class BucketShape:
    """The sustained spacing of calls and how many may go back to back."""

    interval_s: float
    burst: int

    @property
    def tolerance_s(self) -> float:
        return (self.burst - 1) * self.interval_s


class SharedBucket:
    """One system's budget in the app database; every method is one short transaction.

    The methods block (database I/O): call them from a thread (`asyncio.to_thread`).
    """

    def __init__(self, engine: Engine, system: str, shape: BucketShape) -> None:
        self.engine = engine
        self.system = system
        self.shape = shape
        self._ensure_row()

    def _ensure_row(self) -> None:
        with self.engine.begin() as conn:
            found = conn.execute(select(TABLE.c.system).where(TABLE.c.system == self.system))
            if found.first() is not None:
                return
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    TABLE.insert().values(
                        system=self.system, ready_at=0.0, claim_priority=0, claim_until=0.0
                    )
                )
        except IntegrityError:
            pass  # another process made it first

    def take(self, now: float, priority: int) -> float:
        """Grant one call at `now` (0.0), or say how many seconds until one may be granted.

        `priority`: lower is more urgent. A refused caller that is at least as urgent as
        the current claim renews the claim for itself.
        """
        col = TABLE.c
        shape = self.shape
        with self.engine.begin() as conn:
            granted = conn.execute(
                update(TABLE)
                .where(
                    col.system == self.system,
                    col.ready_at - shape.tolerance_s <= now,
                    or_(col.claim_until <= now, col.claim_priority >= priority),
                )
                .values(
                    ready_at=case((col.ready_at > now, col.ready_at), else_=now) + shape.interval_s
                )
            )
            if granted.rowcount == 1:
                return 0.0
            row = conn.execute(
                select(col.ready_at, col.claim_priority, col.claim_until).where(
                    col.system == self.system
                )
            ).one()
            slot_wait = max(0.0, float(row.ready_at) - shape.tolerance_s - now)
            claimed_by_other = bool(row.claim_until > now and row.claim_priority < priority)
            if claimed_by_other:
                return max(MIN_WAIT_S, slot_wait, float(row.claim_until) - now)
            conn.execute(
                update(TABLE)
                .where(col.system == self.system)
                .values(claim_priority=priority, claim_until=now + slot_wait + shape.interval_s)
            )
            return max(MIN_WAIT_S, slot_wait)

    def hold(self, until: float) -> None:
        """Grant nothing before `until` (the system said it is throttling us)."""
        col = TABLE.c
        ready = until + self.shape.tolerance_s
        with self.engine.begin() as conn:
            conn.execute(
                update(TABLE)
                .where(and_(col.system == self.system, col.ready_at < ready))
                .values(ready_at=ready)
            )
