"""Fixtures of the tests that run the product as its own processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.durability_stack import Services, StackConfig


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Callable[[StackConfig], Services]]:
    """Starts this test's processes; stops every one of them however the test ends."""
    started: list[Services] = []

    def start(config: StackConfig) -> Services:
        group = Services(config, tmp_path)
        started.append(group)
        return group

    yield start
    for group in started:
        print(group.logs())  # shown by pytest when the test failed
        left = group.close()
        assert not left, f"processes left behind: {left}"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client
