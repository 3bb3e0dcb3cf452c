"""42 CFR Part 2 consents: what a person allowed to be disclosed about their referral, to whom,
for what and until when; and the coarse status an agency may learn under one (§2.31, §2.35)."""

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum

from cmhl_contracts.vocabulary import FeedbackStatus, ReferralStatus

# Fixed namespace: the same consent recorded twice (a retried request) gets the same id.
_CONSENT_NAMESPACE = uuid.UUID("5d0b7f3e-2c8a-5b1d-9e6f-4a3c2b1d0e9f")

# §2.32 as amended in 2024: every disclosure made with the person's consent carries it.
REDISCLOSURE_NOTICE = (
    "This record which has been disclosed to you is protected by Federal confidentiality rules"
    " (42 CFR part 2). These rules prohibit you from using or disclosing this record, or"
    " testimony that describes the information contained in this record, in any civil,"
    " criminal, administrative, or legislative proceedings by any Federal, State, or local"
    " authority, against the patient, unless authorized by the consent of the patient, except"
    " as provided at 42 CFR 2.12(c)(5) or as authorized by a court in accordance with 42 CFR"
    " 2.64 or 2.65. In addition, the Federal rules prohibit you from making any further"
    " disclosure of this record unless authorized by the written consent of the person to whom"
    " it pertains, or as otherwise permitted by 42 CFR part 2. A general authorization for the"
    " release of medical or other information is NOT sufficient for this purpose (see 42 CFR"
    " 2.31). The Federal rules restrict any use of the information to investigate or prosecute"
    " with regard to a crime any patient with a substance use disorder, except as provided at"
    " 42 CFR 2.12(c)(5) and 2.65."
)


class ConsentScope(StrEnum):
    """What a consent lets the program tell its recipient."""

    REFERRAL_STATUS = "referral_status"
    """Where the referral stands: received, in progress, connected to treatment, closed."""
    ATTENDANCE_COMPLIANCE = "attendance_compliance"
    """Whether the person attends and complies with treatment: what §2.35 lets a court learn."""


def feedback_status(status: ReferralStatus) -> FeedbackStatus:
    if status is ReferralStatus.RECEIVED:
        return FeedbackStatus.RECEIVED
    if status is ReferralStatus.CONNECTED_TO_TREATMENT:
        return FeedbackStatus.CONNECTED_TO_TREATMENT
    if status in _CLOSED_WITHOUT_CONNECTION:
        return FeedbackStatus.CLOSED
    return FeedbackStatus.IN_PROGRESS


_CLOSED_WITHOUT_CONNECTION = frozenset(
    {
        ReferralStatus.DECLINED,
        ReferralStatus.DECLINED_BY_PERSON,
        ReferralStatus.REFERRED_ELSEWHERE,
        ReferralStatus.LOST_TO_FOLLOW_UP,
    }
)


class InvalidConsent(ValueError):
    """A consent that breaks a rule of §2.31; the message names the rule."""


@dataclass(frozen=True)
class ConsentTerms:
    """What the person signed: the recipient (an agency's or a court's id, as in `agency_id`),
    the purpose, what may be disclosed, when it was signed and when it ends."""

    recipient: str
    purpose: str
    scope: frozenset[ConsentScope]
    signed_on: date
    expires_on: date

    def check(self, today: date) -> None:
        if not self.scope:
            raise InvalidConsent("a consent must say what may be disclosed (scope)")
        if self.expires_on < self.signed_on:
            raise InvalidConsent("a consent cannot expire before it was signed")
        if self.signed_on > today:
            raise InvalidConsent("a consent cannot be signed in the future")
        if self.expires_on < today:
            raise InvalidConsent("a consent must not have expired when it is recorded")


@dataclass(frozen=True)
class Consent:
    consent_id: uuid.UUID
    terms: ConsentTerms
    recorded_at: datetime
    revoked_at: datetime | None = None

    @classmethod
    def record(cls, referral_id: uuid.UUID, terms: ConsentTerms, at: datetime) -> "Consent":
        scope = ",".join(sorted(terms.scope))
        name = (
            f"{referral_id}\x1f{terms.recipient}\x1f{terms.purpose}\x1f{scope}"
            f"\x1f{terms.signed_on.isoformat()}\x1f{terms.expires_on.isoformat()}"
        )
        return cls(uuid.uuid5(_CONSENT_NAMESPACE, name), terms, at)

    def revoked(self, at: datetime) -> "Consent":
        return replace(self, revoked_at=at)

    def in_force(self, on: date) -> bool:
        """Signed, not expired (the expiry day still counts) and not revoked."""
        terms = self.terms
        return self.revoked_at is None and terms.signed_on <= on <= terms.expires_on

    def covers(self, recipient: str, scope: ConsentScope, on: date) -> bool:
        return self.in_force(on) and self.terms.recipient == recipient and scope in self.terms.scope


def consent_covering(
    consents: list["Consent"], recipient: str, scope: ConsentScope, on: date
) -> "Consent | None":
    """The consent in force that lets `recipient` learn `scope` on that day; the one that
    lasts longest if several do."""
    covering = [c for c in consents if c.covers(recipient, scope, on)]
    return max(covering, key=lambda c: c.terms.expires_on, default=None)
