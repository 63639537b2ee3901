"""OpenTelemetry traces: webhook request -> workflow -> activities -> outgoing HTTP.

- the API's FastAPI app is instrumented (a server span per request);
- every Temporal client carries `TracingInterceptor`, which puts the span context in
  the workflow's headers; a worker built on that client uses it too, so the workflow's
  and the activities' spans join the request's trace;
- httpx is instrumented process-wide, so each connector call is a client span (and
  carries `traceparent` on to the system).

Span attributes must not carry what logs may not: the connectors put the X-Cart API key
and customers' emails in query strings, and Brightpearl's webhook proof is a token in the
path. The hooks below drop every outgoing URL's query and mask that token on server spans.

Spans are exported by OTLP/HTTP only when `COMMERCE_SYNC_OTLP_ENDPOINT` or the
standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set; without one the global tracer provider
stays the no-op default (or whatever the host process installed, as tests do).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span
from temporalio.contrib.opentelemetry import TracingInterceptor

from commerce_sync.config.settings import Settings
from commerce_sync.ops.access_log import mask_webhook_token

_lock = threading.Lock()
_configured = False


def otlp_traces_url(settings: Settings) -> str | None:
    """The OTLP/HTTP traces URL: our setting first, then the standard variable (both are
    base URLs such as http://collector:4318, as the OTLP spec defines)."""
    base = settings.otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not base:
        return None
    return f"{base.rstrip('/')}/v1/traces"


def configure_tracing(settings: Settings, service: str) -> None:
    """Install the OTLP exporter (once per process, when configured) and instrument httpx."""
    global _configured
    with _lock:
        if not _configured:
            url = otlp_traces_url(settings)
            if url is not None:
                provider = TracerProvider(resource=Resource.create({"service.name": service}))
                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
                trace.set_tracer_provider(provider)
            _configured = True
        instrumentor = HTTPXClientInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(
                request_hook=redact_client_span, async_request_hook=redact_client_span_async
            )


# Both the old and the current HTTP semantic conventions, whichever the instrumentation set.
_CLIENT_URL_KEYS = ("http.url", "url.full")
_SERVER_PATH_KEYS = ("http.target", "url.path", "http.url", "url.full")


def redact_client_span(span: Span, request: Any) -> None:
    """An outgoing call's URL without its query (the query can hold keys and emails)."""
    if not span.is_recording():
        return
    url = httpx.URL(str(request.url))
    if url.query:
        redacted = str(url.copy_with(query=None))
        for key in _CLIENT_URL_KEYS:
            span.set_attribute(key, redacted)


async def redact_client_span_async(span: Span, request: Any) -> None:
    redact_client_span(span, request)


def redact_server_span(span: Span, scope: dict[str, Any]) -> None:
    """A request's path with the Brightpearl webhook token masked."""
    if not span.is_recording():
        return
    path = str(scope.get("path", ""))
    if mask_webhook_token(path) == path:
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in _SERVER_PATH_KEYS:
        value = attributes.get(key)
        if isinstance(value, str):
            span.set_attribute(key, mask_webhook_token(value))


def instrument_app(app: FastAPI) -> None:
    """A server span for every request; /metrics and health probes are left out."""
    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls="/metrics,/healthz,/readyz",
        server_request_hook=redact_server_span,
    )


def tracing_interceptor() -> TracingInterceptor:
    """For `Client.connect(interceptors=...)`; workers built on that client use it too."""
    return TracingInterceptor()
