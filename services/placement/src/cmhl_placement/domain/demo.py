"""Demo facilities: fictional hospitals in real Missouri counties, as registry records.

`make up` posts them through the registry API (deploy/local/demo_facilities.py); the service
lists them itself only where `seed_demo_facilities` is set (tests, the dev overlay). Varied on
purpose, so ranking has something to decide: one takes no involuntary holds, one only youth,
some exclude aggression or need medical clearance. Starting bed numbers are a guess at a
typical night; staff replace them with real ones through the API. Addresses and numbers use
reserved example domains and 555 lines."""

from cmhl_contracts.placement import AgeGroup, ClinicalNeed, SecurityLevel, UnitType
from cmhl_placement.domain.registry import FacilityRecord, UnitSpec

A, Y, G = AgeGroup.ADULT, AgeGroup.YOUTH, AgeGroup.GERIATRIC
ADULT, YOUTH, GERI, COOC = (
    UnitType.ADULT_ACUTE,
    UnitType.YOUTH_ACUTE,
    UnitType.GERIATRIC,
    UnitType.CO_OCCURRING,
)
OPEN, LOCKED, SECURE = SecurityLevel.OPEN, SecurityLevel.LOCKED, SecurityLevel.SECURE


def unit(
    unit_type: UnitType,
    capacity: int,
    available: int,
    takes: tuple[AgeGroup, ...],
    *,
    holds: bool = True,
    security: SecurityLevel = LOCKED,
    excludes: tuple[ClinicalNeed, ...] = (),
) -> UnitSpec:
    return UnitSpec(
        unit_type, capacity, frozenset(takes), holds, security, frozenset(excludes), available
    )


def facility(
    facility_id: str,
    name: str,
    county_fips: str,
    phone: str,
    medical_clearance_required: bool,
    *units: UnitSpec,
) -> FacilityRecord:
    desk = f"beds@{facility_id.removeprefix('fac-')}.example.org"
    return FacilityRecord(
        facility_id, name, county_fips, phone, desk, medical_clearance_required, units
    )


DEMO_FACILITIES: tuple[FacilityRecord, ...] = (
    facility(
        "fac-boone-riverbend",
        "Riverbend Behavioral Hospital",
        "29019",
        "573-555-0140",
        True,
        unit(ADULT, 24, 3, (A,)),
        unit(GERI, 10, 1, (G,)),
    ),
    facility(
        "fac-stl-gateway",
        "Gateway Psychiatric Center",
        "29510",
        "314-555-0182",
        False,
        unit(ADULT, 40, 2, (A,), security=SECURE, excludes=(ClinicalNeed.SEX_OFFENSE_HISTORY,)),
        unit(YOUTH, 16, 0, (Y,), excludes=(ClinicalNeed.SEX_OFFENSE_HISTORY,)),
        unit(COOC, 12, 1, (A,), excludes=(ClinicalNeed.SEX_OFFENSE_HISTORY,)),
    ),
    facility(
        "fac-jackson-prairie",
        "Prairie View Mental Health Hospital",
        "29095",
        "816-555-0127",
        True,
        unit(ADULT, 32, 4, (A,), excludes=(ClinicalNeed.MEDICAL_INSTABILITY,)),
        unit(COOC, 8, 0, (A,), excludes=(ClinicalNeed.MEDICAL_INSTABILITY,)),
    ),
    facility(
        "fac-greene-ozark-hills",
        "Ozark Hills Psychiatric Hospital",
        "29077",
        "417-555-0163",
        False,
        unit(ADULT, 28, 2, (A,), excludes=(ClinicalNeed.AGGRESSION,)),
        unit(YOUTH, 12, 2, (Y,), excludes=(ClinicalNeed.AGGRESSION,)),
        unit(GERI, 8, 0, (G,), excludes=(ClinicalNeed.AGGRESSION,)),
    ),
    facility(
        "fac-capegirardeau-bluffs",
        "Mississippi Bluffs Behavioral Health",
        "29031",
        "573-555-0191",
        True,
        unit(ADULT, 18, 1, (A,), excludes=(ClinicalNeed.INTELLECTUAL_DISABILITY,)),
        unit(GERI, 6, 1, (G,), excludes=(ClinicalNeed.INTELLECTUAL_DISABILITY,)),
    ),
    facility(
        "fac-buchanan-northland-youth",
        "Northland Youth Crisis Center",
        "29021",
        "816-555-0175",
        False,
        unit(YOUTH, 14, 3, (Y,)),
    ),
    facility(
        "fac-cole-capitol-voluntary",
        "Capitol Region Recovery Unit",
        "29051",
        "573-555-0118",
        False,
        unit(ADULT, 16, 5, (A,), holds=False, security=OPEN),
    ),
)
