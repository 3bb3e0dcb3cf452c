"""One translation from any referral submission (liaison HTTP, agency HTTP, agency topic) to the
CreateReferral command: the three carry the same fields under the same names."""

from datetime import datetime
from typing import Protocol

from cmhl_contracts.events import PersonIdentifiers, ReferringAgency
from cmhl_contracts.vocabulary import PersonLocation, PresentingNeed
from cmhl_referral.application.commands import CreateReferral
from cmhl_referral.domain.consent import ConsentTerms
from cmhl_referral.domain.referral import Person


class Submission(Protocol):
    @property
    def agency(self) -> ReferringAgency: ...
    @property
    def agency_reference(self) -> str | None: ...
    @property
    def officer_reference(self) -> str | None: ...
    @property
    def county_fips(self) -> str: ...
    @property
    def primary_need(self) -> PresentingNeed: ...
    @property
    def other_needs(self) -> list[PresentingNeed]: ...
    @property
    def person_location(self) -> PersonLocation: ...
    @property
    def person(self) -> PersonIdentifiers: ...
    @property
    def narrative(self) -> str | None: ...
    @property
    def referred_at(self) -> datetime | None: ...


def create_command(
    submission: Submission,
    correlation_id: str,
    *,
    consent: ConsentTerms | None = None,
    causation_id: str | None = None,
) -> CreateReferral:
    person = submission.person
    return CreateReferral(
        agency_id=submission.agency.agency_id,
        source=submission.agency.source,
        court_type=submission.agency.court_type,
        agency_reference=submission.agency_reference,
        officer_reference=submission.officer_reference,
        county_fips=submission.county_fips,
        primary_need=submission.primary_need,
        other_needs=submission.other_needs,
        person_location=submission.person_location,
        person=Person(
            person.given_name, person.family_name, person.birth_date, person.agency_person_ref
        ),
        narrative=submission.narrative,
        consent=consent,
        referred_at=submission.referred_at,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )
