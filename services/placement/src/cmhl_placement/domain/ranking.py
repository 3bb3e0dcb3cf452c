"""Which facilities to call first for a detained person: fit, then fresh beds, then distance."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

from cmhl_contracts.placement import AgeGroup, ClinicalNeed
from cmhl_placement.domain.facility import Facility, Unit
from cmhl_placement.domain.geography import miles_between


class Tier(IntEnum):
    """Lower is called first. Fresh beds are the likeliest yes; a stale number may still hide a
    bed, so it comes before a fresh report of none."""

    FRESH_BEDS = 0
    STALE = 1
    FRESH_FULL = 2


@dataclass(frozen=True)
class Candidate:
    facility: Facility
    tier: Tier
    beds_available: int
    """Beds in fresh numbers of the units that serve the person's age group."""
    miles: float
    oldest_report_age: timedelta


def eligible_units(
    facility: Facility, age_group: AgeGroup, needs: frozenset[ClinicalNeed]
) -> list[Unit]:
    """The units that take involuntary holds, serve the age group and exclude none of the
    person's needs, in a facility that does all three (empty: not a candidate)."""
    if not facility.involuntary_holds or age_group not in facility.accepts:
        return []
    if facility.exclusions & needs:
        return []
    return [
        u
        for u in facility.units_for(age_group)
        if u.involuntary_holds and not (u.exclusions & needs)
    ]


def rank(
    facilities: list[Facility],
    *,
    age_group: AgeGroup,
    needs: frozenset[ClinicalNeed],
    county_fips: str,
    now: datetime,
    stale_after: timedelta,
) -> list[Candidate]:
    candidates = []
    for facility in facilities:
        units = eligible_units(facility, age_group, needs)
        if not units:
            continue
        fresh = [u for u in units if not u.is_stale(now, stale_after)]
        beds = sum(u.available for u in fresh)
        if beds > 0:
            tier = Tier.FRESH_BEDS
        elif len(fresh) < len(units):
            tier = Tier.STALE
        else:
            tier = Tier.FRESH_FULL
        candidates.append(
            Candidate(
                facility=facility,
                tier=tier,
                beds_available=beds,
                miles=round(miles_between(county_fips, facility.county_fips), 1),
                oldest_report_age=max(u.age(now) for u in units),
            )
        )
    # Ties broken by id, so the same inputs always give the same order.
    return sorted(candidates, key=lambda c: (c.tier, c.miles, c.facility.facility_id))
