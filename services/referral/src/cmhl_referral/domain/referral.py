"""A referral and the rules applied when one is received."""

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from cmhl_contracts.vocabulary import (
    CourtType,
    PersonLocation,
    PresentingNeed,
    ReferralSource,
    ReferralStatus,
)

REPEAT_WINDOW = timedelta(days=90)
# Liaisons sometimes record a referral days after the call; older than this is a data error.
MAX_BACKDATE = timedelta(days=365 * 10)

# Fixed namespace: a referral submitted twice by an agency must get the same id both times.
_REFERRAL_NAMESPACE = uuid.UUID("1b6c8f0e-4d5a-5e3b-8a7c-2f9e0d1c3b4a")


def referral_id_for(agency_id: str, agency_reference: str) -> uuid.UUID:
    """Idempotency by (agency, agency's own reference): a resubmission maps to the same id."""
    return uuid.uuid5(_REFERRAL_NAMESPACE, f"{agency_id}\x1f{agency_reference}")


@dataclass(frozen=True)
class Person:
    """Clear identifiers, kept only (encrypted) in the referral store."""

    given_name: str
    family_name: str
    birth_date: date
    agency_person_ref: str | None = None


@dataclass(frozen=True)
class Part2Consent:
    """42 CFR 2.35 consent to disclose to the referring justice agency."""

    recipient: str
    expires_on: date


@dataclass(frozen=True)
class Assignment:
    liaison_id: str
    cmhc_id: str


@dataclass
class Referral:
    referral_id: uuid.UUID
    agency_id: str
    agency_reference: str | None
    source: ReferralSource
    court_type: CourtType | None
    officer_reference: str | None
    county_fips: str
    primary_need: PresentingNeed
    other_needs: list[PresentingNeed]
    person_location: PersonLocation
    person: Person
    person_id: str
    narrative: str | None
    part2_consent: Part2Consent | None
    assignment: Assignment
    referred_at: datetime
    received_at: datetime
    repeat_involvement: bool
    status: ReferralStatus = ReferralStatus.RECEIVED
    history: list[dict[str, str]] = field(default_factory=list)


class InvalidReferral(ValueError):
    """A referral that breaks a business rule; the message names the rule, never a value."""


def check_referred_at(referred_at: datetime, now: datetime) -> None:
    if referred_at > now + timedelta(minutes=5):
        raise InvalidReferral("referred_at is in the future")
    if referred_at < now - MAX_BACKDATE:
        raise InvalidReferral("referred_at is more than 10 years in the past")


def is_repeat_involvement(referred_at: datetime, earlier: list[datetime]) -> bool:
    """Another referral of the same person in the 90 days before this one (DOMAIN.md)."""
    return any(referred_at - REPEAT_WINDOW <= other < referred_at for other in earlier)
