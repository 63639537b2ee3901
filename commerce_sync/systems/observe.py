"""What a connector lets the process around it watch: every HTTP request it sends (and
hold it back: the call budget, `systems/budget.py`) and every answer it gets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

ResponseHook = Callable[[httpx.Response], Awaitable[None]]
"""Called with each answer (httpx's response event hook), before the connector reads it."""

RequestHook = Callable[[httpx.Request], Awaitable[None]]
"""Awaited with each request before it is sent (httpx's request event hook)."""
