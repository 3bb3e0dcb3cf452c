"""Follow-up policy on a simulated clock: when follow-ups fall due, never early."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cmhl_contracts.vocabulary import ReferralStatus
from cmhl_followup.domain.policy import (
    DEFAULT_GRACE,
    DEFAULT_OFFSETS_DAYS,
    State,
    follow_ups_apply,
    is_due,
    plan_appointment_check,
    plan_follow_ups,
    possible_follow_up_ids,
    state_of,
)

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


def test_state_follows_the_clock_until_an_outcome_or_a_cancellation() -> None:
    due_at = REFERRED + timedelta(days=7)
    overdue_at = due_at + timedelta(days=3)
    second = timedelta(seconds=1)
    assert state_of("scheduled", due_at, overdue_at, due_at - second) == State.SCHEDULED
    assert state_of("scheduled", due_at, overdue_at, due_at) == State.DUE
    assert state_of("scheduled", due_at, overdue_at, overdue_at) == State.DUE
    assert state_of("scheduled", due_at, overdue_at, overdue_at + second) == State.OVERDUE
    assert state_of("completed", due_at, overdue_at, due_at + timedelta(30)) == State.COMPLETED
    assert state_of("cancelled", due_at, overdue_at, due_at) == State.CANCELLED


def test_appointment_checks_are_the_day_after_and_findable_by_id() -> None:
    referral = uuid.UUID(int=9)
    check = plan_appointment_check(referral, REFERRED + timedelta(days=10), sequence=4)
    assert check.due_at == REFERRED + timedelta(days=11)
    assert check == plan_appointment_check(referral, REFERRED + timedelta(days=10), sequence=4)
    findable = possible_follow_up_ids(referral, (7, 30, 90), before_sequence=5)
    assert check.follow_up_id in findable
    assert check.follow_up_id not in possible_follow_up_ids(referral, (7, 30, 90), 4)
    scheduled = {p.follow_up_id for p in plan_follow_ups(referral, REFERRED, (7, 30, 90))}
    assert scheduled <= set(findable)


@pytest.mark.parametrize(
    ("imported", "status", "age_days", "applies"),
    [
        (False, None, 4000, True),  # a live referral always gets its follow-ups
        (True, None, 10, True),  # an imported open one inside the horizon: its checks are real
        (True, None, 94, False),  # past the last check (90 days) and its grace: none
        (True, ReferralStatus.ACCEPTED, 20, True),
        (True, ReferralStatus.CONNECTED_TO_TREATMENT, 10, False),  # closed: none
        (True, ReferralStatus.DECLINED, 1, False),
    ],
)
def test_imported_referrals_get_follow_ups_only_while_open_and_inside_the_horizon(
    imported: bool, status: ReferralStatus | None, age_days: int, applies: bool
) -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    referred_at = now - timedelta(days=age_days)
    assert (
        follow_ups_apply(imported, status, referred_at, now, DEFAULT_OFFSETS_DAYS, DEFAULT_GRACE)
        is applies
    )
