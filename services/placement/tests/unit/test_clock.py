"""The 96-hour clock on a simulated clock: deadline, elapsed and remaining, 72/90-hour flags."""

from datetime import UTC, datetime, timedelta

import pytest

from cmhl_placement.domain.clock import DetentionClock, hours
from cmhl_placement.domain.request import InvalidRequest, check_detention_start
from cmhl_servicekit.clock import AdjustableClock

STARTED = datetime(2026, 3, 1, 18, 30, tzinfo=UTC)


def test_deadline_is_96_hours_after_detention_start() -> None:
    clock = DetentionClock(STARTED)
    assert clock.deadline_at == STARTED + timedelta(hours=96)


def test_flags_come_at_72_and_90_hours_never_early() -> None:
    time = AdjustableClock(STARTED)
    clock = DetentionClock(STARTED)
    time.advance(timedelta(hours=72) - timedelta(milliseconds=1))
    assert clock.flags(time.now()) == []
    time.advance(timedelta(milliseconds=1))
    assert clock.flags(time.now()) == ["due_soon"]
    time.advance(timedelta(hours=18) - timedelta(milliseconds=1))
    assert clock.flags(time.now()) == ["due_soon"]
    time.advance(timedelta(milliseconds=1))
    assert clock.flags(time.now()) == ["due_soon", "overdue"]
    assert not clock.expired(time.now())
    time.advance(timedelta(hours=6))
    assert clock.expired(time.now())


def test_elapsed_and_remaining_in_hours() -> None:
    clock = DetentionClock(STARTED)
    now = STARTED + timedelta(hours=30, minutes=15)
    assert hours(clock.elapsed(now)) == 30.25
    assert hours(clock.remaining(now)) == 65.75
    assert hours(clock.remaining(STARTED + timedelta(hours=100))) == -4.0


def test_detention_start_may_not_be_in_the_future() -> None:
    now = STARTED
    check_detention_start(now, now)
    check_detention_start(now + timedelta(seconds=30), now)  # a phone's clock a little ahead
    with pytest.raises(InvalidRequest, match="in the future"):
        check_detention_start(now + timedelta(minutes=5), now)
    with pytest.raises(InvalidRequest, match="30 days"):
        check_detention_start(now - timedelta(days=31), now)
