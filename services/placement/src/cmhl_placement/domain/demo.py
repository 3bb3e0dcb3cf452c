"""Demo facilities seeded at start: fictional hospitals in real Missouri counties.

Varied on purpose, so ranking has something to decide: one takes no involuntary holds, one
only youth, some exclude aggression or need medical clearance. Starting bed numbers are a
guess at a typical night; staff replace them with real ones through the API."""

from dataclasses import dataclass

from cmhl_contracts.placement import AgeGroup, ClinicalNeed, UnitType


@dataclass(frozen=True)
class DemoFacility:
    facility_id: str
    name: str
    county_fips: str
    phone: str
    accepts: tuple[AgeGroup, ...]
    involuntary_holds: bool
    medical_clearance_required: bool
    exclusions: tuple[ClinicalNeed, ...]
    units: tuple[tuple[UnitType, int, int], ...]
    """(unit type, capacity, available at seeding)"""


A, Y, G = AgeGroup.ADULT, AgeGroup.YOUTH, AgeGroup.GERIATRIC
ADULT, YOUTH, GERI, COOC = (
    UnitType.ADULT_ACUTE,
    UnitType.YOUTH_ACUTE,
    UnitType.GERIATRIC,
    UnitType.CO_OCCURRING,
)

DEMO_FACILITIES: tuple[DemoFacility, ...] = (
    DemoFacility(
        "fac-boone-riverbend",
        "Riverbend Behavioral Hospital",
        "29019",
        "573-555-0140",
        (A, G),
        True,
        True,
        (),
        ((ADULT, 24, 3), (GERI, 10, 1)),
    ),
    DemoFacility(
        "fac-stl-gateway",
        "Gateway Psychiatric Center",
        "29510",
        "314-555-0182",
        (A, Y),
        True,
        False,
        (ClinicalNeed.SEX_OFFENSE_HISTORY,),
        ((ADULT, 40, 2), (YOUTH, 16, 0), (COOC, 12, 1)),
    ),
    DemoFacility(
        "fac-jackson-prairie",
        "Prairie View Mental Health Hospital",
        "29095",
        "816-555-0127",
        (A,),
        True,
        True,
        (ClinicalNeed.MEDICAL_INSTABILITY,),
        ((ADULT, 32, 4), (COOC, 8, 0)),
    ),
    DemoFacility(
        "fac-greene-ozark-hills",
        "Ozark Hills Psychiatric Hospital",
        "29077",
        "417-555-0163",
        (A, Y, G),
        True,
        False,
        (ClinicalNeed.AGGRESSION,),
        ((ADULT, 28, 2), (YOUTH, 12, 2), (GERI, 8, 0)),
    ),
    DemoFacility(
        "fac-capegirardeau-bluffs",
        "Mississippi Bluffs Behavioral Health",
        "29031",
        "573-555-0191",
        (A, G),
        True,
        True,
        (ClinicalNeed.INTELLECTUAL_DISABILITY,),
        ((ADULT, 18, 1), (GERI, 6, 1)),
    ),
    DemoFacility(
        "fac-buchanan-northland-youth",
        "Northland Youth Crisis Center",
        "29021",
        "816-555-0175",
        (Y,),
        True,
        False,
        (),
        ((YOUTH, 14, 3),),
    ),
    DemoFacility(
        "fac-cole-capitol-voluntary",
        "Capitol Region Recovery Unit",
        "29051",
        "573-555-0118",
        (A,),
        False,
        False,
        (),
        ((ADULT, 16, 5),),
    ),
)
