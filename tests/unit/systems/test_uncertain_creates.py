"""When a held-back create may be sent again: only after `settle`, unless the system
answered the first with a refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest

from commerce_sync.systems.errors import (
    EarlierCreateInFlight,
    ThrottledError,
    TransientError,
    ValidationFailed,
)
from commerce_sync.systems.uncertain_creates import sending_create
from tests.attempt_memory import Remembered

SETTLE = timedelta(seconds=120)


def _send(memory: Remembered, failure: Exception | None) -> None:
    with sending_create(memory, "brightpearl", "address-1", SETTLE):
        if failure is not None:
            raise failure


@pytest.mark.parametrize(
    "lost",
    [
        TransientError("brightpearl", "timed out"),
        TransientError("brightpearl", "bad gateway", status=502),
    ],
    ids=["timeout", "502"],
)
def test_a_create_without_a_clear_refusal_holds_back_the_retry(lost: Exception) -> None:
    memory = Remembered()
    with pytest.raises(TransientError):
        _send(memory, lost)
    with pytest.raises(EarlierCreateInFlight) as held:
        _send(memory, None)
    assert held.value.retry_after_s is not None and held.value.retry_after_s <= 5.0


@pytest.mark.parametrize(
    "refusal",
    [
        ThrottledError("brightpearl", "throttled", status=503),
        ThrottledError("acumatica", "too many requests", status=429),
        ValidationFailed("brightpearl", "bad postcode", status=400),
    ],
    ids=["503", "429", "400"],
)
def test_a_create_the_system_refused_is_sent_again_at_once(refusal: Exception) -> None:
    memory = Remembered()
    with pytest.raises(type(refusal)):
        _send(memory, refusal)
    _send(memory, None)  # no EarlierCreateInFlight: the refused request cannot land
    with pytest.raises(EarlierCreateInFlight):  # but this send is now the one in flight
        _send(memory, None)


def test_another_reference_is_not_held_back() -> None:
    memory = Remembered()
    with pytest.raises(TransientError):
        _send(memory, TransientError("brightpearl", "timed out"))
    with sending_create(memory, "brightpearl", "address-2", SETTLE):
        pass
