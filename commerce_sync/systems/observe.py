"""What a connector lets the process around it watch: every HTTP answer it gets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

ResponseHook = Callable[[httpx.Response], Awaitable[None]]
"""Called with each answer (httpx's response event hook), before the connector reads it."""
