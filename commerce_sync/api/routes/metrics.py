"""`GET /metrics` (read key), the webhook counter, and the API's tracing."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.middleware.base import RequestResponseEndpoint

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


async def count_webhooks(request: Request, call_next: RequestResponseEndpoint) -> Response:
    """Webhooks received by source and result, from the receiver's own answer."""
    response = await call_next(request)
    parts = request.url.path.strip("/").split("/")
    if request.method == "POST" and len(parts) >= 2 and parts[0] == "webhooks":
        source = parts[1] if parts[1] in WEBHOOK_SOURCES else "unknown"
        metrics.WEBHOOKS_RECEIVED.labels(
            source=source, result=metrics.webhook_result(response.status_code)
        ).inc()
    return response


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Add `/metrics`, the webhook counter and request tracing to the app."""
    app.include_router(router)
    app.middleware("http")(count_webhooks)
    configure_tracing(settings, "commerce-sync-api")
    instrument_app(app)
