"""A read turned away for a moment is sent again by the connector; nothing else is."""

from __future__ import annotations

import pytest

from commerce_sync.systems.errors import (
    EarlierCreateInFlight,
    NotFound,
    ThrottledError,
    TransientError,
)
from commerce_sync.systems.read_retries import MAX_READ_WAIT_S, READ_ATTEMPTS, read_with_retries


class Answers:
    """A read answering with the given faults first, then "ok"; counts its sends."""

    def __init__(self, *faults: Exception) -> None:
        self.faults = list(faults)
        self.sent = 0
        self.waits: list[float] = []

    async def send(self) -> str:
        self.sent += 1
        if self.faults:
            raise self.faults.pop(0)
        return "ok"

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_a_read_answered_503_then_429_is_sent_again_after_the_wait_asked() -> None:
    read = Answers(
        TransientError("kentico", "503", status=503),
        ThrottledError("xcart", "429", status=429, retry_after_s=2.0),
    )
    assert await read_with_retries(read.send, sleep=read.sleep) == "ok"
    assert read.sent == 3
    assert read.waits == [0.5, 2.0]


async def test_the_last_attempt_s_fault_reaches_the_caller() -> None:
    faults = [TransientError("acumatica", "502", status=502) for _ in range(READ_ATTEMPTS)]
    read = Answers(*faults)
    with pytest.raises(TransientError) as raised:
        await read_with_retries(read.send, sleep=read.sleep)
    assert raised.value is faults[-1]
    assert read.sent == READ_ATTEMPTS


@pytest.mark.parametrize(
    "fault",
    [
        TransientError("kentico", "timed out"),  # no answer: its timeout is spent
        ThrottledError("brightpearl", "call budget: no free call"),  # nothing was sent
        ThrottledError("brightpearl", "503", status=503, retry_after_s=MAX_READ_WAIT_S + 1),
        EarlierCreateInFlight("xcart", "held back", status=None),
        NotFound("xcart", "no such order", status=404),
    ],
    ids=["timeout", "budget", "long-throttle", "held-create", "not-found"],
)
async def test_faults_it_leaves_to_temporal_are_raised_at_once(fault: Exception) -> None:
    read = Answers(fault)
    with pytest.raises(type(fault)):
        await read_with_retries(read.send, sleep=read.sleep)
    assert read.sent == 1
    assert read.waits == []
