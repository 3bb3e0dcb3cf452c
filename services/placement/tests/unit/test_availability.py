"""Bed-availability rules: within 0..capacity, only the facility's units, every number aged."""

from datetime import UTC, datetime, timedelta

import pytest

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_contracts.placement import AgeGroup, UnitType
from cmhl_placement.domain.demo import DEMO_FACILITIES
from cmhl_placement.domain.facility import Facility, InvalidAvailability, Unit
from cmhl_placement.domain.geography import COUNTY_POINTS, miles_between
from cmhl_placement.domain.registry import check

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)


def hospital() -> Facility:
    return Facility(
        facility_id="fac-1",
        name="Test Hospital",
        county_fips="29019",
        cmhc_region="cmhc-02",
        phone="573-555-0100",
        accepts=frozenset({AgeGroup.ADULT, AgeGroup.GERIATRIC}),
        involuntary_holds=True,
        medical_clearance_required=True,
        exclusions=frozenset(),
        units={
            UnitType.ADULT_ACUTE: Unit(UnitType.ADULT_ACUTE, 20, 3, T0, "seed"),
            UnitType.GERIATRIC: Unit(UnitType.GERIATRIC, 8, 1, T0, "seed"),
        },
    )


def test_an_update_sets_the_listed_units_and_keeps_the_others_with_their_age() -> None:
    later = T0 + timedelta(hours=5)
    updated = hospital().update_availability({UnitType.ADULT_ACUTE: 0}, later, "staff-7")
    assert updated.sequence == 2
    adult, geriatric = updated.units[UnitType.ADULT_ACUTE], updated.units[UnitType.GERIATRIC]
    assert (adult.available, adult.reported_at, adult.reported_by) == (0, later, "staff-7")
    assert (geriatric.available, geriatric.reported_at) == (1, T0)
    now = T0 + timedelta(hours=13)
    assert updated.stale_units(now, timedelta(hours=12)) == [UnitType.GERIATRIC]
    assert adult.age(now) == timedelta(hours=8)


@pytest.mark.parametrize(
    ("counts", "rule"),
    [
        ({UnitType.ADULT_ACUTE: -1}, "below 0"),
        ({UnitType.ADULT_ACUTE: 21}, "above the unit's capacity of 20"),
        ({UnitType.YOUTH_ACUTE: 1}, "unknown unit 'youth_acute'"),
        ({}, "at least one unit"),
        # One bad number refuses the whole update: nothing half-applies.
        ({UnitType.GERIATRIC: 2, UnitType.ADULT_ACUTE: 99}, "capacity"),
    ],
)
def test_bad_numbers_are_refused_with_the_rule(counts: dict[UnitType, int], rule: str) -> None:
    with pytest.raises(InvalidAvailability, match=rule):
        hospital().update_availability(counts, T0, "staff-7")


def test_every_county_has_a_point_and_distances_are_plausible() -> None:
    assert set(COUNTY_POINTS) == set(MISSOURI_COUNTIES)
    assert miles_between("29019", "29019") == 0
    assert 90 < miles_between("29019", "29510") < 130  # Columbia - St. Louis
    assert 200 < miles_between("29095", "29510") < 250  # Kansas City - St. Louis


def test_demo_facilities_are_valid_and_varied() -> None:
    ids = [f.facility_id for f in DEMO_FACILITIES]
    assert len(set(ids)) == len(ids) >= 5
    assert len({f.county_fips for f in DEMO_FACILITIES}) >= 5
    assert any(not any(u.involuntary_holds for u in f.units) for f in DEMO_FACILITIES)
    for f in DEMO_FACILITIES:
        check(f)  # every registry rule holds
