"""Ranking: who takes the person at all, then fresh beds before stale numbers before full, then
distance by county."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cmhl_contracts.placement import AgeGroup, ClinicalNeed, UnitType
from cmhl_placement.domain.facility import Facility, Unit
from cmhl_placement.domain.geography import region_of
from cmhl_placement.domain.ranking import Tier, rank

NOW = datetime(2026, 3, 2, 22, tzinfo=UTC)
STALE_AFTER = timedelta(hours=12)
BOONE, ST_LOUIS, JACKSON, GREENE = "29019", "29510", "29095", "29077"


def facility(
    facility_id: str,
    county: str,
    *,
    available: int = 2,
    age: timedelta = timedelta(hours=1),
    accepts: tuple[AgeGroup, ...] = (AgeGroup.ADULT,),
    involuntary: bool = True,
    exclusions: tuple[ClinicalNeed, ...] = (),
) -> Facility:
    unit = Unit(UnitType.ADULT_ACUTE, 20, available, NOW - age, "staff-1")
    return Facility(
        facility_id=facility_id,
        name=facility_id,
        county_fips=county,
        cmhc_region=region_of(county),
        phone="573-555-0100",
        accepts=frozenset(accepts),
        involuntary_holds=involuntary,
        medical_clearance_required=False,
        exclusions=frozenset(exclusions),
        units={UnitType.ADULT_ACUTE: unit},
    )


def ranked(
    facilities: list[Facility],
    county: str = BOONE,
    age_group: AgeGroup = AgeGroup.ADULT,
    needs: frozenset[ClinicalNeed] = frozenset(),
) -> list[str]:
    result = rank(
        facilities,
        age_group=age_group,
        needs=needs,
        county_fips=county,
        now=NOW,
        stale_after=STALE_AFTER,
    )
    return [c.facility.facility_id for c in result]


def test_only_facilities_that_take_involuntary_holds_the_age_group_and_the_needs() -> None:
    facilities = [
        facility("ok", BOONE),
        facility("voluntary-only", BOONE, involuntary=False),
        facility("youth-only", BOONE, accepts=(AgeGroup.YOUTH,)),
        facility("no-aggression", BOONE, exclusions=(ClinicalNeed.AGGRESSION,)),
        facility("no-id", BOONE, exclusions=(ClinicalNeed.INTELLECTUAL_DISABILITY,)),
    ]
    assert ranked(facilities, needs=frozenset({ClinicalNeed.AGGRESSION})) == [
        "no-id",
        "ok",
    ]  # same county and tier: by id


def test_a_facility_must_have_a_unit_for_the_age_group() -> None:
    # Says it accepts youth, but reports only an adult unit: no youth bed to offer.
    assert (
        ranked([facility("adult-unit", BOONE, accepts=(AgeGroup.YOUTH,))], age_group=AgeGroup.YOUTH)
        == []
    )


def test_fresh_beds_first_then_stale_then_fresh_full_each_nearest_first() -> None:
    facilities = [
        facility("stale-near", BOONE, age=timedelta(hours=13)),
        facility("fresh-far", GREENE),
        facility("full-near", BOONE, available=0),
        facility("fresh-near", ST_LOUIS),
        facility("stale-far", JACKSON, age=timedelta(hours=30)),
    ]
    assert ranked(facilities) == ["fresh-near", "fresh-far", "stale-near", "stale-far", "full-near"]


def test_a_stale_facility_ranks_below_a_fresh_one_even_when_nearer_and_with_more_beds() -> None:
    stale = facility("stale", BOONE, available=15, age=STALE_AFTER + timedelta(seconds=1))
    fresh = facility("fresh", JACKSON, available=1)
    result = rank(
        [stale, fresh],
        age_group=AgeGroup.ADULT,
        needs=frozenset(),
        county_fips=BOONE,
        now=NOW,
        stale_after=STALE_AFTER,
    )
    assert [(c.facility.facility_id, c.tier) for c in result] == [
        ("fresh", Tier.FRESH_BEDS),
        ("stale", Tier.STALE),
    ]
    assert result[1].beds_available == 0  # a stale number is not counted as beds
    assert result[0].miles > 100  # Columbia to Kansas City


def test_exactly_at_the_limit_is_still_fresh() -> None:
    assert ranked([facility("edge", BOONE, age=STALE_AFTER)]) == ["edge"]
    result = rank(
        [facility("edge", BOONE, age=STALE_AFTER)],
        age_group=AgeGroup.ADULT,
        needs=frozenset(),
        county_fips=BOONE,
        now=NOW,
        stale_after=STALE_AFTER,
    )
    assert result[0].tier is Tier.FRESH_BEDS


def test_same_county_is_zero_miles_and_ties_are_ordered_by_id() -> None:
    a, b = facility("b-fac", BOONE), facility("a-fac", BOONE)
    assert ranked([a, b]) == ["a-fac", "b-fac"]
    assert ranked([replace(a, facility_id="z"), b], county=BOONE)[0] == "a-fac"
