"""Keep a retried activity's failures from flooding the logs.

The SDK logs every failed attempt as a warning with its full traceback. A system that is
down for an hour retries each of its calls hundreds of times, so the traceback of the
first attempt is kept and later attempts log one line (attempt number, error type and
message), enough to follow the retries; the run's history keeps every failure anyway.

An attempt that handed its place in a call budget's queue back (`BudgetQueued`: still
queued when its attempt ends, nothing sent, `systems/budget.py`) did not fail: it is
logged as one INFO line, not a warning with a traceback.
"""

from __future__ import annotations

import logging

from temporalio.exceptions import ApplicationError

ACTIVITY_LOGGER = "temporalio.activity"
_SUMMARY_CHARS = 300


BUDGET_QUEUED = "BudgetQueued"


class RepeatedFailureTrimmer(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        details = getattr(record, "temporal_activity", None)
        if not record.exc_info or not isinstance(details, dict):
            return True
        error = record.exc_info[1]
        if isinstance(error, ApplicationError) and error.type == BUDGET_QUEUED:
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.msg = "Activity attempt still queued for its call budget, retried (nothing sent)"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            return True
        if int(details.get("attempt", 1)) <= 1:
            return True
        summary = " ".join(str(error).split())[:_SUMMARY_CHARS]
        text = record.getMessage()
        record.msg = f"{text} [{type(error).__name__}: {summary}]"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


_FILTER = RepeatedFailureTrimmer()


def install_repeated_failure_trimming() -> None:
    """Idempotent; on the SDK's activity logger, which every worker's failures go through."""
    logger = logging.getLogger(ACTIVITY_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
