"""Builders of the referral events the follow-up service reacts to."""

import uuid
from datetime import datetime
from typing import Any

from cmhl_contracts import ReferralCreatedV1, ReferralReassignedV1, ReferralStatusChangedV1
from cmhl_contracts.vocabulary import ReferralStatus

PERSON = "b" * 32


def referral_created(
    referral_id: uuid.UUID, referred_at: datetime, liaison_id: str = "liaison-11"
) -> ReferralCreatedV1:
    return ReferralCreatedV1.create(
        about=(str(referral_id),),
        producer="test",
        correlation_id=f"corr-{referral_id}",
        referral_id=referral_id,
        person_id=PERSON,
        agency_id="kc-pd",
        source="municipal_police",
        county_fips="29095",
        primary_need="behavioral_needs",
        person_location="community",
        liaison_id=liaison_id,
        cmhc_id="cmhc-09",
        referred_at=referred_at,
        repeat_involvement=False,
    )


def status_changed(
    referral_id: uuid.UUID,
    referred_at: datetime,
    sequence: int,
    to: ReferralStatus,
    at: datetime,
    appointment_at: datetime | None = None,
    liaison_id: str = "liaison-11",
) -> ReferralStatusChangedV1:
    extra: dict[str, Any] = {"appointment_at": appointment_at} if appointment_at else {}
    return ReferralStatusChangedV1.create(
        about=(str(referral_id), str(sequence)),
        producer="test",
        correlation_id=f"corr-{referral_id}",
        referral_id=referral_id,
        person_id=PERSON,
        liaison_id=liaison_id,
        cmhc_id="cmhc-09",
        from_status=ReferralStatus.ACCEPTED,
        to_status=to,
        sequence=sequence,
        changed_at=at,
        referred_at=referred_at,
        reason="test" if to is ReferralStatus.DECLINED else None,
        **extra,
    )


def reassigned(
    referral_id: uuid.UUID, sequence: int, to_liaison: str, at: datetime
) -> ReferralReassignedV1:
    return ReferralReassignedV1.create(
        about=(str(referral_id), str(sequence)),
        producer="test",
        correlation_id=f"corr-{referral_id}",
        referral_id=referral_id,
        person_id=PERSON,
        sequence=sequence,
        from_liaison_id="liaison-11",
        to_liaison_id=to_liaison,
        cmhc_id="cmhc-09",
        reassigned_at=at,
    )
