"""Keep a retried activity's failures from flooding the logs.

The SDK logs every failed attempt as a warning with its full traceback. A system that is
down for an hour retries each of its calls hundreds of times, so the traceback of the
first attempt is kept and later attempts log one line (attempt number, error type and
message), enough to follow the retries; the run's history keeps every failure anyway.
"""

from __future__ import annotations

import logging

ACTIVITY_LOGGER = "temporalio.activity"
_SUMMARY_CHARS = 300


class RepeatedFailureTrimmer(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        details = getattr(record, "temporal_activity", None)
        if not record.exc_info or not isinstance(details, dict):
            return True
        if int(details.get("attempt", 1)) <= 1:
            return True
        error = record.exc_info[1]
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
