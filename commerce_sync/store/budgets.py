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

Fair across processes: each process records the most urgent call it is waiting to send
as its row of `api_budget_waiters` (priority, and `since`: when that call's run first
waited, from `api_budget_runs`, the same in every process), renewed while it waits. A
slot is granted to no caller while another process's live row is ahead of it (more
urgent, or as urgent and older), so slots go out in one order across the deployment, as
if every waiting call were in one queue: a process full of catalog calls cannot take the
slots an order's call in another process waits for, and a run that has started finishes
before newer runs, whichever worker each of its steps lands on. A process's row goes
when it stops waiting; a dead process's lapses by itself (`expires_at`).

A system's throttle answer (Brightpearl 503 with `brightpearl-next-throttle-period`, a
429 with Retry-After) moves `ready_at` past the pause for every process (`hold`).

Times are Unix seconds from each process's clock (`time.time()`): machines sharing a
Postgres budget must keep their clocks in step (NTP); a skew of s seconds can let one
machine's calls run s seconds early, which the budget's `margin` absorbs for small s.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    case,
    delete,
    exists,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from commerce_sync.store.models import ApiBudget, ApiBudgetRun, ApiBudgetWaiter

TABLE = ApiBudget.__table__  # type: ignore[attr-defined]
WAITERS = ApiBudgetWaiter.__table__  # type: ignore[attr-defined]
RUNS = ApiBudgetRun.__table__  # type: ignore[attr-defined]
MIN_WAIT_S = 0.001
CLAIM_RENEWED_WITHIN_S = 1.0
"""A waiting process asks again at least this often (`systems/budget.py`, MAX_SLEEP_S)."""
CLAIM_GRACE_S = 2.0
"""A waiting process's row outlives its next ask by this much: it lapses only when the
process stopped asking (died), within seconds, not while it sleeps until its next ask."""
LAPSED_KEPT_S = 60.0
"""A waiting row lapsed longer ago than this is deleted when another row of its system is
recorded: a process that died while waiting, a run whose kept place no retry took up.
They are ignored once lapsed, but every grant looks at every row of its system: with
10,000 lapsed rows a grant took 1.1 ms of CPU on SQLite, against 0.04-0.1 ms
(`bench.budget_grants --lapsed 10000`). A minute, not at once: machines sharing a
Postgres budget may disagree on the time."""
RUN_MEMORY_S = 24 * 3600.0
"""Runs first seen waiting longer ago than this are forgotten (pruned now and then)."""
PRUNE_EVERY = 500


_INSERTS = itertools.count(1)


def kept_place(run: str) -> str:
    """The waiting callers' row of a run whose call handed its place back."""
    return f"run:{run}"[:64]


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
        self.holder = uuid.uuid4().hex  # this process's budget of the system
        # Whether this process's row of waiting callers may exist: only this process
        # writes it, so a grant need not delete a row that was never recorded.
        self._row_recorded = False
        self._build_statements()
        self._ensure_row()

    def _build_statements(self) -> None:
        """Every call of `take` runs these; built once with bound parameters, they are not
        rebuilt (and their cache keys not recomputed) per call, which was about half of a
        grant's CPU time."""
        col, waiter = TABLE.c, WAITERS.c
        now = bindparam("now", type_=Float)
        priority = bindparam("priority", type_=Integer)
        since = bindparam("since", type_=Float)
        until = bindparam("until", type_=Float)
        ahead = exists().where(
            waiter.system == self.system,
            waiter.holder != self.holder,
            waiter.expires_at > now,
            or_(
                waiter.priority < priority, and_(waiter.priority == priority, waiter.since < since)
            ),
        )
        self._grant = (
            update(TABLE)
            .where(col.system == self.system, col.ready_at - self.shape.tolerance_s <= now, ~ahead)
            .values(
                ready_at=case((col.ready_at > now, col.ready_at), else_=now) + self.shape.interval_s
            )
        )
        self._ready_at = select(col.ready_at).where(col.system == self.system)
        mine = and_(waiter.system == self.system, waiter.holder == self.holder)
        self._forget = delete(WAITERS).where(mine)
        self._prune = delete(WAITERS).where(
            waiter.system == self.system,
            waiter.expires_at < bindparam("lapsed", type_=Float),
        )
        self._forget_kept = delete(WAITERS).where(
            waiter.system == self.system, waiter.holder == bindparam("kept", type_=String)
        )
        self._renew = (
            update(WAITERS)
            .where(mine)
            .values(
                priority=priority,
                since=since,
                expires_at=until,
            )
        )
        self._enter = WAITERS.insert().values(
            system=self.system,
            holder=self.holder,
            priority=priority,
            since=since,
            expires_at=until,
        )

    def _ensure_row(self) -> None:
        with self.engine.begin() as conn:
            found = conn.execute(select(TABLE.c.system).where(TABLE.c.system == self.system))
            if found.first() is not None:
                return
        try:
            with self.engine.begin() as conn:
                conn.execute(TABLE.insert().values(system=self.system, ready_at=0.0))
        except IntegrityError:
            pass  # another process made it first

    def take(
        self,
        now: float,
        priority: int,
        since: float | None = None,
        *,
        wait: bool = True,
        run: str | None = None,
    ) -> float:
        """Grant one call at `now` (0.0), or say how many seconds until one may be granted.

        `priority`: lower is more urgent; `since`: when the caller's run first waited
        (`run_since`; None: now, a newcomer). A caller is granted a free slot only when no
        other process waits with a call ahead of it; refused, it records itself as this
        process's waiting call, so no caller behind it takes the slot it waits for.
        `wait=False`: a refused caller records nothing (it asks again through the
        process's queue, whose asks alone write the process's row).
        """
        shape = self.shape
        since = now if since is None else since
        with self.engine.begin() as conn:
            granted = conn.execute(self._grant, {"now": now, "priority": priority, "since": since})
            if granted.rowcount == 1:
                self._forget_waiter(conn)
                if run is not None:  # the place its last attempt kept is taken up
                    conn.execute(self._forget_kept, {"kept": kept_place(run)})
                return 0.0
            ready_at = conn.execute(self._ready_at).scalar_one()
            slot_wait = max(0.0, float(ready_at) - shape.tolerance_s - now)
            # A free slot refused: a caller ahead, in another process, is about to take it;
            # ask again at the slot after.
            pause = slot_wait if slot_wait > 0.0 else shape.interval_s
            if wait:
                until = now + min(pause, CLAIM_RENEWED_WITHIN_S) + CLAIM_GRACE_S
                self._record_waiter(conn, now, priority, since, until)
            return max(MIN_WAIT_S, pause)

    def stop_waiting(self) -> None:
        """This process waits for no call of this system any more: drop its row."""
        with self.engine.begin() as conn:
            self._forget_waiter(conn, always=True)

    def keep_place(
        self, run: str, priority: int, since: float, until: float, *, now: float
    ) -> None:
        """Keep `run`'s place among the waiting callers until `until`: its call handed its
        place back (its attempt ends) and its retry is on the way; meanwhile no caller
        behind it takes a slot. Its retry's grant, in any process, ends it."""
        waiter = WAITERS.c
        holder = kept_place(run)
        values = {"priority": priority, "since": since, "expires_at": until}
        mine = and_(waiter.system == self.system, waiter.holder == holder)
        try:
            with self.engine.begin() as conn:
                if conn.execute(update(WAITERS).where(mine).values(**values)).rowcount == 0:
                    conn.execute(
                        WAITERS.insert().values(system=self.system, holder=holder, **values)
                    )
                    self._prune_lapsed(conn, now)
        except IntegrityError:
            pass  # another attempt of the run kept it at the same moment: one is enough

    def run_since(self, run: str, now: float) -> float:
        """When `run` first waited for a call (`now` if this is the first time), the same
        answer in every process."""
        runs = RUNS.c
        with self.engine.begin() as conn:
            found = conn.execute(select(runs.since).where(runs.run == run)).scalar_one_or_none()
        if found is not None:
            return float(found)
        try:
            with self.engine.begin() as conn:
                conn.execute(RUNS.insert().values(run=run, since=now))
                if next(_INSERTS) % PRUNE_EVERY == 0:
                    conn.execute(delete(RUNS).where(runs.since < now - RUN_MEMORY_S))
        except IntegrityError:  # another process recorded it first: its time counts
            with self.engine.begin() as conn:
                return float(conn.execute(select(runs.since).where(runs.run == run)).scalar_one())
        return now

    def _record_waiter(
        self, conn: Connection, now: float, priority: int, since: float, until: float
    ) -> None:
        values = {"priority": priority, "since": since, "until": until}
        self._row_recorded = True
        if conn.execute(self._renew, values).rowcount == 0:
            # Only this process writes its own row: no other transaction inserts it.
            conn.execute(self._enter, values)
            self._prune_lapsed(conn, now)

    def _prune_lapsed(self, conn: Connection, now: float) -> None:
        conn.execute(self._prune, {"lapsed": now - LAPSED_KEPT_S})

    def _forget_waiter(self, conn: Connection, *, always: bool = False) -> None:
        if self._row_recorded or always:
            conn.execute(self._forget)
            self._row_recorded = False

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
