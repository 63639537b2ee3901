"""Keep the tokens that travel in URL paths out of the access log.

Brightpearl cannot sign its webhooks, so its proof is a token in the URL path
(`POST /webhooks/brightpearl/{token}`); the dev server's Web UI cannot send a key, so
its codec endpoint carries one (`POST /codec/ui/{token}/decode`). uvicorn's access log
prints every request's path: the filter below masks those path segments on the
`uvicorn.access` logger; the rest of the line (client, method, status) stays.

`commerce-sync api` writes those lines from a thread of their own (`queue_access_log`),
so a busy API's event loop never waits on its log; `api_access_log = false` turns them
off altogether.
"""

from __future__ import annotations

import atexit
import logging
import queue
import re
from logging.handlers import QueueHandler, QueueListener

_TOKEN_PATH = re.compile(r"(/webhooks/brightpearl/|/codec/ui/)[^/?#\s\"]+")
_MARKERS = ("/webhooks/brightpearl/", "/codec/ui/")
MASK = "***"


def mask_webhook_token(text: str) -> str:
    return _TOKEN_PATH.sub(rf"\g<1>{MASK}", text)


class WebhookTokenRedaction(logging.Filter):
    """Mask the token in the record's message and in each of its text arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and any(m in record.msg for m in _MARKERS):
            record.msg = mask_webhook_token(record.msg)
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                mask_webhook_token(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


_FILTER = WebhookTokenRedaction()


def install_access_log_redaction() -> None:
    """Idempotent. Logger filters outlive uvicorn's logging setup (`dictConfig` replaces
    handlers, not filters), so installing it before the server starts is enough."""
    logger = logging.getLogger("uvicorn.access")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


class _HandOver(QueueHandler):
    """Hands the record over as it is: uvicorn's access formatter reads the request's
    parts from `record.args`, which the stock `prepare` would have merged away."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


_listener: QueueListener | None = None


def queue_access_log() -> None:
    """Write uvicorn's access lines from a thread of their own: the event loop only
    builds the record and hands it over (the token redaction, a logger filter, runs
    before). Idempotent; the lines still queued are written at exit."""
    global _listener
    logger = logging.getLogger("uvicorn.access")
    handlers = [h for h in logger.handlers if not isinstance(h, QueueHandler)]
    if _listener is not None or not handlers:
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = QueueListener(records, *handlers, respect_handler_level=True)
    logger.handlers[:] = [_HandOver(records)]
    _listener.start()
    atexit.register(stop_access_log_queue)


def stop_access_log_queue() -> None:
    """Write what is still queued and stop the writing thread (idempotent)."""
    global _listener
    listener, _listener = _listener, None
    if listener is not None:
        listener.stop()
