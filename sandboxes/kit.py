"""What every sandbox shares: the `/_sandbox/` control plane of docs/project-contracts.md §2.

A system's sandbox subclasses `Sandbox`, keeps its own state, serves its real API
routes in `add_api_routes`, and answers errors in its system's own shapes
(`error_response`, `throttled_response`). The kit adds, around the real API only:

- a request log (`GET /_sandbox/requests`) for counting the calls an operation made;
- fault rules (`POST /_sandbox/faults`): a status, a delay, or both, for a share or a
  count of the requests matching `"<METHOD> <path glob>"`;
- a rolling one-minute throttle (`POST /_sandbox/throttle`);
- an outbox of events (`fire`) delivered to the configured webhook target with
  retries, listed at `GET /_sandbox/events` and re-sent byte for byte on
  `POST /_sandbox/events/{id}/redeliver`.

Handlers that change state or fire events must be `async def`: they then run on the
server's event loop one at a time, which is what keeps the state consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import random
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL_PREFIX = "/_sandbox"


class FaultRule(BaseModel):
    """`{"match": "POST /path*", "status": 503, "rate": 0.2, "count": 5, "retry_after_s": 1}`.

    `status` omitted with `delay_s` set only slows the request down (a timeout for a
    client whose timeout is shorter; the request is still served, its answer lost).
    `count` limits how many requests the rule hits.
    """

    match: str
    status: int | None = Field(default=None, ge=100, le=599)
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    count: int | None = Field(default=None, ge=1)
    retry_after_s: float | None = Field(default=None, ge=0)
    delay_s: float = Field(default=0.0, ge=0)
    message: str | None = None
    hits: int = 0

    def matches(self, method: str, path: str, path_and_query: str) -> bool:
        want_method, _, glob = self.match.partition(" ")
        if not glob:
            want_method, glob = "*", want_method
        if want_method not in ("*", method.upper()):
            return False
        return fnmatch.fnmatchcase(path, glob) or fnmatch.fnmatchcase(path_and_query, glob)


class FaultsBody(BaseModel):
    rules: list[FaultRule] | None = None
    seed: int | None = None


class ThrottleBody(BaseModel):
    requests_per_minute: int | None = Field(default=None, ge=1)
    # Test machinery only: the real systems count a minute; a shorter window lets a test
    # overrun the budget in seconds (`requests_per_minute` then counts per window).
    window_s: float = Field(default=60.0, gt=0, le=60.0)


class WebhookTarget(BaseModel):
    """Where this sandbox delivers its webhooks and how it proves itself."""

    url: str
    secret: str | None = None
    token: str | None = None
    header_name: str | None = None
    header_value: str | None = None
    max_attempts: int = Field(default=6, ge=1, le=20)
    subscribe_to: list[str] | None = Field(
        default=None,
        description="Brightpearl only: deliver just the events these name (an event, or"
        " the prefix of one, as its webhook `subscribeTo`); None: every event",
    )


@dataclass
class SandboxEvent:
    id: str
    type: str
    body: bytes
    created_at: datetime
    subject: str = ""
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    delivered: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "subject": self.subject,
            "time": self.created_at.isoformat(),
            "attempts": self.attempts,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered": self.delivered,
            "body": json.loads(self.body) if self.body else None,
        }


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    status: int
    time: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "time": self.time,
        }


@dataclass
class ThrottleWindow:
    """Rolling one-minute window (or `window_s`); `limit=None` means unlimited."""

    limit: int | None
    stamps: deque[float] = field(default_factory=deque)
    window_s: float = 60.0

    def _trim(self, now: float) -> None:
        while self.stamps and now - self.stamps[0] >= self.window_s:
            self.stamps.popleft()

    def take(self) -> bool:
        now = time.monotonic()
        self._trim(now)
        if self.limit is not None and len(self.stamps) >= self.limit:
            return False
        self.stamps.append(now)
        return True

    @property
    def remaining(self) -> int:
        if self.limit is None:
            return 1_000_000
        self._trim(time.monotonic())
        return max(0, self.limit - len(self.stamps))

    @property
    def ms_until_next_period(self) -> int:
        """Milliseconds until the oldest request in the window leaves it."""
        if not self.stamps:
            return 0
        return max(0, int((self.window_s - (time.monotonic() - self.stamps[0])) * 1000))


def route_path(request: Request) -> str:
    """The request path relative to where this sandbox is mounted."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


class ApiCalls:
    """The sandbox's middleware: every API call through `Sandbox._around_api_call`."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.sandbox._around_api_call(scope, receive, send, self.app)


class Sandbox(ABC):
    """One outside system's simulator. Subclasses add state and the real API routes."""

    name: str = "sandbox"
    default_requests_per_minute: int | None = None
    takes_subscriptions = False
    """Whether a webhook target may name its events (`WebhookTarget.subscribe_to`)."""

    def __init__(self) -> None:
        self.requests: list[RequestRecord] = []
        self.faults: list[FaultRule] = []
        self.random = random.Random(0)
        self.throttle = ThrottleWindow(self.default_requests_per_minute)
        self.events: list[SandboxEvent] = []
        self.webhook_target: WebhookTarget | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self.resets = 0
        """How many times `POST /_sandbox/reset` ran: a request held by a delay fault across
        a reset belongs to the system before it (a test that ended) and is dropped."""
        self.reset_state()

    # ---- what a system provides -------------------------------------------------

    @abstractmethod
    def reset_state(self) -> None:
        """Empty the state and load the default seed (the same ten SKUs in every system)."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """The whole state as JSON-able data."""

    @abstractmethod
    def add_api_routes(self, app: FastAPI) -> None:
        """Register the system's real API on `app`."""

    @abstractmethod
    def error_response(
        self, status: int, message: str, retry_after_s: float | None = None
    ) -> Response:
        """An error in this system's own shape (used for injected faults)."""

    def throttled_response(self) -> Response:
        """The answer when the throttle is exhausted; by default a 429 with Retry-After."""
        retry_after = max(1, self.throttle.ms_until_next_period // 1000)
        return self.error_response(429, "rate limit exceeded", float(retry_after))

    def decorate_response(self, headers: MutableHeaders) -> None:  # noqa: B027
        """Add headers every API response carries (Brightpearl's throttle headers)."""

    def delivery_request(
        self, event: SandboxEvent, target: WebhookTarget
    ) -> tuple[str, dict[str, str]]:
        """URL and headers for delivering `event`; by default the plain target URL."""
        return target.url, {"content-type": "application/json"}

    def configure_webhooks(self, target: WebhookTarget) -> None:
        """Check and keep the delivery target; systems refuse targets missing their proof."""
        self.webhook_target = target

    # ---- events -----------------------------------------------------------------

    def fire(
        self, event_type: str, payload: dict[str, Any] | bytes, subject: str = ""
    ) -> SandboxEvent:
        """Record an event and deliver it in the background when a target is set."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        event = SandboxEvent(
            id=f"evt_{uuid.uuid4().hex}",
            type=event_type,
            body=body,
            created_at=datetime.now(UTC),
            subject=subject,
        )
        self.events.append(event)
        self._schedule_delivery(event)
        return event

    def _schedule_delivery(self, event: SandboxEvent) -> None:
        if self.webhook_target is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._deliver(event, self.webhook_target))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, event: SandboxEvent, target: WebhookTarget) -> None:
        """POST the event until it is accepted, a 4xx refuses it, or attempts run out."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0)
        delay = 0.2
        for _ in range(target.max_attempts):
            url, headers = self.delivery_request(event, target)
            event.attempts += 1
            try:
                response = await self._http.post(url, content=event.body, headers=headers)
                event.last_status, event.last_error = response.status_code, None
                if response.status_code < 300:
                    event.delivered = True
                    return
                if 400 <= response.status_code < 500 and response.status_code != 429:
                    return
            except httpx.HTTPError as exc:
                event.last_status, event.last_error = None, f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(delay)
            delay = min(delay * 2.5, 5.0)

    async def close(self) -> None:
        for task in list(self._deliveries):
            task.cancel()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # ---- the app ----------------------------------------------------------------

    def app(self) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            yield
            await self.close()

        app = FastAPI(title=f"{self.name} sandbox", lifespan=lifespan, openapi_url=None)
        app.include_router(self._control_router(), prefix=CONTROL_PREFIX)
        app.add_middleware(ApiCalls, sandbox=self)
        self.add_api_routes(app)
        return app

    async def _around_api_call(
        self, scope: Scope, receive: Receive, send: Send, app: ASGIApp
    ) -> None:
        """An API call through the faults, the throttle and the request log.

        Plain ASGI (`ApiCalls`): Starlette's `BaseHTTPMiddleware` ran every call through
        a task group and memory streams of its own, about a sixth of the sandbox process's
        CPU in the order bench."""
        request = Request(scope)
        path = route_path(request)
        if path.startswith(CONTROL_PREFIX):
            await app(scope, receive, send)
            return
        query = request.url.query
        path_and_query = f"{path}?{query}" if query else path
        # The request has fully arrived before any injected delay: a call its client gave
        # up on is still served, as a real system finishes work whose answer is lost.
        # (Read later, the body of a disconnected client is gone.)
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # gone before its request arrived whole: nothing to serve
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.decorate_response(MutableHeaders(scope=message))
                self.requests.append(
                    RequestRecord(scope["method"], path, query, message["status"], time.time())
                )
            await send(message)

        arrived_before = self.resets
        response = await self._apply_faults(scope["method"], path, path_and_query)
        if self.resets != arrived_before:
            # Held past a reset: the caller (an earlier test) is gone, and carrying the
            # request out now would change, and be counted in, the fresh system.
            held = self.error_response(503, "the sandbox was reset while this was held", None)
            await held(scope, replay, send)
            return
        if response is None and not self.throttle.take():
            response = self.throttled_response()
        if response is not None:
            await response(scope, replay, answer)
        else:
            await app(scope, replay, answer)

    async def _apply_faults(self, method: str, path: str, path_and_query: str) -> Response | None:
        for rule in self.faults:
            if rule.count is not None and rule.hits >= rule.count:
                continue
            if not rule.matches(method, path, path_and_query):
                continue
            if rule.rate < 1.0 and self.random.random() >= rule.rate:
                continue
            rule.hits += 1
            if rule.delay_s:
                await asyncio.sleep(rule.delay_s)
            if rule.status is None:
                return None
            message = rule.message or f"injected fault {rule.status}"
            return self.error_response(rule.status, message, rule.retry_after_s)
        return None

    def _control_router(self) -> APIRouter:
        router = APIRouter()

        @router.post("/reset")
        async def reset() -> dict[str, str]:
            self.resets += 1
            self.reset_state()
            self.requests.clear()
            self.faults.clear()
            self.events.clear()
            self.throttle = ThrottleWindow(self.default_requests_per_minute)
            return {"status": "reset"}

        @router.get("/state")
        async def get_state() -> JSONResponse:
            return JSONResponse(json.loads(json.dumps(self.state(), default=str)))

        @router.get("/requests")
        async def get_requests() -> dict[str, Any]:
            return {"requests": [record.as_dict() for record in self.requests]}

        @router.delete("/requests")
        async def clear_requests() -> dict[str, str]:
            self.requests.clear()
            return {"status": "cleared"}

        @router.post("/faults")
        async def add_faults(request: Request) -> dict[str, Any]:
            raw = await request.json()
            body = (
                FaultsBody(rules=raw)
                if isinstance(raw, list)
                else (
                    FaultsBody(rules=[FaultRule.model_validate(raw)])
                    if "match" in raw
                    else FaultsBody.model_validate(raw)
                )
            )
            if body.seed is not None:
                self.random = random.Random(body.seed)
            self.faults.extend(body.rules or [])
            return {"faults": [rule.model_dump() for rule in self.faults]}

        @router.get("/faults")
        async def list_faults() -> dict[str, Any]:
            return {"faults": [rule.model_dump() for rule in self.faults]}

        @router.delete("/faults")
        async def clear_faults() -> dict[str, str]:
            self.faults.clear()
            return {"status": "cleared"}

        @router.post("/throttle")
        async def set_throttle(body: ThrottleBody) -> dict[str, Any]:
            self.throttle = ThrottleWindow(body.requests_per_minute, window_s=body.window_s)
            return {"requests_per_minute": body.requests_per_minute, "window_s": body.window_s}

        @router.post("/webhooks")
        async def set_webhooks(target: WebhookTarget) -> dict[str, Any]:
            try:
                if target.subscribe_to is not None and not self.takes_subscriptions:
                    raise ValueError("subscribe_to: only Brightpearl's webhooks name their events")
                self.configure_webhooks(target)
            except ValueError as exc:
                raise HTTPException(status_code=422, detail=str(exc)) from None
            return {"url": target.url}

        @router.get("/events")
        async def list_events() -> dict[str, Any]:
            return {"events": [event.summary() for event in self.events]}

        @router.post("/events/{event_id}/redeliver")
        async def redeliver(event_id: str) -> dict[str, Any]:
            for event in self.events:
                if event.id == event_id:
                    if self.webhook_target is None:
                        raise HTTPException(status_code=409, detail="no webhook target configured")
                    await self._deliver(event, self.webhook_target)
                    return event.summary()
            raise HTTPException(status_code=404, detail=f"no event {event_id}")

        self.add_control_routes(router)
        return router

    def add_control_routes(self, router: APIRouter) -> None:  # noqa: B027
        """System-specific control calls (shopper orders, shipments, stock changes)."""
