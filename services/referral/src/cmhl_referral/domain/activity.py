"""Consultations and structural barriers: structured records of a liaison's work outside a
referral's lifecycle, and the rules they are recorded by.

No free text: a consultation is who asked and about what, a barrier is one of a fixed list of
kinds, so neither can carry a name or a narrative (DOMAIN.md, minimum necessary). A barrier tied
to a referral keeps the referral's pseudonymous person id, so every later read of it is audited
against the person; the person id never leaves the service in an answer or an event."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cmhl_contracts.activity import LATE_ENTRY_DAYS, BarrierKind, ConsultationTopic
from cmhl_contracts.vocabulary import ReferralSource

# Fixed: a retried request with the same Idempotency-Key must map to the same record id.
_ACTIVITY_NAMESPACE = uuid.UUID("3f9a6c1e-8b2d-5e47-a0c9-71d4e2b8f605")


class InvalidActivity(ValueError):
    """The record breaks a rule; the message names it (a 422)."""


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was used before for a different record (a 409)."""


def record_id_for(kind: str, recorded_by: str, idempotency_key: str) -> uuid.UUID:
    """Per recorder: one liaison's key can never collide with, or reveal, another's record."""
    return uuid.uuid5(_ACTIVITY_NAMESPACE, f"{kind}\x1f{recorded_by}\x1f{idempotency_key}")


def check_occurred_on(occurred_on: date, today: date) -> None:
    """`today` is the program's day (America/Chicago): a consultation late at night in Missouri
    is not "in the future" because it is already tomorrow in UTC. Older than LATE_ENTRY_DAYS is
    refused: it could fall in a fiscal year whose counts are already published."""
    if occurred_on > today:
        raise InvalidActivity(f"occurred_on must not be in the future (today is {today})")
    if occurred_on < today - timedelta(days=LATE_ENTRY_DAYS):
        raise InvalidActivity(
            f"occurred_on must be within the last {LATE_ENTRY_DAYS} days: older records would "
            "change counts already published"
        )


def check_link(referral_id: uuid.UUID | None, county_fips: str | None) -> None:
    """A barrier belongs to one referral (its county comes from the referral) or to a county."""
    if referral_id is not None and county_fips is not None:
        raise InvalidActivity(
            "give referral_id or county_fips, not both: a referral's barrier is counted in the "
            "referral's county"
        )
    if referral_id is None and county_fips is None:
        raise InvalidActivity("give referral_id or county_fips: a barrier needs one of them")


@dataclass(frozen=True)
class Recorder:
    staff_id: str
    cmhc_id: str | None


@dataclass(frozen=True)
class Consultation:
    consultation_id: uuid.UUID
    county_fips: str
    asked_by: ReferralSource
    topic: ConsultationTopic
    referral_id: uuid.UUID | None
    person_id: str | None
    occurred_on: date
    recorded_by: str
    cmhc_id: str | None
    recorded_at: datetime

    def same_request(self, other: "Consultation") -> bool:
        """What the caller sent is the same (a retry), whenever it was recorded."""
        return (
            self.county_fips,
            self.asked_by,
            self.topic,
            self.referral_id,
            self.occurred_on,
        ) == (other.county_fips, other.asked_by, other.topic, other.referral_id, other.occurred_on)


@dataclass(frozen=True)
class Barrier:
    barrier_id: uuid.UUID
    kind: BarrierKind
    county_fips: str
    referral_id: uuid.UUID | None
    person_id: str | None
    occurred_on: date
    recorded_by: str
    cmhc_id: str | None
    recorded_at: datetime

    def same_request(self, other: "Barrier") -> bool:
        return (self.kind, self.county_fips, self.referral_id, self.occurred_on) == (
            other.kind,
            other.county_fips,
            other.referral_id,
            other.occurred_on,
        )
