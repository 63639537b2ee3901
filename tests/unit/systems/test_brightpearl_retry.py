"""When the Brightpearl connector tells Temporal to retry a 503 or 429."""

from __future__ import annotations

import httpx

from commerce_sync.systems.brightpearl.client import UNAVAILABLE_RETRY_S, _retry_after


def answer(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_the_throttle_waits_for_the_next_period() -> None:
    spent = answer(503, brightpearl_requests_remaining="0", brightpearl_next_throttle_period="4200")
    assert _retry_after(spent) == 4.2
    assert _retry_after(answer(503, brightpearl_next_throttle_period="4200")) == 4.2


def test_a_503_with_requests_left_is_not_told_to_wait_out_the_period() -> None:
    unavailable = answer(
        503, brightpearl_requests_remaining="150", brightpearl_next_throttle_period="58000"
    )
    assert _retry_after(unavailable) == UNAVAILABLE_RETRY_S
    assert _retry_after(answer(429, retry_after="7")) == 7.0
