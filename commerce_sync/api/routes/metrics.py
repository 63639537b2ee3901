"""`GET /metrics` (read key), the webhook counter, and the API's tracing."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commerce_sync.api.security import ReadKey
from commerce_sync.config.settings import Settings
from commerce_sync.intake.links import TemporalLink
from commerce_sync.ops import metrics
from commerce_sync.ops.tracing import configure_tracing, instrument_app

router = APIRouter(tags=["operations"])

# Label values stay bounded: a made-up source path counts as "unknown".
WEBHOOK_SOURCES = frozenset({"kentico", "xcart", "brightpearl", "acumatica"})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
async def prometheus_metrics(request: Request, _: ReadKey) -> Response:
    """Prometheus metrics of this process, plus dead letters open and approvals waiting,
    read now from the database and from Temporal."""
    temporal: TemporalLink = request.app.state.temporal
    pairs = sorted(request.app.state.pairs)
    body = await metrics.render(request.app.state.engine, temporal.client, pairs)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class WebhookCounter:
    """Webhooks received by source and result, from the receiver's own answer. A plain
    ASGI middleware: it only watches the answer's status go by (Starlette's
    `BaseHTTPMiddleware` would run each request through a task and a stream of its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/webhooks/") or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        parts = path.strip("/").split("/")
        source = parts[1] if parts[1] in WEBHOOK_SOURCES else "unknown"

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                metrics.WEBHOOKS_RECEIVED.labels(
                    source=source, result=metrics.webhook_result(message["status"])
                ).inc()
            await send(message)

        await self.app(scope, receive, counted)


def tracing_on() -> bool:
    """Whether spans go anywhere: an SDK tracer provider was set (OTLP configured, or a
    test's in-memory one). Without one, instrumenting the app would cost every request
    its middleware and make only spans nobody records."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Add `/metrics`, the webhook counter and request tracing (when traced) to the app."""
    app.include_router(router)
    app.add_middleware(WebhookCounter)
    configure_tracing(settings, "commerce-sync-api")
    if tracing_on():
        instrument_app(app)
