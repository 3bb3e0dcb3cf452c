"""The facility registry: what a state bed registry records of a facility and its units
(Virginia Code 37.2-308.1, Colorado's tracker, 42 U.S.C. 290bb-37: beds by type of patient,
involuntary admissions, security level, exclusions, county, contact), and the rules that refuse
a contradictory unit. Each rule's message names it, so a 422 says what to fix."""

import re
from dataclasses import dataclass, replace
from datetime import datetime

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_contracts.placement import AgeGroup, ClinicalNeed, SecurityLevel, UnitType
from cmhl_placement.domain.facility import Facility, Unit
from cmhl_placement.domain.geography import region_of

# The patient types each kind of unit may take. Youth are never on a unit with adults or
# geriatric patients (state licensing keeps minors apart); an adult unit may take older adults,
# a geriatric unit takes geriatric patients only.
UNIT_TAKES: dict[UnitType, frozenset[AgeGroup]] = {
    UnitType.ADULT_ACUTE: frozenset({AgeGroup.ADULT, AgeGroup.GERIATRIC}),
    UnitType.CO_OCCURRING: frozenset({AgeGroup.ADULT, AgeGroup.GERIATRIC}),
    UnitType.YOUTH_ACUTE: frozenset({AgeGroup.YOUTH}),
    UnitType.GERIATRIC: frozenset({AgeGroup.GERIATRIC}),
}
# What a unit exists to treat cannot be one of its exclusions.
UNIT_TREATS: dict[UnitType, frozenset[ClinicalNeed]] = {
    UnitType.CO_OCCURRING: frozenset({ClinicalNeed.SUBSTANCE_WITHDRAWAL}),
}
# A unit that holds people under a detention (RSMo 632.305) must be able to keep them there.
HOLDS_NEED: frozenset[SecurityLevel] = frozenset({SecurityLevel.LOCKED, SecurityLevel.SECURE})
EMAIL = re.compile(r"^[^\s@<>,;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{6,22}[0-9]$")


class InvalidRecord(ValueError):
    """A registry record that breaks a rule; the message names the rule."""


@dataclass(frozen=True)
class UnitSpec:
    unit_type: UnitType
    capacity: int
    patient_types: frozenset[AgeGroup]
    involuntary_holds: bool
    security_level: SecurityLevel
    exclusions: frozenset[ClinicalNeed] = frozenset()
    available: int | None = None
    """Free beds now; None on a change keeps the unit's last reported number."""


@dataclass(frozen=True)
class FacilityRecord:
    facility_id: str
    name: str
    county_fips: str
    phone: str
    contact_email: str
    medical_clearance_required: bool
    units: tuple[UnitSpec, ...]


def check_unit(unit: UnitSpec) -> None:
    name = unit.unit_type.value
    if unit.capacity < 1:
        raise InvalidRecord(f"{name}: a unit has at least one bed (capacity >= 1)")
    if not unit.patient_types:
        raise InvalidRecord(f"{name}: a unit takes at least one patient type")
    if AgeGroup.YOUTH in unit.patient_types and len(unit.patient_types) > 1:
        raise InvalidRecord(f"{name}: youth may not share a unit with adults or geriatric patients")
    if wrong := unit.patient_types - UNIT_TAKES[unit.unit_type]:
        raise InvalidRecord(
            f"{name}: a {name} unit does not take {', '.join(sorted(wrong))} patients"
            f" (it takes {', '.join(sorted(UNIT_TAKES[unit.unit_type]))})"
        )
    if unit.involuntary_holds and unit.security_level not in HOLDS_NEED:
        raise InvalidRecord(
            f"{name}: involuntary holds need a locked or secure unit, not {unit.security_level}"
        )
    if treated := unit.exclusions & UNIT_TREATS.get(unit.unit_type, frozenset()):
        raise InvalidRecord(
            f"{name}: a {name} unit treats {', '.join(sorted(treated))}; it cannot exclude it"
        )
    if unit.available is not None:
        if unit.available < 0:
            raise InvalidRecord(f"{name}: available beds cannot be below 0")
        if unit.available > unit.capacity:
            raise InvalidRecord(
                f"{name}: {unit.available} available beds is above the unit's capacity"
                f" of {unit.capacity}"
            )


def check(record: FacilityRecord) -> None:
    """Refuses the first broken rule of the record or of any of its units."""
    if record.county_fips not in MISSOURI_COUNTIES:
        raise InvalidRecord(
            f"unknown county {record.county_fips!r}: not a Missouri county FIPS code"
        )
    if not record.name.strip():
        raise InvalidRecord("a facility has a name")
    if not PHONE.match(record.phone):
        raise InvalidRecord("phone: the facility's admissions line, digits and - ( ) . only")
    if not EMAIL.match(record.contact_email):
        raise InvalidRecord("contact_email: the facility's bed-desk address, as name@domain")
    if not record.units:
        raise InvalidRecord("a facility has at least one unit")
    types = [u.unit_type for u in record.units]
    if len(set(types)) != len(types):
        raise InvalidRecord("a unit type is listed twice: one entry per unit type")
    for unit in record.units:
        check_unit(unit)


def _summary(
    units: dict[UnitType, Unit],
) -> tuple[frozenset[AgeGroup], bool, frozenset[ClinicalNeed]]:
    """The facility-wide fields ranking reads first, derived from the units: whom any unit
    takes, whether any unit holds, what every unit excludes."""
    accepts: frozenset[AgeGroup] = frozenset().union(*(u.patient_types for u in units.values()))
    exclusions = frozenset.intersection(*(u.exclusions for u in units.values()))
    return accepts, any(u.involuntary_holds for u in units.values()), exclusions


def register(record: FacilityRecord, at: datetime, by: str) -> Facility:
    """A new facility from a checked record; a unit without a number starts at 0 free."""
    check(record)
    units = {
        u.unit_type: Unit(
            u.unit_type,
            u.capacity,
            u.available or 0,
            at,
            by,
            u.patient_types,
            u.involuntary_holds,
            u.security_level,
            u.exclusions,
        )
        for u in record.units
    }
    accepts, holds, exclusions = _summary(units)
    return Facility(
        facility_id=record.facility_id,
        name=record.name,
        county_fips=record.county_fips,
        cmhc_region=region_of(record.county_fips),
        phone=record.phone,
        medical_clearance_required=record.medical_clearance_required,
        units=units,
        contact_email=record.contact_email,
        accepts=accepts,
        involuntary_holds=holds,
        exclusions=exclusions,
    )


def revise(
    facility: Facility, record: FacilityRecord, at: datetime, by: str
) -> tuple[Facility, list[UnitType]]:
    """The facility with the record's settings, and the units whose beds changed (capacity,
    a number given, added): those make a new availability update. A unit given no number keeps
    its last one, which must still fit the new capacity."""
    check(record)
    units: dict[UnitType, Unit] = {}
    beds_changed: list[UnitType] = []
    for spec in record.units:
        old = facility.units.get(spec.unit_type)
        available = spec.available
        if available is None:
            available = old.available if old else 0
            if available > spec.capacity:
                raise InvalidRecord(
                    f"{spec.unit_type.value}: {available} available beds is above the new"
                    f" capacity of {spec.capacity}; report the number with the change"
                )
        counted = old is None or spec.available is not None
        if old is None or old.capacity != spec.capacity or spec.available is not None:
            beds_changed.append(spec.unit_type)
        units[spec.unit_type] = Unit(
            spec.unit_type,
            spec.capacity,
            available,
            at if counted or old is None else old.reported_at,
            by if counted or old is None else old.reported_by,
            spec.patient_types,
            spec.involuntary_holds,
            spec.security_level,
            spec.exclusions,
        )
    removed = set(facility.units) - set(units)
    accepts, holds, exclusions = _summary(units)
    revised = replace(
        facility,
        name=record.name,
        county_fips=record.county_fips,
        cmhc_region=region_of(record.county_fips),
        phone=record.phone,
        contact_email=record.contact_email,
        medical_clearance_required=record.medical_clearance_required,
        units=units,
        record_version=facility.record_version + 1,
        sequence=facility.sequence + (1 if beds_changed or removed else 0),
        accepts=accepts,
        involuntary_holds=holds,
        exclusions=exclusions,
    )
    return revised, beds_changed
