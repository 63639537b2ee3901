"""A retried activity's later failures log one line each; the first keeps its traceback."""

from __future__ import annotations

import io
import logging

from commerce_sync.ops.activity_logs import ACTIVITY_LOGGER, install_repeated_failure_trimming


def _log_failure(attempt: int) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger(ACTIVITY_LOGGER)
    logger.addHandler(handler)
    try:
        try:
            raise TimeoutError("GET /SalesOrder timed out after 15 s")
        except TimeoutError:
            logger.warning(
                "Completing activity as failed",
                exc_info=True,
                extra={"temporal_activity": {"attempt": attempt, "activity_type": "erp.x"}},
            )
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_later_attempts_log_one_line_and_the_first_its_traceback() -> None:
    install_repeated_failure_trimming()
    install_repeated_failure_trimming()  # idempotent
    assert len(logging.getLogger(ACTIVITY_LOGGER).filters) == 1

    first = _log_failure(1)
    assert "Traceback" in first and first.count("\n") > 3

    later = _log_failure(7)
    assert later == (
        "Completing activity as failed [TimeoutError: GET /SalesOrder timed out after 15 s]\n"
    )
