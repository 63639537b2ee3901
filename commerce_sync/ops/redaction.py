"""Keep PII out of third-party log lines.

httpx logs every request at INFO with its full URL, and the connectors look customers up
by email in the query string (Kentico `where=CustomerEmail = ...`, Acumatica
`$filter=MainContact/Email eq ...`). The filter below drops the query from those lines:
method, host, path and status stay, which is what an operator needs from them.
"""

from __future__ import annotations

import logging

import httpx

REDACTED_QUERY = "?<query redacted>"


class UrlQueryRedaction(logging.Filter):
    """Replace the query of every URL argument of a record with a marker."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_without_query(arg) for arg in record.args)
        return True


def _without_query(arg: object) -> object:
    if isinstance(arg, httpx.URL) and arg.query:
        return str(arg.copy_with(query=None)) + REDACTED_QUERY
    # Another filter (the X-Cart key redaction) may have turned the URL into text already.
    if isinstance(arg, str) and arg.startswith(("http://", "https://")) and "?" in arg:
        return arg.split("?", 1)[0] + REDACTED_QUERY
    return arg


_FILTER = UrlQueryRedaction()


def install_log_redaction() -> None:
    """Idempotent; the API and the worker call it as they build themselves."""
    logger = logging.getLogger("httpx")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
