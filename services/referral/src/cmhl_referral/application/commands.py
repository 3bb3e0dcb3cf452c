"""Commands: what a liaison or an agency system asks the referral service to do."""

from dataclasses import dataclass
from datetime import datetime

from cmhl_contracts.vocabulary import CourtType, PersonLocation, PresentingNeed, ReferralSource
from cmhl_referral.domain.consent import ConsentTerms
from cmhl_referral.domain.referral import Assignment, ImportSource, PastStatus, Person


@dataclass(frozen=True)
class CreateReferral:
    agency_id: str
    source: ReferralSource
    court_type: CourtType | None
    agency_reference: str | None
    officer_reference: str | None
    county_fips: str
    primary_need: PresentingNeed
    other_needs: list[PresentingNeed]
    person_location: PersonLocation
    person: Person
    narrative: str | None
    consent: ConsentTerms | None
    referred_at: datetime | None
    correlation_id: str
    causation_id: str | None = None


@dataclass(frozen=True)
class ImportReferral:
    """A past referral from the program's earlier records: what was referred (with `referred_at`
    set), where it came from, its known status history and, if the record says, who served it."""

    referral: CreateReferral
    source: ImportSource
    history: list[PastStatus]
    assignment: Assignment | None
