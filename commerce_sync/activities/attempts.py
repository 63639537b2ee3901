"""Which attempt of an activity counts as its first.

Several steps send less on their first attempt than on a retry: a create posts without
looking for the record first (no earlier attempt can have made it), a payment is written
without reading the order's payments. A retry looks, because an earlier attempt may have
sent the create and lost its answer.

An attempt that handed its place in a call budget back (`BudgetQueued`) before it sent a
single request made nothing anywhere, so the retry that follows it is still a first one.
Under a backlog most retries are of that kind, and each one that looked first cost
Brightpearl two more calls a new customer (a search before the create and one after)
and an order one (its search by reference), out of a budget of 200 a minute.

The wrapper that turns an attempt's errors into retry decisions (`errors.classified`)
counts the requests the attempt sent (`systems/attempts.counting_requests`, marked by the
call budget as it grants one) and, on a hand-back that sent none, records in the
attempt's heartbeat details that every attempt so far sent nothing. Temporal hands those
details to the next attempt (`ops/heartbeat.py`). A worker that dies mid-attempt sends no
such record, so the attempt after it looks first, as any retry did before.
"""

from __future__ import annotations

from temporalio import activity

from commerce_sync.ops.heartbeat import remember, remembered

NOTHING_SENT_THROUGH = "attempts:nothing-sent-through"
"""Heartbeat memory key: the last attempt number up to which no attempt sent a request."""


def first_attempt() -> bool:
    """True on attempt 1, and on a retry when every earlier attempt handed its budget
    place back without sending anything."""
    attempt = activity.info().attempt
    return attempt == 1 or remembered(NOTHING_SENT_THROUGH) == str(attempt - 1)


HANDED_BACK = "attempts:handed-back"
"""Heartbeat memory key: how many attempts so far handed their budget place back."""


def note_handed_back(requests_sent: int) -> int:
    """An attempt hands its place in a call budget back: when it sent nothing and was a
    first attempt itself, its retry is one too.

    Returns how many of the attempts so far ended otherwise (failed): a workflow whose
    retry policy allows a number of attempts counts only those (`workflows/requeue.py`).
    Without heartbeat memory every earlier attempt counts as failed."""
    attempt = activity.info().attempt
    if requests_sent == 0 and first_attempt():
        remember(NOTHING_SENT_THROUGH, str(attempt))
    handed_back = int(remembered(HANDED_BACK) or 0) + 1
    remember(HANDED_BACK, str(handed_back))
    return max(0, attempt - handed_back)
