"""HTTP DTOs of the referral API (ReferralCreate in, ReferralPublic out)."""

import uuid
from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from cmhl_contracts.envelope import UtcDatetime
from cmhl_contracts.events import (
    BirthDate,
    CountyFips,
    Identifier,
    PersonIdentifiers,
    PersonName,
    ReadableText,
    ReferringAgency,
)
from cmhl_contracts.vocabulary import (
    ContactPlace,
    PersonLocation,
    PresentingNeed,
    ReferralStatus,
)
from cmhl_referral.domain.consent import Consent, ConsentScope, ConsentTerms
from cmhl_referral.domain.lifecycle import ALLOWED_TRANSITIONS
from cmhl_referral.domain.referral import Referral
from cmhl_referral.entrypoints.http.directory import ConnectionPublic


class ConsentIn(BaseModel):
    """A 42 CFR Part 2 consent as the person signed it (§2.31): to whom, for what, what may be
    disclosed, and from when until when (the expiry day included, in the program's time zone)."""

    model_config = ConfigDict(extra="forbid")
    recipient: Identifier = Field(
        description="The agency's or court's id (as in `agency.agency_id`) that may be told"
    )
    purpose: ReadableText = Field(
        description="Why, as the consent form words it; e.g. `feedback to the referring agency`",
    )
    scope: list[ConsentScope] = Field(
        min_length=1,
        description="`referral_status`: received, in progress, connected to treatment or "
        "closed; `attendance_compliance`: attendance and compliance, for a court (§2.35)",
    )
    signed_on: date
    expires_on: date

    def terms(self) -> ConsentTerms:
        return ConsentTerms(
            recipient=self.recipient,
            purpose=self.purpose,
            scope=frozenset(self.scope),
            signed_on=self.signed_on,
            expires_on=self.expires_on,
        )


class ConsentPublic(ConsentIn):
    consent_id: uuid.UUID
    recorded_at: UtcDatetime
    revoked_at: UtcDatetime | None

    @classmethod
    def of(cls, consent: Consent) -> "ConsentPublic":
        terms = consent.terms
        return cls(
            consent_id=consent.consent_id,
            recipient=terms.recipient,
            purpose=terms.purpose,
            scope=sorted(terms.scope),
            signed_on=terms.signed_on,
            expires_on=terms.expires_on,
            recorded_at=consent.recorded_at,
            revoked_at=consent.revoked_at,
        )


class ReferralSubmission(BaseModel):
    """The fields every way of submitting a referral shares (liaisons and agency systems)."""

    model_config = ConfigDict(extra="forbid")

    agency: ReferringAgency
    agency_reference: Identifier | None = Field(
        default=None, description="The agency's own id; resubmitting it returns the same referral"
    )
    officer_reference: Identifier | None = None
    county_fips: CountyFips
    primary_need: PresentingNeed
    other_needs: Annotated[list[PresentingNeed], Field(max_length=4)] = []
    person_location: PersonLocation
    person: PersonIdentifiers
    narrative: str | None = Field(default=None, max_length=4000)
    referred_at: UtcDatetime | None = None


class ReferralCreate(ReferralSubmission):
    part2_consent: ConsentIn | None = Field(
        default=None, description="A consent the person signed at intake, if any"
    )


ReasonCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]


class StatusChange(BaseModel):
    """Move a referral through its lifecycle; declines and referrals elsewhere need a reason."""

    model_config = ConfigDict(extra="forbid")
    status: ReferralStatus
    reason: ReasonCode | None = Field(
        default=None, description="A short code such as `not_in_service_area`; no narrative"
    )
    appointment_at: UtcDatetime | None = Field(
        default=None,
        description="Required with `appointment_scheduled` (and only then): when it is",
    )


class ContactAttempt(BaseModel):
    model_config = ConfigDict(extra="forbid")
    place: ContactPlace
    reached: bool
    attempted_at: UtcDatetime | None = None


class Reassignment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    liaison_id: Identifier


class ConflictDetail(BaseModel):
    detail: str
    current_status: ReferralStatus
    allowed: list[ReferralStatus]


class ReferralSummary(BaseModel):
    """A caseload row: enough to work the list, without the narrative."""

    referral_id: uuid.UUID
    status: ReferralStatus
    agency_id: str
    county_fips: str
    primary_need: PresentingNeed
    person_id: str
    given_name: str
    family_name: str
    liaison_id: str
    repeat_involvement: bool
    referred_at: UtcDatetime
    received_at: UtcDatetime

    @classmethod
    def of(cls, referral: Referral) -> "ReferralSummary":
        return cls(
            referral_id=referral.referral_id,
            status=referral.status,
            agency_id=referral.agency_id,
            county_fips=referral.county_fips,
            primary_need=referral.primary_need,
            person_id=referral.person_id,
            given_name=referral.person.given_name,
            family_name=referral.person.family_name,
            liaison_id=referral.assignment.liaison_id,
            repeat_involvement=referral.repeat_involvement,
            referred_at=referral.referred_at,
            received_at=referral.received_at,
        )


class ReferralsPublic(BaseModel):
    data: list[ReferralSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class CaseloadOverview(BaseModel):
    waiting_by_liaison: dict[str, int] = Field(
        description="Referrals still `received` per liaison (yours, or your CMHC's), counted up "
        "to `cap`"
    )
    cap: int
    newest_received_at: UtcDatetime | None


class SummariesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    referral_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)


class AccountingRequest(BaseModel):
    """The person whose disclosures are asked for, as the privacy officer knows them."""

    model_config = ConfigDict(extra="forbid")
    given_name: PersonName
    family_name: PersonName
    birth_date: BirthDate


class Disclosure(BaseModel):
    service: str = Field(description="The service that recorded the access")
    actor: str
    actor_roles: list[str]
    action: str
    record: str = Field(description="What was touched: `referral/<id>`, `follow_up/<id>`, ...")
    referral_id: str | None
    at: UtcDatetime
    source_address: str | None
    outcome: str


class AccountingPublic(BaseModel):
    person_id: str
    disclosures: list[Disclosure]


class ReferralPublic(BaseModel):
    referral_id: uuid.UUID
    status: ReferralStatus
    agency: ReferringAgency
    agency_reference: str | None
    officer_reference: str | None
    county_fips: str
    primary_need: PresentingNeed
    other_needs: list[PresentingNeed]
    person_location: PersonLocation
    person_id: str
    person: PersonIdentifiers
    narrative: str | None
    consents: list[ConsentPublic] = Field(
        description="Every consent recorded, revoked and expired ones included"
    )
    liaison_id: str
    cmhc_id: str
    repeat_involvement: bool
    referred_at: UtcDatetime
    received_at: UtcDatetime
    history: list[dict[str, str]]
    allowed_transitions: list[ReferralStatus] = Field(
        description="The statuses this referral may move to next; empty once it is closed"
    )
    imported_from: dict[str, str] | None = Field(
        default=None,
        description="For a referral loaded from the program's earlier records: that system and "
        "its id for the record",
    )
    connections: list[ConnectionPublic] | None = Field(
        default=None,
        description="On GET /referrals/{id}: the directory services the person was connected to",
    )

    @classmethod
    def of(cls, referral: Referral) -> "ReferralPublic":
        return cls(
            referral_id=referral.referral_id,
            status=referral.status,
            agency=ReferringAgency(
                agency_id=referral.agency_id,
                source=referral.source,
                court_type=referral.court_type,
            ),
            agency_reference=referral.agency_reference,
            officer_reference=referral.officer_reference,
            county_fips=referral.county_fips,
            primary_need=referral.primary_need,
            other_needs=referral.other_needs,
            person_location=referral.person_location,
            person_id=referral.person_id,
            person=PersonIdentifiers(
                given_name=referral.person.given_name,
                family_name=referral.person.family_name,
                birth_date=referral.person.birth_date,
                agency_person_ref=referral.person.agency_person_ref,
            ),
            narrative=referral.narrative,
            consents=[ConsentPublic.of(c) for c in referral.consents],
            liaison_id=referral.assignment.liaison_id,
            cmhc_id=referral.assignment.cmhc_id,
            repeat_involvement=referral.repeat_involvement,
            referred_at=referral.referred_at,
            received_at=referral.received_at,
            history=referral.history,
            allowed_transitions=sorted(ALLOWED_TRANSITIONS[referral.status]),
            imported_from=(
                {
                    "system": referral.imported_from.system,
                    "record_id": referral.imported_from.record_id,
                }
                if referral.imported_from
                else None
            ),
        )
