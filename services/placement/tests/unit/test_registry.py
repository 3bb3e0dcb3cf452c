"""Registry rules: each contradictory setting is refused with its rule named; a registration
derives what ranking reads; a change keeps or replaces bed numbers as it says."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cmhl_contracts.placement import AgeGroup, ClinicalNeed, SecurityLevel, UnitType
from cmhl_placement.domain.ranking import rank
from cmhl_placement.domain.registry import (
    FacilityRecord,
    InvalidRecord,
    UnitSpec,
    check,
    register,
    revise,
)

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
A, Y, G = AgeGroup.ADULT, AgeGroup.YOUTH, AgeGroup.GERIATRIC
LOCKED, OPEN = SecurityLevel.LOCKED, SecurityLevel.OPEN


def unit(
    unit_type: UnitType = UnitType.ADULT_ACUTE,
    capacity: int = 20,
    takes: tuple[AgeGroup, ...] = (A,),
    holds: bool = True,
    security: SecurityLevel = LOCKED,
    excludes: tuple[ClinicalNeed, ...] = (),
    available: int | None = 3,
) -> UnitSpec:
    return UnitSpec(
        unit_type, capacity, frozenset(takes), holds, security, frozenset(excludes), available
    )


def record(*units: UnitSpec, county: str = "29019") -> FacilityRecord:
    return FacilityRecord(
        "fac-test",
        "Test Hospital",
        county,
        "573-555-0100",
        "beds@test.example.org",
        False,
        units or (unit(),),
    )


@pytest.mark.parametrize(
    ("units", "rule"),
    [
        (
            (unit(UnitType.YOUTH_ACUTE, takes=(Y, G)),),
            "youth may not share a unit with adults or geriatric patients",
        ),
        ((unit(UnitType.YOUTH_ACUTE, takes=(A,)),), "a youth_acute unit does not take adult"),
        ((unit(UnitType.GERIATRIC, takes=(A, G)),), "a geriatric unit does not take adult"),
        ((unit(takes=()),), "takes at least one patient type"),
        (
            (unit(holds=True, security=OPEN),),
            "involuntary holds need a locked or secure unit, not open",
        ),
        ((unit(available=25),), "25 available beds is above the unit's capacity of 20"),
        ((unit(available=-1),), "below 0"),
        ((unit(capacity=0, available=0),), "at least one bed"),
        (
            (unit(UnitType.CO_OCCURRING, excludes=(ClinicalNeed.SUBSTANCE_WITHDRAWAL,)),),
            "treats substance_withdrawal; it cannot exclude it",
        ),
        ((unit(), unit(capacity=4, available=1)), "a unit type is listed twice"),
        ((), "at least one unit"),
    ],
)
def test_a_contradictory_unit_is_refused_with_its_rule(
    units: tuple[UnitSpec, ...], rule: str
) -> None:
    bad = replace(record(), units=units)
    with pytest.raises(InvalidRecord, match=rule):
        check(bad)
    with pytest.raises(InvalidRecord, match=rule):
        register(bad, T0, "admin-1")


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"county_fips": "29999"}, "unknown county '29999'"),
        ({"contact_email": "beds at hospital"}, "contact_email"),
        ({"phone": "call us"}, "phone"),
        ({"name": "  "}, "has a name"),
    ],
)
def test_a_facility_needs_a_known_county_and_a_contact(change: dict[str, str], rule: str) -> None:
    with pytest.raises(InvalidRecord, match=rule):
        check(replace(record(), **change))  # type: ignore[arg-type]


def test_an_open_unit_that_takes_no_holds_and_an_adult_unit_for_older_adults_are_fine() -> None:
    check(record(unit(holds=False, security=OPEN), unit(UnitType.GERIATRIC, takes=(G,))))
    check(record(unit(takes=(A, G), security=SecurityLevel.SECURE)))


def test_registration_derives_what_ranking_reads_from_the_units() -> None:
    facility = register(
        record(
            unit(holds=False, security=OPEN, excludes=(ClinicalNeed.AGGRESSION,)),
            unit(UnitType.GERIATRIC, 8, (G,), excludes=(ClinicalNeed.AGGRESSION,), available=1),
        ),
        T0,
        "admin-1",
    )
    assert facility.accepts == {A, G}
    assert facility.involuntary_holds is True  # the geriatric unit holds
    assert facility.exclusions == {ClinicalNeed.AGGRESSION}  # every unit excludes it
    assert facility.cmhc_region.startswith("cmhc-")
    assert (facility.record_version, facility.sequence) == (1, 1)
    assert facility.contact_email == "beds@test.example.org"

    def ranked(age_group: AgeGroup) -> list[str]:
        found = rank(
            [facility],
            age_group=age_group,
            needs=frozenset(),
            county_fips="29019",
            now=T0,
            stale_after=timedelta(hours=12),
        )
        return [c.facility.facility_id for c in found]

    # The adult unit takes no holds, so a detained adult is not sent there; an older adult is.
    assert ranked(A) == []
    assert ranked(G) == ["fac-test"]


def test_a_change_keeps_numbers_left_out_and_counts_new_ones_as_a_bed_update() -> None:
    facility = register(record(unit(available=3)), T0, "admin-1")
    later = T0 + timedelta(hours=2)
    same_beds, changed = revise(facility, record(unit(available=None)), later, "fac-client")
    assert changed == []
    assert same_beds.sequence == facility.sequence  # no new bed numbers
    assert same_beds.record_version == 2
    kept = same_beds.units[UnitType.ADULT_ACUTE]
    assert (kept.available, kept.reported_at) == (3, T0)

    grown, changed = revise(
        same_beds,
        record(unit(available=None), unit(UnitType.GERIATRIC, 6, (G,), available=2)),
        later,
        "fac-client",
    )
    assert changed == [UnitType.GERIATRIC]
    assert grown.sequence == facility.sequence + 1
    assert grown.units[UnitType.GERIATRIC].reported_by == "fac-client"


def test_shrinking_a_unit_below_its_reported_number_needs_the_number() -> None:
    facility = register(record(unit(capacity=20, available=10)), T0, "admin-1")
    with pytest.raises(InvalidRecord, match="10 available beds is above the new capacity of 8"):
        revise(facility, record(unit(capacity=8, available=None)), T0, "admin-1")
    shrunk, changed = revise(facility, record(unit(capacity=8, available=8)), T0, "admin-1")
    assert changed == [UnitType.ADULT_ACUTE]
    assert shrunk.units[UnitType.ADULT_ACUTE].capacity == 8
