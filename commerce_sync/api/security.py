"""API keys with scopes (`read`, `operate`) for everything but webhooks and health."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from commerce_sync.config.settings import Settings

Scope = Literal["read", "operate"]
bearer = HTTPBearer(auto_error=False, description="an API key from COMMERCE_SYNC_API_KEYS")


def _scopes_of(settings: Settings, key: str) -> list[str] | None:
    for known, scopes in settings.api_keys.items():
        if hmac.compare_digest(known.encode(), key.encode()):
            return list(scopes)
    return None


def require(scope: Scope) -> Callable[..., str]:
    """A dependency that admits a bearer key holding `scope`; 401 without a key, 403 without the scope."""

    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                status_code=401,
                detail="an API key is required (Authorization: Bearer <key>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        scopes = _scopes_of(request.app.state.settings, credentials.credentials)
        if scopes is None:
            raise HTTPException(
                status_code=401, detail="unknown API key", headers={"WWW-Authenticate": "Bearer"}
            )
        if scope not in scopes:
            raise HTTPException(status_code=403, detail=f"this API key lacks the '{scope}' scope")
        return scope

    return check


ReadKey = Annotated[str, Depends(require("read"))]
OperateKey = Annotated[str, Depends(require("operate"))]
