"""A psychiatric facility, its units and their bed numbers, and how old each number is."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cmhl_contracts.placement import AgeGroup, ClinicalNeed, SecurityLevel, UnitType

DEFAULT_STALE_AFTER = timedelta(hours=12)

# Which age group each kind of unit serves.
UNIT_SERVES: dict[UnitType, AgeGroup] = {
    UnitType.ADULT_ACUTE: AgeGroup.ADULT,
    UnitType.CO_OCCURRING: AgeGroup.ADULT,
    UnitType.YOUTH_ACUTE: AgeGroup.YOUTH,
    UnitType.GERIATRIC: AgeGroup.GERIATRIC,
}


class InvalidAvailability(ValueError):
    """Breaks a bed-availability rule; the message names the rule."""


@dataclass(frozen=True)
class Unit:
    unit_type: UnitType
    capacity: int
    available: int
    reported_at: datetime
    reported_by: str
    # What the registry records of the unit (domain/registry.py checks them). Empty patient
    # types: the ones its type serves (UNIT_SERVES).
    patient_types: frozenset[AgeGroup] = frozenset()
    involuntary_holds: bool = True
    security_level: SecurityLevel = SecurityLevel.LOCKED
    exclusions: frozenset[ClinicalNeed] = frozenset()

    def serves(self, age_group: AgeGroup) -> bool:
        if self.patient_types:
            return age_group in self.patient_types
        return UNIT_SERVES[self.unit_type] is age_group

    def age(self, now: datetime) -> timedelta:
        return max(now - self.reported_at, timedelta(0))

    def is_stale(self, now: datetime, stale_after: timedelta) -> bool:
        """A number older than the limit says little about tonight's beds."""
        return self.age(now) > stale_after


@dataclass(frozen=True)
class Facility:
    facility_id: str
    name: str
    county_fips: str
    cmhc_region: str
    phone: str
    accepts: frozenset[AgeGroup]
    involuntary_holds: bool
    medical_clearance_required: bool
    exclusions: frozenset[ClinicalNeed]
    units: dict[UnitType, Unit]
    sequence: int = 1
    """How many availability updates the facility has had (the seed is the first)."""
    version: int = 1
    contact_email: str = ""
    """The facility's bed desk (not a person's address): where bed-update reminders go."""
    record_version: int = 1
    """Version of the registry record; a change names the one it was made on (else 409)."""

    def units_for(self, age_group: AgeGroup) -> list[Unit]:
        return [u for u in self.units.values() if u.serves(age_group)]

    def stale_units(self, now: datetime, stale_after: timedelta) -> list[UnitType]:
        return [u.unit_type for u in self.units.values() if u.is_stale(now, stale_after)]

    def update_availability(self, counts: dict[UnitType, int], at: datetime, by: str) -> "Facility":
        """A new facility with the reported numbers; the other units keep theirs (and their
        age). Refused whole if any number breaks a rule, so nothing half-applies."""
        if not counts:
            raise InvalidAvailability("report at least one unit")
        units = dict(self.units)
        for unit_type, available in counts.items():
            unit = units.get(unit_type)
            if unit is None:
                raise InvalidAvailability(
                    f"unknown unit {unit_type.value!r}: this facility has "
                    + ", ".join(sorted(u.value for u in self.units))
                )
            if available < 0:
                raise InvalidAvailability(f"{unit_type.value}: available beds cannot be below 0")
            if available > unit.capacity:
                raise InvalidAvailability(
                    f"{unit_type.value}: {available} available is above the unit's capacity"
                    f" of {unit.capacity}"
                )
            units[unit_type] = replace(unit, available=available, reported_at=at, reported_by=by)
        return replace(self, units=units, sequence=self.sequence + 1)
