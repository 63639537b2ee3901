"""An `AttemptMemory` kept in a dict, as an activity's heartbeat details keep it, for
tests that call a connector outside an activity."""

from __future__ import annotations


class Remembered:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def put(self, key: str, value: str) -> None:
        self.values[key] = value
