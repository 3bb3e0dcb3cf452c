"""Time as a port: services ask a clock, so tests can move time instead of sleeping."""

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


def to_millis(moment: datetime) -> datetime:
    """MongoDB keeps milliseconds: times are cut to them before use, so what a service answers
    equals what it later reads back."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class SystemClock:
    def now(self) -> datetime:
        return to_millis(datetime.now(UTC))


class AdjustableClock:
    """A clock that tests set and advance."""

    def __init__(self, start: datetime) -> None:
        self._now = to_millis(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta
