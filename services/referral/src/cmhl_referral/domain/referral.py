"""A referral and the rules applied when one is received."""

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from cmhl_contracts.vocabulary import (
    ContactPlace,
    CourtType,
    FollowUpOutcome,
    PersonLocation,
    PresentingNeed,
    ReferralSource,
    ReferralStatus,
)
from cmhl_referral.domain.consent import Consent, InvalidConsent
from cmhl_referral.domain.lifecycle import CLOSED, check_transition, status_after_outcome

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
    consents: list[Consent]
    assignment: Assignment
    referred_at: datetime
    received_at: datetime
    repeat_involvement: bool
    status: ReferralStatus = ReferralStatus.RECEIVED
    history: list[dict[str, str]] = field(default_factory=list)
    version: int = 0
    imported_from: "ImportSource | None" = None
    submission_id: str | None = None
    """The agency submission (its event id on Kafka) that created the referral: that submission
    applied again, after its write landed, is recognised as the same creation."""

    def replay(self, steps: "list[PastStatus]", now: datetime) -> list[tuple[int, ReferralStatus]]:
        """An imported referral's known history, checked as the lifecycle checks a live one:
        each step allowed from the one before, in order, after the referral and not in the
        future. Returns (sequence, status it left) per step. A reason the earlier system did not
        record is `not_recorded`."""
        moves: list[tuple[int, ReferralStatus]] = []
        last = self.referred_at
        for step in steps:
            if step.at < self.referred_at:
                raise InvalidReferral(f"{step.status} on {step.at:%Y-%m-%d} precedes the referral")
            if step.at < last:
                raise InvalidReferral("the status history is not in order of time")
            if step.at > now:
                raise InvalidReferral(f"{step.status} is dated in the future")
            previous = self.status
            check_transition(previous, step.status)
            reason = step.reason or ("not_recorded" if step.status in REASON_REQUIRED else None)
            moves.append((self._move(step.status, step.at, reason, step.appointment_at), previous))
            last = step.at
        return moves

    @property
    def next_sequence(self) -> int:
        return len(self.history) + 1

    def change_status(
        self,
        to: ReferralStatus,
        at: datetime,
        reason: str | None,
        appointment_at: datetime | None = None,
    ) -> int:
        """Moves through the lifecycle; returns the change's sequence number."""
        check_transition(self.status, to)
        return self._move(to, at, reason, appointment_at)

    def _move(
        self,
        to: ReferralStatus,
        at: datetime,
        reason: str | None,
        appointment_at: datetime | None = None,
    ) -> int:
        if to in REASON_REQUIRED and not reason:
            raise InvalidReferral(f"a reason is required to move to {to}")
        if (to is ReferralStatus.APPOINTMENT_SCHEDULED) != (appointment_at is not None):
            raise InvalidReferral(
                "appointment_at is required for appointment_scheduled and only for it"
            )
        if appointment_at is not None and appointment_at < self.referred_at:
            raise InvalidReferral("an appointment cannot precede the referral")
        sequence = self.next_sequence
        entry = {
            "kind": "status",
            "from": self.status.value,
            "to": to.value,
            "at": at.isoformat(),
            "reason": reason or "",
        }
        if appointment_at is not None:
            entry["appointment_at"] = appointment_at.isoformat()
        self.history.append(entry)
        self.status = to
        return sequence

    def record_follow_up_outcome(
        self, follow_up_id: str, outcome: FollowUpOutcome, at: datetime
    ) -> "OutcomeNoted | None":
        """Notes what a follow-up found and moves the referral where the outcome says
        (lifecycle.OUTCOME_MOVES); None if this follow-up's outcome was noted before."""
        if any(h.get("follow_up_id") == follow_up_id for h in self.history):
            return None
        self.history.append(
            {
                "kind": "follow_up",
                "follow_up_id": follow_up_id,
                "outcome": outcome.value,
                "at": at.isoformat(),
            }
        )
        to = status_after_outcome(self.status, outcome)
        if to is None:
            return OutcomeNoted(None)
        previous = self.status
        return OutcomeNoted((previous, self._move(to, at, f"follow_up_{outcome.value}")))

    def record_contact(self, place: ContactPlace, reached: bool, at: datetime) -> int:
        if self.status in CLOSED:
            raise ReferralClosed(self.status)
        if at < self.referred_at:
            raise InvalidReferral("a contact attempt cannot precede the referral")
        sequence = self.next_sequence
        self.history.append(
            {
                "kind": "contact",
                "place": place.value,
                "reached": "yes" if reached else "no",
                "at": at.isoformat(),
            }
        )
        return sequence

    def record_consent(self, consent: Consent) -> Consent | None:
        """Adds a consent the person signed (its terms were checked) and returns None; if this
        very consent is recorded already (a retried request), returns the stored one. Closed
        referrals take consents too: a court may still ask afterwards."""
        for stored in self.consents:
            if stored.consent_id == consent.consent_id:
                if stored.revoked_at is not None:
                    raise InvalidConsent(
                        "this consent was revoked; a consent signed again has a new signed_on"
                    )
                return stored
        self.consents.append(consent)
        self._note_consent("given", consent, consent.recorded_at)
        return None

    def revoke_consent(self, consent_id: uuid.UUID, at: datetime) -> Consent:
        """The person revoked a consent: from now on it allows nothing. Revoking it again
        changes nothing."""
        for index, consent in enumerate(self.consents):
            if consent.consent_id == consent_id:
                if consent.revoked_at is None:
                    self.consents[index] = consent.revoked(at)
                    self._note_consent("revoked", consent, at)
                return self.consents[index]
        raise UnknownConsent

    def _note_consent(self, change: str, consent: Consent, at: datetime) -> None:
        self.history.append(
            {
                "kind": "consent",
                "to": change,
                "consent_id": str(consent.consent_id),
                "recipient": consent.terms.recipient,
                "expires_on": consent.terms.expires_on.isoformat(),
                "at": at.isoformat(),
            }
        )

    def reassign(self, to: Assignment, at: datetime) -> int:
        if self.status in CLOSED:
            raise ReferralClosed(self.status)
        if to == self.assignment:
            raise InvalidReferral("the referral is already assigned to this liaison")
        sequence = self.next_sequence
        self.history.append(
            {
                "kind": "reassign",
                "from": self.assignment.liaison_id,
                "to": to.liaison_id,
                "at": at.isoformat(),
            }
        )
        self.assignment = to
        return sequence


@dataclass(frozen=True)
class OutcomeNoted:
    moved: tuple[ReferralStatus, int] | None
    """The status left and the sequence of the status change, when the outcome moved it."""


class InvalidReferral(ValueError):
    """A referral that breaks a business rule; the message names the rule, never a value."""


class UnknownConsent(Exception):
    """The referral has no consent with that id."""


class ReferralClosed(Exception):
    """A closed referral takes no more changes: a new episode is a new referral."""

    def __init__(self, status: ReferralStatus) -> None:
        super().__init__(f"the referral is closed ({status})")
        self.status = status


REASON_REQUIRED = frozenset({ReferralStatus.DECLINED, ReferralStatus.REFERRED_ELSEWHERE})


@dataclass(frozen=True)
class ImportSource:
    """Where an imported referral came from: the earlier system and its id for the record."""

    system: str
    record_id: str


@dataclass(frozen=True)
class PastStatus:
    """One step of an imported referral's history, as the earlier system recorded it."""

    status: ReferralStatus
    at: datetime
    reason: str | None = None
    appointment_at: datetime | None = None


def check_referred_at(referred_at: datetime, now: datetime) -> None:
    if referred_at > now + timedelta(minutes=5):
        raise InvalidReferral("referred_at is in the future")
    if referred_at < now - MAX_BACKDATE:
        raise InvalidReferral("referred_at is more than 10 years in the past")


def is_repeat_involvement(referred_at: datetime, earlier: list[datetime]) -> bool:
    """Another referral of the same person in the 90 days before this one (DOMAIN.md)."""
    return any(referred_at - REPEAT_WINDOW <= other < referred_at for other in earlier)
