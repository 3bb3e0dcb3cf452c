"""When follow-ups happen: the schedule policy, due and overdue rules, outcome rules, stable ids."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cmhl_contracts.vocabulary import FollowUpOutcome, ReferralStatus

DEFAULT_OFFSETS_DAYS = (7, 30, 90)
DEFAULT_GRACE = timedelta(days=3)
# A check the day after an appointment asks whether the person went.
APPOINTMENT_CHECK_DELAY = timedelta(days=1)
# Liaisons often reach a person a little before the planned day; earlier than this is a mistake.
EARLY_RECORDING_WINDOW = timedelta(days=3)

# A referral in one of these statuses needs no more follow-ups: pending ones are cancelled.
CLOSING_STATUSES = frozenset(
    {
        ReferralStatus.DECLINED,
        ReferralStatus.CONNECTED_TO_TREATMENT,
        ReferralStatus.DECLINED_BY_PERSON,
        ReferralStatus.REFERRED_ELSEWHERE,
        ReferralStatus.LOST_TO_FOLLOW_UP,
    }
)

# Checks that show whether a person connected to treatment stayed in it: they go on after the
# connection, when every other pending follow-up of the referral is cancelled.
RETENTION_OFFSETS_DAYS = frozenset({30, 90})

# Fixed namespace: scheduling the same referral twice must give the same follow-up ids.
_FOLLOW_UP_NAMESPACE = uuid.UUID("8e2d1c4b-7a6f-5e9d-b3c2-1a0f9e8d7c6b")


class State(StrEnum):
    """What a liaison sees: stored status plus where the clock stands."""

    SCHEDULED = "scheduled"
    DUE = "due"
    OVERDUE = "overdue"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PlannedFollowUp:
    follow_up_id: uuid.UUID
    kind: str
    due_at: datetime


class OutcomeRefused(Exception):
    """Recording this outcome breaks a rule; the message names the rule."""


def follow_up_id(referral_id: uuid.UUID, kind: str, label: str) -> uuid.UUID:
    return uuid.uuid5(_FOLLOW_UP_NAMESPACE, f"{referral_id}\x1f{kind}\x1f{label}")


def _scheduled_check_id(referral_id: uuid.UUID, days: int) -> uuid.UUID:
    return follow_up_id(referral_id, "scheduled_check", f"day-{days}")


def _appointment_check_id(referral_id: uuid.UUID, sequence: int) -> uuid.UUID:
    return follow_up_id(referral_id, "appointment_check", f"change-{sequence}")


def plan_follow_ups(
    referral_id: uuid.UUID, referred_at: datetime, offsets_days: tuple[int, ...]
) -> list[PlannedFollowUp]:
    """One scheduled check per offset after the referral (default 7, 30 and 90 days)."""
    return [
        PlannedFollowUp(
            _scheduled_check_id(referral_id, days),
            "scheduled_check",
            referred_at + timedelta(days=days),
        )
        for days in sorted(set(offsets_days))
    ]


def plan_appointment_check(
    referral_id: uuid.UUID, appointment_at: datetime, sequence: int
) -> PlannedFollowUp:
    """The day after an appointment; its id names the status change that set the appointment,
    so a redelivered change plans the same check and a moved appointment a new one."""
    return PlannedFollowUp(
        _appointment_check_id(referral_id, sequence),
        "appointment_check",
        appointment_at + APPOINTMENT_CHECK_DELAY,
    )


def retention_check_ids(referral_id: uuid.UUID, offsets_days: tuple[int, ...]) -> set[uuid.UUID]:
    """The scheduled checks that go on after the person was connected to treatment."""
    return {
        _scheduled_check_id(referral_id, days)
        for days in set(offsets_days) & RETENTION_OFFSETS_DAYS
    }


def ad_hoc_follow_up_id(referral_id: uuid.UUID, due_at: datetime) -> uuid.UUID:
    """A liaison's own follow-up, named by its time: the same request sent twice adds one."""
    return follow_up_id(referral_id, "ad_hoc", due_at.isoformat())


def possible_follow_up_ids(
    referral_id: uuid.UUID, offsets_days: tuple[int, ...], before_sequence: int
) -> list[uuid.UUID]:
    """Every follow-up id a referral can have before a given change of its history: the
    scheduled checks and an appointment check per earlier change. Lets a consumer find a
    referral's follow-ups by `_id` alone, without an index on the referral."""
    ids = [_scheduled_check_id(referral_id, days) for days in sorted(set(offsets_days))]
    return ids + [_appointment_check_id(referral_id, s) for s in range(1, before_sequence)]


def is_due(due_at: datetime, now: datetime) -> bool:
    """Never early: due only once its time has come."""
    return due_at <= now


def state_of(status: str, due_at: datetime, overdue_at: datetime, now: datetime) -> State:
    """Overdue once the grace period after the due time (`overdue_at`) has passed unrecorded."""
    if status in (State.COMPLETED, State.CANCELLED):
        return State(status)
    if now > overdue_at:
        return State.OVERDUE
    return State.DUE if is_due(due_at, now) else State.SCHEDULED


def check_outcome(
    status: str,
    recorded_outcome: str | None,
    outcome: FollowUpOutcome,
    due_at: datetime,
    now: datetime,
) -> bool:
    """Whether recording `outcome` changes anything: False for the same outcome again (a retry).
    Raises OutcomeRefused for a cancelled follow-up, a different outcome than the recorded one,
    or one recorded too long before its day."""
    if status == State.CANCELLED:
        raise OutcomeRefused("the follow-up was cancelled; it takes no outcome")
    if status == State.COMPLETED:
        if recorded_outcome == outcome:
            return False
        raise OutcomeRefused(f"an outcome was recorded already ({recorded_outcome})")
    if now < due_at - EARLY_RECORDING_WINDOW:
        raise OutcomeRefused("the follow-up is not due within 3 days")
    return True


def follow_ups_apply(
    imported: bool,
    status_at_import: ReferralStatus | None,
    referred_at: datetime,
    now: datetime,
    offsets_days: Iterable[int],
    grace: timedelta,
) -> bool:
    """Whether a new referral gets its follow-ups. A live one always does. One loaded from the
    program's earlier records (a history import) does not once closed, nor once its last check
    would be overdue already: a check of a person years ago helps no one and would bury the
    liaison's real work under overdue items."""
    if not imported:
        return True
    if status_at_import in CLOSING_STATUSES:
        return False
    return not past_horizon(referred_at, now, offsets_days, grace)


def past_horizon(
    moment: datetime, now: datetime, offsets_days: Iterable[int], grace: timedelta
) -> bool:
    """Longer ago than the last scheduled check and its grace: what was due by then is history
    (an imported appointment of years ago gets no check)."""
    return moment + timedelta(days=max(offsets_days, default=0)) + grace < now
