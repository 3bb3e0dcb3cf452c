"""The county map's data and the rates drawn from published counts."""

import re

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_reporting.domain.geography import county_rows, missouri_map
from cmhl_reporting.domain.suppression import SUPPRESSED


def test_the_map_holds_every_county_inside_its_frame() -> None:
    shapes = missouri_map()
    assert set(shapes["counties"]) == set(MISSOURI_COUNTIES)
    # The Census Bureau's 2019 estimate for the state.
    assert sum(c["population"] for c in shapes["counties"].values()) == 6_137_428
    for county in shapes["counties"].values():
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", county["path"])]
        xs, ys = numbers[0::2], numbers[1::2]
        assert len(xs) >= 4
        assert min(xs) >= 0
        assert max(xs) <= shapes["width"]
        assert min(ys) >= 0
        assert max(ys) <= shapes["height"]
        x, y = county["label"]
        assert min(xs) <= x <= max(xs)
        assert min(ys) <= y <= max(ys)


def test_a_rate_comes_only_with_a_published_count() -> None:
    rows = {r["county_fips"]: r for r in county_rows({"29019": 361, "29095": SUPPRESSED})}
    assert len(rows) == len(MISSOURI_COUNTIES)
    boone = rows["29019"]
    assert boone["referrals"] == 361
    assert boone["rate_per_10000"] == round(10_000 * 361 / boone["population"], 1)
    # A hidden count has no rate: rate times population would give it back.
    assert rows["29095"]["referrals"] == SUPPRESSED
    assert rows["29095"]["rate_per_10000"] is None
    # A county with no referral counted shows 0 (not a small count to hide).
    assert rows["29227"]["referrals"] == 0
    assert rows["29227"]["rate_per_10000"] == 0.0
