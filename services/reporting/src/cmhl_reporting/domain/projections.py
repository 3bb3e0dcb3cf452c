"""Pure projections: each event becomes fact writes keyed by what the event is about.

Why facts keyed by natural id: applying an event twice (a redelivery, a duplicate at another
offset, a replay after a crash between write and commit) writes the same key with the same
content, so every count computed from facts equals the count of distinct events. Each fact
records the event that produced it (tracked projections), and the views are rebuildable from
the log by running these functions again."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cmhl_contracts import (
    FollowUpCompletedV1,
    FollowUpDueV1,
    FollowUpScheduledV1,
    IntegrationEvent,
    ReferralCreatedV1,
    ReferralStatusChangedV1,
    TrainingCompletedV1,
)

REFERRALS = "referrals"
STATUS_CHANGES = "referral_status_changes"
FOLLOW_UPS_SCHEDULED = "follow_ups_scheduled"
FOLLOW_UPS_DUE = "follow_ups_due"
FOLLOW_UPS_COMPLETED = "follow_ups_completed"
TRAINING_SESSIONS = "training_sessions"


@dataclass(frozen=True)
class FactWrite:
    collection: str
    key: str
    fields: dict[str, Any]
    revision: int | None = None
    """Set for facts that later events replace (training rosters): the higher revision wins."""


def month_of(event_time: Any) -> str:
    return f"{event_time.year:04d}-{event_time.month:02d}"


def project_referral_created(event: ReferralCreatedV1) -> list[FactWrite]:
    return [
        FactWrite(
            REFERRALS,
            str(event.referral_id),
            {
                "person_id": event.person_id,
                "source": event.source.value,
                "court_type": event.court_type.value if event.court_type else None,
                "primary_need": event.primary_need.value,
                "county_fips": event.county_fips,
                "cmhc_id": event.cmhc_id,
                "liaison_id": event.liaison_id,
                "agency_id": event.agency_id,
                "referred_at": event.referred_at,
                "month": month_of(event.referred_at),
                "repeat_involvement": event.repeat_involvement,
            },
        )
    ]


def project_referral_status_changed(event: ReferralStatusChangedV1) -> list[FactWrite]:
    return [
        FactWrite(
            STATUS_CHANGES,
            f"{event.referral_id}:{event.sequence}",
            {
                "referral_id": str(event.referral_id),
                "to_status": event.to_status.value,
                "changed_at": event.changed_at,
                "referred_at": event.referred_at,
                "cmhc_id": event.cmhc_id,
            },
        )
    ]


def project_follow_up_scheduled(event: FollowUpScheduledV1) -> list[FactWrite]:
    return [
        FactWrite(
            FOLLOW_UPS_SCHEDULED,
            str(event.follow_up_id),
            {
                "referral_id": str(event.referral_id),
                "due_at": event.due_at,
                "referred_at": event.referred_at,
            },
        )
    ]


def project_follow_up_due(event: FollowUpDueV1) -> list[FactWrite]:
    return [
        FactWrite(
            FOLLOW_UPS_DUE,
            str(event.follow_up_id),
            {
                "referral_id": str(event.referral_id),
                "due_at": event.due_at,
                "referred_at": event.referred_at,
            },
        )
    ]


def project_follow_up_completed(event: FollowUpCompletedV1) -> list[FactWrite]:
    return [
        FactWrite(
            FOLLOW_UPS_COMPLETED,
            str(event.follow_up_id),
            {
                "referral_id": str(event.referral_id),
                "outcome": event.outcome.value,
                "overdue": event.overdue,
                "completed_at": event.completed_at,
                "referred_at": event.referred_at,
            },
        )
    ]


def project_training_completed(event: TrainingCompletedV1) -> list[FactWrite]:
    return [
        FactWrite(
            TRAINING_SESSIONS,
            str(event.session_id),
            {
                "course_id": event.course_id,
                "county_fips": event.county_fips,
                "host_agency_id": event.host_agency_id,
                "held_on": event.held_on.isoformat(),
                # A datetime as well, so one time window filters referrals and trainings alike.
                "held_at": datetime(
                    event.held_on.year, event.held_on.month, event.held_on.day, tzinfo=UTC
                ),
                "month": event.held_on.isoformat()[:7],
                "officer_ids": list(event.officer_ids),
                "officer_agency_ids": list(event.officer_agency_ids),
                "credit_hours": event.credit_hours,
            },
            revision=event.revision,
        )
    ]


def project(event: IntegrationEvent) -> list[FactWrite]:
    match event:
        case ReferralCreatedV1():
            return project_referral_created(event)
        case ReferralStatusChangedV1():
            return project_referral_status_changed(event)
        case FollowUpScheduledV1():
            return project_follow_up_scheduled(event)
        case FollowUpDueV1():
            return project_follow_up_due(event)
        case FollowUpCompletedV1():
            return project_follow_up_completed(event)
        case TrainingCompletedV1():
            return project_training_completed(event)
    raise TypeError(f"no projection for {type(event).__name__}")


PROJECTED_EVENTS: tuple[type[IntegrationEvent], ...] = (
    ReferralCreatedV1,
    ReferralStatusChangedV1,
    FollowUpScheduledV1,
    FollowUpDueV1,
    FollowUpCompletedV1,
    TrainingCompletedV1,
)
