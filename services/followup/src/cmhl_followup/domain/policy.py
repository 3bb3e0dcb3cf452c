"""When follow-ups happen: the schedule policy, due and overdue rules, and stable ids."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_OFFSETS_DAYS = (7, 30, 90)

# Fixed namespace: scheduling the same referral twice must give the same follow-up ids.
_FOLLOW_UP_NAMESPACE = uuid.UUID("8e2d1c4b-7a6f-5e9d-b3c2-1a0f9e8d7c6b")


@dataclass(frozen=True)
class PlannedFollowUp:
    follow_up_id: uuid.UUID
    kind: str
    due_at: datetime


def follow_up_id(referral_id: uuid.UUID, kind: str, label: str) -> uuid.UUID:
    return uuid.uuid5(_FOLLOW_UP_NAMESPACE, f"{referral_id}\x1f{kind}\x1f{label}")


def plan_follow_ups(
    referral_id: uuid.UUID, referred_at: datetime, offsets_days: tuple[int, ...]
) -> list[PlannedFollowUp]:
    """One scheduled check per offset after the referral (default 7, 30 and 90 days)."""
    return [
        PlannedFollowUp(
            follow_up_id(referral_id, "scheduled_check", f"day-{days}"),
            "scheduled_check",
            referred_at + timedelta(days=days),
        )
        for days in sorted(set(offsets_days))
    ]


def is_due(due_at: datetime, now: datetime) -> bool:
    """Never early: due only once its time has come."""
    return due_at <= now


def is_overdue(due_at: datetime, recorded_at: datetime, grace: timedelta) -> bool:
    return recorded_at > due_at + grace
