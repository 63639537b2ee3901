"""Every route but webhooks and health needs an API key: a sweep over the served OpenAPI
spec, so a route added later without a key check fails here."""

from __future__ import annotations

import re

from tests.integration.orders.order_stack import READ_ONLY_KEY, Stack

OPEN = ("/healthz", "/readyz", "/webhooks/", "/docs", "/openapi.json")
# Calls that change something need the `operate` scope; reads need `read`.
WRITES = {"POST"}
# POSTs that only read: the Web UI's codec decode, and opening a codec session for it.
READING_POSTS = {"/codec/decode", "/codec/session"}


def concrete(path: str) -> str:
    """A path with each `{parameter}` filled in (the key check comes before any lookup)."""
    return re.sub(r"\{[^}]+\}", "kentico-brightpearl", path)


async def test_every_keyed_route_refuses_a_missing_unknown_or_underscoped_key(
    stack: Stack,
) -> None:
    spec = (await stack.http.get(f"{stack.api}/openapi.json")).json()
    operations = [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if not path.startswith(OPEN)
    ]
    assert len(operations) >= 9  # orders, approvals, inventory, dead letters, metrics

    for method, path in operations:
        url = f"{stack.api}{concrete(path)}"
        declared = spec["paths"][path][method.lower()].get("security")
        assert declared == [{"HTTPBearer": []}], f"{method} {path} declares no key"

        missing = await stack.http.request(method, url, json={})
        assert missing.status_code == 401, f"{method} {path}: {missing.status_code}"
        unknown = await stack.http.request(method, url, json={}, headers=stack.headers("not-a-key"))
        assert unknown.status_code == 401, f"{method} {path}: {unknown.status_code}"
        if method in WRITES and path not in READING_POSTS:
            reader = await stack.http.request(
                method, url, json={}, headers=stack.headers(READ_ONLY_KEY)
            )
            assert reader.status_code == 403, f"{method} {path}: {reader.status_code}"
