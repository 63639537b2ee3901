"""A retried activity's later failures log one line each; the first keeps its traceback."""

from __future__ import annotations

import io
import logging

from temporalio.exceptions import ApplicationError

from commerce_sync.ops.activity_logs import ACTIVITY_LOGGER, install_repeated_failure_trimming


def _log_failure(attempt: int, error: Exception | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(ACTIVITY_LOGGER)
    logger.addHandler(handler)
    try:
        try:
            raise error or TimeoutError("GET /SalesOrder timed out after 15 s")
        except Exception:
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
        "WARNING Completing activity as failed [TimeoutError: GET /SalesOrder timed out after 15 s]\n"
    )


def test_an_attempt_still_queued_for_its_budget_is_no_warning() -> None:
    install_repeated_failure_trimming()
    queued = ApplicationError("xcart: call budget: still queued", type="BudgetQueued")
    for attempt in (1, 4):
        assert _log_failure(attempt, queued) == (
            "INFO Activity attempt still queued for its call budget, retried (nothing sent)\n"
        )
