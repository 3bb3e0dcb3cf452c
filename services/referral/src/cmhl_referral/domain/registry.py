"""The program's registry: CMHCs with the counties they serve and their liaisons, each change
effective from a program day, and the rules that pick a referral's CMHC and liaison.

History is never rewritten: a change takes effect on or after the record's latest change (the
same day replaces it), so what the registry said about a past day stays what it said, and a
referral assigned then keeps the CMHC that served it."""

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_contracts.registry import LiaisonStatus

UNASSIGNED = "unassigned"
"""The liaison (and, where no CMHC serves the county, the CMHC) of a referral nobody covers: it
is kept, listed for supervisors and program admins, and reassigned by a supervisor."""


class Strategy(StrEnum):
    """How a CMHC's liaisons share its new referrals."""

    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"


class InvalidRegistryChange(Exception):
    """A change that breaks a registry rule (422); the message names the rule."""


class UnknownCmhc(InvalidRegistryChange):
    """A liaison names a CMHC the registry does not know."""


class OverlappingArea(Exception):
    """A county would be served by two CMHCs on the same day (409)."""

    def __init__(self, county_fips: str, other_cmhc: str, on: date) -> None:
        super().__init__(
            f"county {county_fips} is served by CMHC {other_cmhc} on {on.isoformat()}; "
            "change that CMHC's service area first"
        )
        self.county_fips = county_fips
        self.other_cmhc = other_cmhc


def check_counties(counties: list[str]) -> frozenset[str]:
    unknown = sorted(set(counties) - MISSOURI_COUNTIES.keys())
    if unknown:
        raise InvalidRegistryChange(
            f"county {unknown[0]} is not a Missouri county FIPS code (29001-29229 or 29510)"
        )
    return frozenset(counties)


def _check_not_before(latest: date | None, effective_from: date, what: str) -> None:
    if latest is not None and effective_from < latest:
        raise InvalidRegistryChange(
            f"{what} has a change effective {latest.isoformat()}; a change takes effect on or "
            "after the latest one (history is not rewritten)"
        )


@dataclass(frozen=True)
class AreaChange:
    effective_from: date
    counties: frozenset[str]


@dataclass
class Cmhc:
    cmhc_id: str
    name: str
    areas: list[AreaChange] = field(default_factory=list)
    version: int = 0

    def area_on(self, day: date) -> frozenset[str]:
        """The counties it serves that day; none before it was registered."""
        current: frozenset[str] = frozenset()
        for change in self.areas:
            if change.effective_from > day:
                break
            current = change.counties
        return current

    @property
    def latest(self) -> date | None:
        return self.areas[-1].effective_from if self.areas else None

    def change_area(self, counties: frozenset[str], effective_from: date) -> None:
        _check_not_before(self.latest, effective_from, f"CMHC {self.cmhc_id}")
        kept = [a for a in self.areas if a.effective_from != effective_from]
        self.areas = [*kept, AreaChange(effective_from, counties)]


def check_no_overlap(
    cmhc_id: str, counties: frozenset[str], effective_from: date, others: list[Cmhc]
) -> None:
    """The new area holds from its day on (nothing of this CMHC comes later), so it must not meet
    another CMHC's area on that day nor on any later day another CMHC's area changes."""
    for other in others:
        if other.cmhc_id == cmhc_id:
            continue
        days = [effective_from, *(a.effective_from for a in other.areas)]
        for day in sorted(d for d in days if d >= effective_from):
            shared = counties & other.area_on(day)
            if shared:
                raise OverlappingArea(min(shared), other.cmhc_id, day)


@dataclass(frozen=True)
class LiaisonTerms:
    effective_from: date
    cmhc_id: str
    status: LiaisonStatus
    coverage: frozenset[str]
    """Counties of the CMHC's area they take; empty means all of it."""


@dataclass
class Liaison:
    liaison_id: str
    terms: list[LiaisonTerms] = field(default_factory=list)
    version: int = 0

    def on(self, day: date) -> LiaisonTerms | None:
        current = None
        for terms in self.terms:
            if terms.effective_from > day:
                break
            current = terms
        return current

    def change(self, terms: LiaisonTerms) -> None:
        latest = self.terms[-1].effective_from if self.terms else None
        _check_not_before(latest, terms.effective_from, f"liaison {self.liaison_id}")
        kept = [t for t in self.terms if t.effective_from != terms.effective_from]
        self.terms = [*kept, terms]


def check_not_reserved(record_id: str) -> None:
    """`unassigned` marks a referral nobody holds; a CMHC or liaison of that id would be given
    every such referral."""
    if record_id == UNASSIGNED:
        raise InvalidRegistryChange(f"the id {UNASSIGNED!r} is reserved; choose another")


def check_coverage(terms: LiaisonTerms, cmhc: Cmhc | None) -> None:
    if cmhc is None:
        raise UnknownCmhc(f"CMHC {terms.cmhc_id} is not registered")
    if terms.status is not LiaisonStatus.ACTIVE and not terms.coverage:
        return  # leaving (or on leave) needs no county: their CMHC may serve none any more
    area = cmhc.area_on(terms.effective_from)
    if not area:
        raise InvalidRegistryChange(
            f"CMHC {cmhc.cmhc_id} serves no county on {terms.effective_from.isoformat()}"
        )
    outside = sorted(terms.coverage - area)
    if outside:
        raise InvalidRegistryChange(
            f"county {outside[0]} is outside CMHC {cmhc.cmhc_id}'s service area on "
            f"{terms.effective_from.isoformat()}; a liaison covers counties of their CMHC only"
        )


@dataclass(frozen=True)
class Coverage:
    """Counties nobody serves, counties two CMHCs claim, and counties whose CMHC has no active
    liaison for them, on one day."""

    uncovered: list[str]
    overlaps: dict[str, list[str]]
    without_liaison: list[str]


@dataclass(frozen=True)
class Registry:
    """Every CMHC and liaison (the program has a few dozen of each)."""

    cmhcs: list[Cmhc]
    liaisons: list[Liaison]

    @property
    def empty(self) -> bool:
        return not self.cmhcs

    def serving(self, county_fips: str, day: date) -> list[str]:
        return sorted(c.cmhc_id for c in self.cmhcs if county_fips in c.area_on(day))

    def candidates(self, cmhc_id: str, county_fips: str, day: date) -> list[str]:
        """Active liaisons of the CMHC that day who take the county, in id order."""
        chosen = []
        for liaison in self.liaisons:
            terms = liaison.on(day)
            if (
                terms is not None
                and terms.cmhc_id == cmhc_id
                and terms.status is LiaisonStatus.ACTIVE
                and (not terms.coverage or county_fips in terms.coverage)
            ):
                chosen.append(liaison.liaison_id)
        return sorted(chosen)

    def cmhc_of(self, liaison_id: str, day: date) -> str | None:
        """The CMHC employing the liaison that day; None for one who has left (inactive), so
        no referral is handed to them."""
        for liaison in self.liaisons:
            if liaison.liaison_id == liaison_id:
                terms = liaison.on(day)
                employed = terms is not None and terms.status is not LiaisonStatus.INACTIVE
                return terms.cmhc_id if terms is not None and employed else None
        return None

    def liaisons_of(self, cmhc_id: str, day: date) -> list[str]:
        """The liaisons the CMHC employs that day, those on leave included (their caseload is
        still theirs), those who left not."""
        return sorted(
            liaison.liaison_id
            for liaison in self.liaisons
            if (terms := liaison.on(day)) is not None
            and terms.cmhc_id == cmhc_id
            and terms.status is not LiaisonStatus.INACTIVE
        )

    def coverage(self, day: date) -> Coverage:
        claimed: dict[str, list[str]] = {}
        for cmhc in self.cmhcs:
            for county in cmhc.area_on(day):
                claimed.setdefault(county, []).append(cmhc.cmhc_id)
        without = [
            county
            for county, cmhcs in sorted(claimed.items())
            if not any(self.candidates(cmhc, county, day) for cmhc in cmhcs)
        ]
        return Coverage(
            uncovered=sorted(MISSOURI_COUNTIES.keys() - claimed.keys()),
            overlaps={k: sorted(v) for k, v in sorted(claimed.items()) if len(v) > 1},
            without_liaison=without,
        )


def round_robin(candidates: list[str], ticket: int) -> str:
    """The ticket is a counter shared by every replica (one per CMHC and county), so turns are
    fair."""
    return candidates[ticket % len(candidates)]


def least_loaded(candidates: list[str], open_referrals: dict[str, int]) -> str:
    """Fewest open referrals; a tie goes to the first in id order, so the choice is stable."""
    return min(candidates, key=lambda liaison: (open_referrals.get(liaison, 0), liaison))
