"""Follow-up policy on a simulated clock: when follow-ups fall due, never early."""

import uuid
from datetime import UTC, datetime, timedelta

from cmhl_followup.domain.policy import is_due, is_overdue, plan_follow_ups

REFERRED = datetime(2018, 1, 15, 8, tzinfo=UTC)


def test_default_policy_plans_checks_at_7_30_and_90_days() -> None:
    planned = plan_follow_ups(uuid.UUID(int=5), REFERRED, (7, 30, 90))
    assert [p.due_at - REFERRED for p in planned] == [
        timedelta(days=7),
        timedelta(days=30),
        timedelta(days=90),
    ]
    assert len({p.follow_up_id for p in planned}) == 3


def test_planning_twice_gives_the_same_ids_so_redelivery_is_harmless() -> None:
    first = plan_follow_ups(uuid.UUID(int=5), REFERRED, (7, 30, 90))
    again = plan_follow_ups(uuid.UUID(int=5), REFERRED, (90, 7, 30, 7))
    assert first == again
    other = plan_follow_ups(uuid.UUID(int=6), REFERRED, (7, 30, 90))
    assert {p.follow_up_id for p in first}.isdisjoint(p.follow_up_id for p in other)


def test_due_exactly_at_its_time_never_before() -> None:
    due_at = REFERRED + timedelta(days=7)
    assert not is_due(due_at, due_at - timedelta(microseconds=1))
    assert is_due(due_at, due_at)


def test_overdue_after_the_grace_period() -> None:
    due_at = REFERRED + timedelta(days=7)
    grace = timedelta(days=3)
    assert not is_overdue(due_at, due_at + grace, grace)
    assert is_overdue(due_at, due_at + grace + timedelta(seconds=1), grace)
