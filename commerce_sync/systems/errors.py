"""How a connector reports a failed call.

Connectors classify and raise, and the activity layer turns the class into a Temporal
retry decision (`activities/errors.py`). The one retry a connector makes itself is of a
read the system turned away for a moment (`systems/read_retries.py`).
"""

from __future__ import annotations


class ConnectorError(Exception):
    """A call to an outside system failed."""

    retryable: bool = False

    def __init__(
        self,
        system: str,
        message: str,
        *,
        status: int | None = None,
        field: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.system = system
        self.message = message
        self.status = status
        self.field = field
        self.retry_after_s = retry_after_s
        where = f" [{field}]" if field else ""
        code = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{system}{code}{where}: {message}")


class TransientError(ConnectorError):
    """Timeouts, connection errors, 5xx: try again later."""

    retryable = True


class EarlierCreateInFlight(TransientError):
    """An earlier attempt sent this create and got no answer; its request may still land,
    so no second one is sent yet (`systems/uncertain_creates.py`). An answer of ours, not
    the system's: it says nothing about the system being reachable."""


class ThrottledError(TransientError):
    """The system's rate limit (Brightpearl 503, Acumatica 429); `retry_after_s` says when."""


class BudgetQueued(ThrottledError):
    """No call was sent: the call budget's queue ahead of this call is longer than what
    is left of the activity attempt (`systems/budget.py`). Not a failure of the system
    or of the step: the attempt hands its place back and its retry waits again, in the
    same place (its run's age is kept in the app database)."""


class PermanentError(ConnectorError):
    """Retrying the same call cannot succeed."""


class ValidationFailed(PermanentError):
    """400/422: the system refused the data; `field` names what it refused."""


class AuthenticationFailed(PermanentError):
    """401/403: credentials are wrong or lack permission."""


class NotFound(PermanentError):
    """The record does not exist."""
