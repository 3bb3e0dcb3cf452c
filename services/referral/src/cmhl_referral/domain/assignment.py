"""Which liaison and CMHC cover a county: the service areas of the program's 31 liaisons.

The default table spreads Missouri's 115 county codes over 31 liaisons in code order, each
liaison employed by one of 25 CMHCs; a state adopting the system replaces it with its own."""

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_referral.domain.referral import Assignment

LIAISON_COUNT = 31
CMHC_COUNT = 25


def _default_table() -> dict[str, Assignment]:
    table = {}
    for index, fips in enumerate(sorted(MISSOURI_COUNTIES)):
        liaison = index * LIAISON_COUNT // len(MISSOURI_COUNTIES)
        cmhc = liaison * CMHC_COUNT // LIAISON_COUNT
        table[fips] = Assignment(f"liaison-{liaison + 1:02d}", f"cmhc-{cmhc + 1:02d}")
    return table


SERVICE_AREAS: dict[str, Assignment] = _default_table()


def assignment_for(county_fips: str) -> Assignment:
    return SERVICE_AREAS[county_fips]


CMHC_OF_LIAISON: dict[str, str] = {a.liaison_id: a.cmhc_id for a in SERVICE_AREAS.values()}


def cmhc_of(liaison_id: str) -> str | None:
    """The CMHC that employs a liaison, or None for a liaison the program does not know."""
    return CMHC_OF_LIAISON.get(liaison_id)


def liaisons_of(cmhc_id: str) -> list[str]:
    """The liaisons a CMHC employs, in order."""
    return sorted(liaison for liaison, cmhc in CMHC_OF_LIAISON.items() if cmhc == cmhc_id)
