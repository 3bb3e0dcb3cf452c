"""HTTP DTOs of the referral API (ReferralCreate in, ReferralPublic out)."""

import uuid
from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from cmhl_contracts.envelope import UtcDatetime
from cmhl_contracts.events import CountyFips, Identifier, PersonIdentifiers, ReferringAgency
from cmhl_contracts.vocabulary import PersonLocation, PresentingNeed, ReferralStatus
from cmhl_referral.domain.referral import Referral


class Part2ConsentIn(BaseModel):
    """Consent under 42 CFR 2.35 to disclose to the referring justice agency."""

    model_config = ConfigDict(extra="forbid")
    recipient: str = Field(min_length=1, max_length=200)
    expires_on: date


class ReferralCreate(BaseModel):
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
    part2_consent: Part2ConsentIn | None = None
    referred_at: UtcDatetime | None = None


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
    part2_consent: Part2ConsentIn | None
    liaison_id: str
    cmhc_id: str
    repeat_involvement: bool
    referred_at: UtcDatetime
    received_at: UtcDatetime

    @classmethod
    def of(cls, referral: Referral) -> "ReferralPublic":
        consent = referral.part2_consent
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
            part2_consent=(
                Part2ConsentIn(recipient=consent.recipient, expires_on=consent.expires_on)
                if consent
                else None
            ),
            liaison_id=referral.assignment.liaison_id,
            cmhc_id=referral.assignment.cmhc_id,
            repeat_involvement=referral.repeat_involvement,
            referred_at=referral.referred_at,
            received_at=referral.received_at,
        )
