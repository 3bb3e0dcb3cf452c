"""Missouri's counties on the map: each county's outline and population (Census Bureau data,
built by deploy/local/missouri_map.py), and referral rates drawn only from published counts."""

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cmhl_reporting.domain.suppression import Published

MAP_FILE = Path(__file__).with_name("missouri_map.json")
# Rates per this many residents: a county of 2,000 people and one of 1,000,000 compare.
RATE_BASE = 10_000


@functools.cache
def missouri_map() -> dict[str, Any]:
    """{"source", "width", "height", "counties": {fips: {"name", "population", "path",
    "label"}}} for the 114 counties and the City of St. Louis."""
    loaded: dict[str, Any] = json.loads(MAP_FILE.read_text(encoding="utf-8"))
    return loaded


def county_rows(referrals: Mapping[str, Published]) -> list[dict[str, Any]]:
    """Every county with its published referral count (0 where none was counted) and its rate
    per RATE_BASE residents. A suppressed count has no rate: a rate and a population together
    would give the hidden count back."""
    rows = []
    for fips, county in missouri_map()["counties"].items():
        count = referrals.get(fips, 0)
        population = int(county["population"])
        rows.append(
            {
                "county_fips": fips,
                "name": county["name"],
                "population": population,
                "referrals": count,
                "rate_per_10000": None
                if isinstance(count, str)
                else round(RATE_BASE * count / population, 1),
            }
        )
    return rows
