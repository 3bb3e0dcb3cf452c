"""A psychiatric facility, its units and their bed numbers, and how old each number is."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cmhl_contracts.placement import AgeGroup, ClinicalNeed, UnitType

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

    def units_for(self, age_group: AgeGroup) -> list[Unit]:
        return [u for u in self.units.values() if UNIT_SERVES[u.unit_type] is age_group]

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
