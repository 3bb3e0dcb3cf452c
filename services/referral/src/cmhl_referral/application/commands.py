"""Commands: what a liaison or an agency system asks the referral service to do."""

from dataclasses import dataclass
from datetime import datetime

from cmhl_contracts.vocabulary import CourtType, PersonLocation, PresentingNeed, ReferralSource
from cmhl_referral.domain.consent import ConsentTerms
from cmhl_referral.domain.referral import Person


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
