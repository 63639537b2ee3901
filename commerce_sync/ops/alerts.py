"""Alerts sent on through apprise, and the watch on systems that stop answering.

Every alert is first recorded in the `alerts` table (its dedupe key makes a retried
activity record it once), then sent to every apprise URL in `settings.alerts.urls`.
Delivery is at least once: a failed send fails the `ops.alert` activity and Temporal
retries it, sending again (to every URL) without a second row; after
`alerts.send_attempts` attempts the alert is logged as undelivered so that a broken
channel never stalls an order.

"A system unreachable for longer than a threshold" is detected where it is cheap and
real: the activities' error classification (`activities/errors.py`) reports every
transient failure (timeout, connection error, 5xx; not throttling) and every success
per system to the worker process's `UnreachableWatch`. The first failure of a streak
sets its start; a failure at or after `unreachable_after_s` raises one alert, and the
next success raises one "recovered" alert. Each worker process watches for itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import apprise
from pydantic import SecretStr
from sqlalchemy import Engine

from commerce_sync.store.alerts import record_alert

log = logging.getLogger("commerce_sync.alerts")


class Notifier:
    """The apprise channels of `settings.alerts.urls`; with none, sending does nothing."""

    def __init__(self, urls: Sequence[SecretStr]) -> None:
        # apprise's debug lines name the endpoints it calls; keep them out of our logs.
        logging.getLogger("apprise").setLevel(logging.WARNING)
        self._apprise = apprise.Apprise()
        for index, url in enumerate(urls):
            if not self._apprise.add(url.get_secret_value()):
                scheme = url.get_secret_value().partition("://")[0]
                raise ValueError(
                    f"alerts.urls[{index}]: apprise cannot use this URL (scheme {scheme!r})"
                )
        self.channels = len(urls)

    @property
    def enabled(self) -> bool:
        return self.channels > 0

    def send(self, kind: str, key: str, message: str) -> bool:
        """Send to every channel; True when all of them took it (or there are none)."""
        if not self.enabled:
            return True
        notify_type = (
            apprise.NotifyType.SUCCESS if kind.endswith("recovered") else apprise.NotifyType.FAILURE
        )
        result = self._apprise.notify(
            title=f"commerce-sync {kind}: {key}", body=message, notify_type=notify_type
        )
        return bool(result)


@dataclass
class _Streak:
    started: float  # wall clock (time.time()) of the first failure
    failures: int = 0
    alerted: bool = False


@dataclass(frozen=True)
class Transition:
    """A system went unreachable (`kind="system_unreachable"`) or came back."""

    kind: str
    system: str
    since: float
    failures: int

    @property
    def dedupe_key(self) -> str:
        return f"{self.kind}:{self.system}:{self.since:.3f}"

    @property
    def message(self) -> str:
        since = datetime.fromtimestamp(self.since, UTC).isoformat(timespec="seconds")
        if self.kind == "system_unreachable":
            return (
                f"{self.system} has failed {self.failures} calls in a row "
                f"(timeouts, connection errors or 5xx) since {since}"
            )
        return f"{self.system} answers again after {self.failures} failed calls since {since}"


class UnreachableWatch:
    """Consecutive transient failures per system, with the time of the first one."""

    def __init__(
        self,
        threshold_s: float,
        *,
        engine: Engine | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.threshold_s = threshold_s
        self._engine = engine
        self._notifier = notifier
        self._clock = clock
        self._streaks: dict[str, _Streak] = {}
        self._lock = threading.Lock()

    def failed(self, system: str) -> Transition | None:
        """Note a transient failure; a Transition when the streak just passed the threshold."""
        now = self._clock()
        with self._lock:
            streak = self._streaks.setdefault(system, _Streak(started=now))
            streak.failures += 1
            if streak.alerted or now - streak.started < self.threshold_s:
                return None
            streak.alerted = True
            return Transition("system_unreachable", system, streak.started, streak.failures)

    def answered(self, system: str) -> Transition | None:
        """Note that the system answered; a Transition when it had been alerted as down."""
        with self._lock:
            streak = self._streaks.pop(system, None)
        if streak is None or not streak.alerted:
            return None
        return Transition("system_recovered", system, streak.started, streak.failures)

    async def report(self, transition: Transition | None) -> None:
        """Record and send a transition; never raises (the activity's own outcome matters)."""
        if transition is None:
            return
        log.warning("ALERT %s %s: %s", transition.kind, transition.system, transition.message)
        try:
            await asyncio.to_thread(self._record_and_send, transition)
        except Exception as exc:
            log.error("alert %s for %s not delivered: %s", transition.kind, transition.system, exc)

    def _record_and_send(self, transition: Transition) -> None:
        if self._engine is not None:
            record_alert(
                self._engine,
                dedupe_key=transition.dedupe_key,
                kind=transition.kind,
                key=transition.system,
                message=transition.message,
            )
        if self._notifier is not None and not self._notifier.send(
            transition.kind, transition.system, transition.message
        ):
            log.error("alert %s for %s not delivered", transition.kind, transition.system)


_watch: UnreachableWatch | None = None


def install_watch(watch: UnreachableWatch | None) -> None:
    """Make `watch` the one this process's activities report to (the worker does this)."""
    global _watch
    _watch = watch


def current_watch() -> UnreachableWatch | None:
    return _watch
