"""The treatment and support directory (Open Referral HSDS): what a service is to the program,
which counties it serves, which kinds of help it gives, and the rules a record must meet.

A service serves a county through its locations' counties and through its service areas. Its
kinds of help are a small controlled vocabulary (contracts' `ServiceType`) mapped from HSDS
taxonomy terms; who it is for, another (`Eligibility`). Rules never quote the record's values in
their reasons: a reason names the field and the rule."""

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_contracts.directory import ServiceType

# The taxonomies whose term codes are the program's own vocabularies (HSDS `taxonomy_term.
# taxonomy`); terms of any other taxonomy are read by name through TERM_NAMES.
SERVICE_TYPE_TAXONOMY: Final = "cmhl_service_type"
ELIGIBILITY_TAXONOMY: Final = "cmhl_eligibility"

# Common term names of public directories (211 and AIRS-style names), case and spacing ignored.
TERM_NAMES: Final[dict[str, ServiceType]] = {
    "crisis intervention": ServiceType.CRISIS,
    "crisis services": ServiceType.CRISIS,
    "crisis stabilization": ServiceType.CRISIS,
    "mobile crisis": ServiceType.CRISIS,
    "crisis respite": ServiceType.CRISIS,
    "suicide prevention hotlines": ServiceType.CRISIS,
    "outpatient mental health": ServiceType.OUTPATIENT_MENTAL_HEALTH,
    "outpatient mental health facilities": ServiceType.OUTPATIENT_MENTAL_HEALTH,
    "mental health counseling": ServiceType.OUTPATIENT_MENTAL_HEALTH,
    "medication management": ServiceType.OUTPATIENT_MENTAL_HEALTH,
    "psychiatric medication services": ServiceType.OUTPATIENT_MENTAL_HEALTH,
    "substance use disorder treatment": ServiceType.SUBSTANCE_USE,
    "substance use treatment": ServiceType.SUBSTANCE_USE,
    "substance abuse services": ServiceType.SUBSTANCE_USE,
    "detoxification": ServiceType.SUBSTANCE_USE,
    "inpatient mental health": ServiceType.INPATIENT,
    "inpatient psychiatric care": ServiceType.INPATIENT,
    "psychiatric hospitals": ServiceType.INPATIENT,
    "housing": ServiceType.HOUSING,
    "emergency shelter": ServiceType.HOUSING,
    "transitional housing": ServiceType.HOUSING,
    "supportive housing": ServiceType.HOUSING,
    "case management": ServiceType.CASE_MANAGEMENT,
    "case/care management": ServiceType.CASE_MANAGEMENT,
    "peer support": ServiceType.PEER_SUPPORT,
    "peer support services": ServiceType.PEER_SUPPORT,
    "transportation": ServiceType.TRANSPORTATION,
    "medical transportation": ServiceType.TRANSPORTATION,
}


class Eligibility(StrEnum):
    """Who a service is for, as the program searches it (never a person's details)."""

    ADULTS = "adults"
    YOUTH = "youth"
    OLDER_ADULTS = "older_adults"
    VETERANS = "veterans"
    MEDICAID = "medicaid"
    UNINSURED = "uninsured"
    JUSTICE_INVOLVED = "justice_involved"


_TYPE_CODES: Final = frozenset(t.value for t in ServiceType)
_ELIGIBILITY_CODES: Final = frozenset(e.value for e in Eligibility)

# A service area that covers the whole state (a crisis line, say).
STATEWIDE_NAMES: Final = frozenset({"missouri", "statewide", "state of missouri", "mo"})
ADULT_AGE: Final = 18
OLDER_ADULT_AGE: Final = 60


class InvalidDirectoryRecord(ValueError):
    """A directory record breaks a rule; the message names the field and the rule only."""


@dataclass(frozen=True)
class Organization:
    id: str
    name: str


@dataclass(frozen=True)
class Location:
    id: str
    name: str | None
    address: str | None
    county_fips: str | None
    """None for a location outside Missouri or without a physical address (a phone line)."""


@dataclass(frozen=True)
class DirectoryService:
    id: str
    name: str
    description: str | None
    organization: Organization
    service_types: tuple[ServiceType, ...]
    eligibility: tuple[Eligibility, ...]
    locations: tuple[Location, ...]
    phones: tuple[str, ...]
    url: str | None
    area_counties: tuple[str, ...]
    """Counties its service areas name (besides its locations')."""
    active: bool = True
    """HSDS status `active`; any other is kept (a connection made earlier names it) but found
    by no search and connected to no one."""

    @property
    def counties(self) -> tuple[str, ...]:
        """Every county the service serves, in FIPS order."""
        at = {loc.county_fips for loc in self.locations if loc.county_fips}
        return tuple(sorted(at | set(self.area_counties)))

    def search_keys(self) -> list[str]:
        """One equality key per way of finding the service (`county|type`, `county|*`,
        `*|type`, `*|*`): the repository keeps one search entry per key, so every search is one
        equality on one indexed scalar field. None while the service is not active."""
        if not self.active:
            return []
        counties = [*self.counties, "*"]
        types = [*(t.value for t in self.service_types), "*"]
        return sorted(f"{c}|{t}" for c in counties for t in types)


def search_key(county_fips: str | None, service_type: ServiceType | None) -> str:
    return f"{county_fips or '*'}|{service_type.value if service_type else '*'}"


def _normal(text: str) -> str:
    text = re.sub(r"\s+", " ", text.strip().casefold())
    text = re.sub(r"^saint ", "st. ", text)
    text = re.sub(r"^st ", "st. ", text)
    return re.sub(r"^ste ", "ste. ", text)


_BY_NAME: Final[dict[str, str]] = {_normal(name): fips for fips, name in MISSOURI_COUNTIES.items()}


def county_fips_of(text: str) -> str | None:
    """A Missouri county named by its 5-digit FIPS code or its name ("Jackson", "Jackson
    County", "St. Louis City", "City of St. Louis"); None if it names none."""
    stripped = text.strip()
    if stripped in MISSOURI_COUNTIES:
        return stripped
    name = _normal(stripped)
    if name in {"city of st. louis", "st. louis city"}:
        return "29510"
    name = name.removesuffix(" county")
    return _BY_NAME.get(name)


def service_areas_counties(names: list[tuple[str | None, str | None]]) -> tuple[str, ...]:
    """The counties of a service's areas, each given as (name, text extent): a county (FIPS or
    name), or the whole state. Raises for an area that names no Missouri county."""
    counties: set[str] = set()
    for index, (name, extent) in enumerate(names):
        found = None
        for text in (extent, name):
            if text is None:
                continue
            if _normal(text) in STATEWIDE_NAMES:
                found = set(MISSOURI_COUNTIES)
                break
            if fips := county_fips_of(text):
                found = {fips}
                break
        if found is None:
            raise InvalidDirectoryRecord(
                f"service_areas.{index}: names no Missouri county (give its FIPS code or name as "
                "`name`, or as `extent` with extent_type `text`)"
            )
        counties |= found
    return tuple(sorted(counties))


def service_types_of(
    terms: list[tuple[str | None, str | None, str | None]],
) -> tuple[ServiceType, ...]:
    """The service types of a service's taxonomy terms, each (taxonomy, code, name): a code of
    the program's own taxonomy, or a known term name of another."""
    found: set[ServiceType] = set()
    for taxonomy, code, name in terms:
        if taxonomy == SERVICE_TYPE_TAXONOMY and code is not None and code in _TYPE_CODES:
            found.add(ServiceType(code))
        elif name and (mapped := TERM_NAMES.get(_normal(name))):
            found.add(mapped)
    if not found:
        raise InvalidDirectoryRecord(
            "attributes: no taxonomy term maps to a service type (use taxonomy "
            f"`{SERVICE_TYPE_TAXONOMY}` with a code among: "
            f"{', '.join(t.value for t in ServiceType)})"
        )
    return tuple(sorted(found))


def eligibility_of(
    terms: list[tuple[str | None, str | None]], minimum_age: float | None, maximum_age: float | None
) -> tuple[Eligibility, ...]:
    """Who the service is for: codes of the program's eligibility taxonomy, each (taxonomy,
    code), and what its age limits say."""
    if minimum_age is not None and maximum_age is not None and minimum_age > maximum_age:
        raise InvalidDirectoryRecord("minimum_age is above maximum_age")
    found = {
        Eligibility(code)
        for taxonomy, code in terms
        if taxonomy == ELIGIBILITY_TAXONOMY and code is not None and code in _ELIGIBILITY_CODES
    }
    if minimum_age is not None and minimum_age >= ADULT_AGE:
        found.add(Eligibility.ADULTS)
    if minimum_age is not None and minimum_age >= OLDER_ADULT_AGE:
        found.add(Eligibility.OLDER_ADULTS)
    if maximum_age is not None and maximum_age < ADULT_AGE:
        found.add(Eligibility.YOUTH)
    return tuple(sorted(found))


def check_serves_a_county(service: DirectoryService) -> DirectoryService:
    if not service.counties:
        raise InvalidDirectoryRecord(
            "the service serves no Missouri county: give a location an address whose `region` "
            "is a county, or a service_area naming one"
        )
    return service


@dataclass(frozen=True)
class Connection:
    """A referred person was connected to a directory service: by whom and when. One per
    referral and service (recording it again changes nothing)."""

    referral_id: str
    service_id: str
    service_name: str
    connected_at: datetime
    connected_by: str
