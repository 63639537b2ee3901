"""The codec server of the Temporal Web UI: `POST /codec/decode` and `POST /codec/encode`.

The Web UI posts `{"payloads": [{"metadata": {name: base64}, "data": base64}]}` with the
namespace in `X-Namespace` and gets the same shape back, decoded (or encoded with the
current key). Decoding needs an API key with the `read` scope, encoding (which only makes
sense to write into Temporal: a signal, a start) the `operate` scope. The key comes as
`Authorization: Bearer <key>` (a Web UI behind an identity provider that issues our keys,
with "Pass access token" set), or as the session cookie that `POST /codec/session` sets
for a keyed caller: open it once from the API's own /docs page, then tick "Include
cross-origin credentials" in the Web UI's codec settings (the dev server's Web UI has no
login, so it has no token to pass). The cookie holds an expiry and an HMAC under the API
key, never the key, and dies with the key. CORS admits the Web UI's origins (settings
`codec.cors_origins`); a preflight needs no key. Without codec keys configured both
routes hand the payloads back unchanged.

A Web UI that can send neither (the dev server's under `commerce-sync up`: no login, and
no step an operator should have to take) is given `POST /codec/ui/{token}/decode` and
`/encode` as its endpoint, the token being `codec.ui_token`: a capability as good as an
operator key for these two routes and nothing else, compared in constant time, masked
in the access log like the Brightpearl webhook token. Unset, those routes answer 404.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope
from temporalio.api.common.v1 import Payload

from commerce_sync.api.security import ReadKey, Scope, bearer, require
from commerce_sync.config.settings import Settings
from commerce_sync.ops.codec import CodecError, EncryptionCodec

PREFIX = "/codec"
router = APIRouter(prefix=PREFIX, tags=["codec"])


class PayloadBody(BaseModel):
    metadata: dict[str, str] = Field(default_factory=dict, description="values in base64")
    data: str = Field(default="", description="base64")


class PayloadsBody(BaseModel):
    # Protobuf's JSON leaves an empty list out: the Temporal CLI encodes a query without
    # arguments as `{}`.
    payloads: list[PayloadBody] = Field(default_factory=list)


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(status_code=400, detail=f"{where}: not base64") from None


def _to_payloads(body: PayloadsBody) -> list[Payload]:
    return [
        Payload(
            metadata={
                name: _b64(value, f"payloads[{i}].metadata.{name}")
                for name, value in item.metadata.items()
            },
            data=_b64(item.data, f"payloads[{i}].data"),
        )
        for i, item in enumerate(body.payloads)
    ]


def _to_body(payloads: Sequence[Payload]) -> PayloadsBody:
    return PayloadsBody(
        payloads=[
            PayloadBody(
                metadata={k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                data=base64.b64encode(p.data).decode(),
            )
            for p in payloads
        ]
    )


def _codec(request: Request, namespace: str | None) -> EncryptionCodec | None:
    settings: Settings = request.app.state.settings
    if namespace is not None and namespace != settings.temporal_namespace:
        raise HTTPException(
            status_code=400,
            detail=f"X-Namespace: '{namespace}' is not this deployment's namespace",
        )
    codec: EncryptionCodec | None = request.app.state.codec
    return codec


SESSION_COOKIE = "commerce_sync_codec"
SESSION_TTL_S = 8 * 3600


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _session_mac(key: str, expires: int) -> str:
    return hmac.new(key.encode(), f"codec-session|{expires}".encode(), hashlib.sha256).hexdigest()


def session_token(key: str, expires: int) -> str:
    """`<expiry>.<key fingerprint>.<HMAC of the expiry under the key>`."""
    return f"{expires}.{_fingerprint(key)}.{_session_mac(key, expires)}"


def _session_scopes(settings: Settings, token: str, now: float) -> list[str] | None:
    """The scopes of the key a live session token was made with; None for anything else."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or int(parts[0]) < now:
        return None
    expires, fingerprint, mac = int(parts[0]), parts[1], parts[2]
    for key, scopes in settings.api_keys.items():
        if hmac.compare_digest(_fingerprint(key), fingerprint) and hmac.compare_digest(
            _session_mac(key, expires), mac
        ):
            return list(scopes)
    return None


def codec_access(scope: Scope) -> Callable[..., str]:
    """A bearer key holding `scope` (as everywhere), or else a live codec session cookie."""
    by_key = require(scope)

    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        session: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
    ) -> str:
        if credentials is not None or session is None:
            return by_key(request, credentials)
        scopes = _session_scopes(request.app.state.settings, session, time.time())
        if scopes is None:
            raise HTTPException(
                status_code=401,
                detail="the codec session is expired or unknown: open one (POST /codec/session)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope not in scopes:
            raise HTTPException(status_code=403, detail=f"this API key lacks the '{scope}' scope")
        return scope

    return check


CodecReader = Annotated[str, Depends(codec_access("read"))]
CodecOperator = Annotated[str, Depends(codec_access("operate"))]


class SessionOpened(BaseModel):
    expires_at: datetime


@router.post("/session", response_model=SessionOpened)
async def open_session(
    request: Request,
    response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    _: ReadKey,
) -> SessionOpened:
    """Set the codec session cookie (HttpOnly, path /codec, 8 hours) for the caller's key,
    so a browser's Web UI can call the codec with "Include cross-origin credentials"."""
    assert credentials is not None  # ReadKey admitted a bearer key
    settings: Settings = request.app.state.settings
    expires = int(time.time()) + SESSION_TTL_S
    response.set_cookie(
        SESSION_COOKIE,
        session_token(credentials.credentials, expires),
        max_age=SESSION_TTL_S,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=settings.api_url.startswith("https://"),
    )
    return SessionOpened(expires_at=datetime.fromtimestamp(expires, UTC))


NamespaceHeader = Annotated[
    str | None, Header(alias="X-Namespace", description="the Web UI's current namespace")
]


@router.post("/decode", response_model=PayloadsBody)
async def decode(
    body: PayloadsBody, request: Request, _: CodecReader, x_namespace: NamespaceHeader = None
) -> PayloadsBody:
    """Decrypt payloads (unencrypted ones come back as they are)."""
    codec = _codec(request, x_namespace)
    payloads = _to_payloads(body)
    if codec is None:
        return _to_body(payloads)
    decoded: list[Payload] = []
    for i, payload in enumerate(payloads):
        try:
            decoded.append(codec.decrypt(payload))
        except CodecError as exc:
            raise HTTPException(status_code=400, detail=f"payloads[{i}]: {exc}") from None
    return _to_body(decoded)


@router.post("/encode", response_model=PayloadsBody)
async def encode(
    body: PayloadsBody, request: Request, _: CodecOperator, x_namespace: NamespaceHeader = None
) -> PayloadsBody:
    """Encrypt payloads under the current key (e.g. a signal the Web UI sends)."""
    codec = _codec(request, x_namespace)
    payloads = _to_payloads(body)
    return _to_body(await codec.encode(payloads) if codec is not None else payloads)


class CodecCORS:
    """CORS for the codec routes only: the rest of the API is not for browsers."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "X-Namespace"],
            allow_credentials=True,
            max_age=600,
        )

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] == "http" and (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install_codec_server(app: FastAPI, settings: Settings, codec: EncryptionCodec | None) -> None:
    """Add the codec routes and their CORS; the codec is the one the API's client uses."""
    app.state.codec = codec
    app.include_router(router)
    app.add_middleware(CodecCORS, origins=settings.codec_cors_origins)


def _ui_token_matches(request: Request, token: str) -> None:
    """404 unless `token` is the configured `codec.ui_token` (as if the route did not exist:
    a wrong token tells a caller nothing)."""
    settings: Settings = request.app.state.settings
    configured = settings.codec.ui_token
    if configured is None or not hmac.compare_digest(
        token.encode(), configured.get_secret_value().encode()
    ):
        raise HTTPException(status_code=404, detail="Not Found")


@router.post("/ui/{token}/decode", response_model=PayloadsBody, include_in_schema=False)
async def decode_for_ui(
    token: str, body: PayloadsBody, request: Request, x_namespace: NamespaceHeader = None
) -> PayloadsBody:
    _ui_token_matches(request, token)
    return await decode(body, request, "read", x_namespace)


@router.post("/ui/{token}/encode", response_model=PayloadsBody, include_in_schema=False)
async def encode_for_ui(
    token: str, body: PayloadsBody, request: Request, x_namespace: NamespaceHeader = None
) -> PayloadsBody:
    _ui_token_matches(request, token)
    return await encode(body, request, "operate", x_namespace)
