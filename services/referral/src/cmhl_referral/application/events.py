"""Translation from the referral aggregate to the contract events it publishes."""

from datetime import datetime
from typing import Any

from cmhl_contracts import (
    ReferralContactAttemptedV1,
    ReferralCreatedV1,
    ReferralFeedbackV1,
    ReferralReassignedV1,
    ReferralStatusChangedV1,
)
from cmhl_contracts.vocabulary import ContactPlace, FeedbackStatus, ReferralStatus
from cmhl_referral.domain.consent import REDISCLOSURE_NOTICE, Consent
from cmhl_referral.domain.referral import Referral

PRODUCER = "cmhl-referral"


def _change_fields(referral: Referral, sequence: int, at: datetime) -> dict[str, Any]:
    """What every change event of a referral carries: its deterministic id (referral and
    position in its history), the referral, the person's pseudonym and the time."""
    return {
        "about": (str(referral.referral_id), str(sequence)),
        "producer": PRODUCER,
        "occurred_at": at,
        "referral_id": referral.referral_id,
        "person_id": referral.person_id,
        "sequence": sequence,
    }


def referral_created(
    referral: Referral, correlation_id: str, causation_id: str | None
) -> ReferralCreatedV1:
    return ReferralCreatedV1.create(
        about=(str(referral.referral_id),),
        producer=PRODUCER,
        correlation_id=correlation_id,
        causation_id=causation_id,
        occurred_at=referral.received_at,
        referral_id=referral.referral_id,
        person_id=referral.person_id,
        agency_id=referral.agency_id,
        source=referral.source,
        court_type=referral.court_type,
        county_fips=referral.county_fips,
        primary_need=referral.primary_need,
        other_needs=referral.other_needs,
        person_location=referral.person_location,
        liaison_id=referral.assignment.liaison_id,
        cmhc_id=referral.assignment.cmhc_id,
        referred_at=referral.referred_at,
        repeat_involvement=referral.repeat_involvement,
        part2_consent=bool(referral.consents),
        imported=referral.imported_from is not None,
        status_at_import=referral.status if referral.imported_from is not None else None,
    )


def imported_history(
    referral: Referral, moves: list[tuple[int, ReferralStatus]], correlation_id: str
) -> list[ReferralStatusChangedV1]:
    """The status changes of an imported referral's history, each with its own date."""
    events = []
    for (sequence, previous), entry in zip(moves, referral.history, strict=True):
        at = datetime.fromisoformat(entry["at"])
        appointment = entry.get("appointment_at")
        events.append(
            ReferralStatusChangedV1.create(
                **_change_fields(referral, sequence, at),
                correlation_id=correlation_id,
                liaison_id=referral.assignment.liaison_id,
                cmhc_id=referral.assignment.cmhc_id,
                from_status=previous,
                to_status=ReferralStatus(entry["to"]),
                changed_at=at,
                referred_at=referral.referred_at,
                reason=entry["reason"] or None,
                appointment_at=datetime.fromisoformat(appointment) if appointment else None,
            )
        )
    return events


def status_changed(
    referral: Referral,
    sequence: int,
    previous: ReferralStatus,
    at: datetime,
    reason: str | None,
    appointment_at: datetime | None,
    correlation_id: str,
) -> ReferralStatusChangedV1:
    return ReferralStatusChangedV1.create(
        **_change_fields(referral, sequence, at),
        correlation_id=correlation_id,
        liaison_id=referral.assignment.liaison_id,
        cmhc_id=referral.assignment.cmhc_id,
        from_status=previous,
        to_status=referral.status,
        changed_at=at,
        referred_at=referral.referred_at,
        reason=reason,
        appointment_at=appointment_at,
    )


def contact_attempted(
    referral: Referral,
    sequence: int,
    place: ContactPlace,
    reached: bool,
    at: datetime,
    correlation_id: str,
) -> ReferralContactAttemptedV1:
    return ReferralContactAttemptedV1.create(
        **_change_fields(referral, sequence, at),
        correlation_id=correlation_id,
        liaison_id=referral.assignment.liaison_id,
        cmhc_id=referral.assignment.cmhc_id,
        attempted_at=at,
        referred_at=referral.referred_at,
        place=place,
        reached=reached,
    )


def reassigned(
    referral: Referral, sequence: int, previous_liaison: str, at: datetime, correlation_id: str
) -> ReferralReassignedV1:
    return ReferralReassignedV1.create(
        **_change_fields(referral, sequence, at),
        correlation_id=correlation_id,
        from_liaison_id=previous_liaison,
        to_liaison_id=referral.assignment.liaison_id,
        cmhc_id=referral.assignment.cmhc_id,
        reassigned_at=at,
    )


def referral_feedback(
    referral: Referral,
    status: FeedbackStatus | None,
    consent: Consent | None,
    correlation_id: str,
) -> ReferralFeedbackV1:
    """What the referring agency may learn now; its id names the referral's change count, so
    a retried write publishes the same event."""
    assert referral.agency_reference is not None
    sequence = len(referral.history)
    return ReferralFeedbackV1.create(
        about=(str(referral.referral_id), "feedback", str(sequence)),
        producer=PRODUCER,
        correlation_id=correlation_id,
        referral_id=referral.referral_id,
        agency_id=referral.agency_id,
        agency_reference=referral.agency_reference,
        sequence=sequence,
        received_at=referral.received_at,
        status=status,
        status_withheld=status is None,
        consent_expires_on=consent.terms.expires_on if consent and status else None,
        redisclosure_notice=REDISCLOSURE_NOTICE if status else None,
    )
