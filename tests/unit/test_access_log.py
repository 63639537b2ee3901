"""The tokens in URL paths (the Brightpearl webhook's, the dev Web UI's codec endpoint's)
are masked in uvicorn's access log, also after uvicorn has set up logging the way
`commerce-sync api` runs it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import uvicorn

from commerce_sync.ops.access_log import install_access_log_redaction, mask_webhook_token

UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture
def uvicorn_logging() -> Iterator[None]:
    """uvicorn's loggers are put back after the test (it sets them up as `uvicorn.run`)."""
    saved = {
        name: (list(lg.handlers), lg.level, lg.propagate, lg.disabled)
        for name in UVICORN
        for lg in [logging.getLogger(name)]
    }
    try:
        yield
    finally:
        for name, (handlers, level, propagate, disabled) in saved.items():
            lg = logging.getLogger(name)
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled


@pytest.mark.usefixtures("uvicorn_logging")
def test_the_token_is_masked_and_the_rest_of_the_line_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert mask_webhook_token("/webhooks/brightpearl/s3cr3t?x=1") == "/webhooks/brightpearl/***?x=1"
    assert mask_webhook_token("/webhooks/kentico") == "/webhooks/kentico"
    # The dev server's Web UI's codec endpoint carries a token too.
    assert mask_webhook_token("/codec/ui/t0ken/decode") == "/codec/ui/***/decode"
    assert mask_webhook_token("/codec/decode") == "/codec/decode"
    install_access_log_redaction()  # as `create_app` does, before uvicorn starts
    # its dictConfig, as `uvicorn.run` does (the app, an import string, is never loaded)
    uvicorn.Config(app="unused:app", log_level="info")
    install_access_log_redaction()  # idempotent
    access = logging.getLogger("uvicorn.access")
    assert len([f for f in access.filters if type(f).__name__ == "WebhookTokenRedaction"]) == 1
    access.addHandler(caplog.handler)  # uvicorn's access logger does not propagate
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "POST",
            "/webhooks/brightpearl/s3cr3t-token",
            "1.1",
            202,
        )
    [record] = [r for r in caplog.records if r.name == "uvicorn.access"]
    assert record.getMessage() == ('127.0.0.1:5000 - "POST /webhooks/brightpearl/*** HTTP/1.1" 202')


@pytest.mark.usefixtures("uvicorn_logging")
def test_queued_access_lines_are_written_off_the_caller_thread_whole_and_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from uvicorn.logging import AccessFormatter

    from commerce_sync.ops import access_log

    monkeypatch.setattr(access_log, "_listener", None)
    install_access_log_redaction()
    uvicorn.Config(app="unused:app", log_level="info")
    written: list[tuple[str, str]] = []
    done = threading.Event()

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            written.append((threading.current_thread().name, self.format(record)))
            done.set()

    collect = Collect()
    collect.setFormatter(AccessFormatter('%(client_addr)s "%(request_line)s" %(status_code)s'))
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = [collect]
    access_log.queue_access_log()
    access_log.queue_access_log()  # idempotent
    try:
        assert [type(h).__name__ for h in access.handlers] == ["_HandOver"]
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "POST",
            "/webhooks/brightpearl/s3cr3t-token",
            "1.1",
            202,
        )
        assert done.wait(5)
    finally:
        access_log.stop_access_log_queue()
    [(thread, line)] = written
    assert thread != threading.current_thread().name
    assert line == '127.0.0.1:5000 "POST /webhooks/brightpearl/*** HTTP/1.1" 202 Accepted'
