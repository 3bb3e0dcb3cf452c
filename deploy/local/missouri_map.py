"""Builds the dashboard's county map of Missouri from public Census Bureau data.

    python deploy/local/missouri_map.py COUNTIES.geojson

COUNTIES.geojson is the Census Bureau's 2010 cartographic boundary file of US counties at
1:20,000,000 (gz_2010_us_050_00_20m, converted to GeoJSON with the 5-digit FIPS code as each
feature's id; public domain). Populations come from deploy/local/data/
missouri_county_population.tsv. The output, committed, is one JSON file the reporting service
reads: each county's SVG path in a fixed 640-pixel-wide frame, its label point and population,
so the dashboard draws the map with no map library, tile server or third-party request.
"""

import argparse
import json
import math
from pathlib import Path
from typing import Any

from cmhl_contracts.counties import MISSOURI_COUNTIES

HERE = Path(__file__).resolve().parent
POPULATION = HERE / "data" / "missouri_county_population.tsv"
OUTPUT = HERE.parents[1] / "services/reporting/src/cmhl_reporting/domain/missouri_map.json"
WIDTH = 640.0
# Rounded to a tenth of a pixel: the map stays sharp at twice its size and the file small.
PLACES = 1

Ring = list[tuple[float, float]]


def _rings(geometry: dict[str, Any]) -> list[Ring]:
    polygons = (
        [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    )
    return [[(x, y) for x, y in ring] for polygon in polygons for ring in polygon]


def _population() -> dict[str, int]:
    rows = POPULATION.read_text(encoding="utf-8").splitlines()
    pairs = (line.split("\t") for line in rows if line and not line.startswith("#"))
    return {fips: int(people) for fips, people in pairs}


def build(features: list[dict[str, Any]]) -> dict[str, Any]:
    shapes = {f["id"]: _rings(f["geometry"]) for f in features if f["id"] in MISSOURI_COUNTIES}
    missing = set(MISSOURI_COUNTIES) - set(shapes)
    if missing:
        raise SystemExit(f"the boundary file lacks counties {sorted(missing)}")
    points = [p for rings in shapes.values() for ring in rings for p in ring]
    west, east = min(x for x, _ in points), max(x for x, _ in points)
    south, north = min(y for _, y in points), max(y for _, y in points)
    # An equirectangular frame true at the state's middle latitude: at Missouri's size the
    # distortion against a conic projection is under 2 %.
    squeeze = math.cos(math.radians((north + south) / 2))
    scale = WIDTH / ((east - west) * squeeze)

    def project(lon: float, lat: float) -> tuple[float, float]:
        return (
            round((lon - west) * squeeze * scale, PLACES),
            round((north - lat) * scale, PLACES),
        )

    population = _population()
    counties: dict[str, Any] = {}
    for fips, rings in sorted(shapes.items()):
        parts = []
        for ring in rings:
            projected: list[tuple[float, float]] = []
            for lon, lat in ring:
                point = project(lon, lat)
                if not projected or projected[-1] != point:
                    projected.append(point)
            parts.append("M" + "L".join(f"{x:g},{y:g}" for x, y in projected) + "Z")
        # The label point: the middle of the bounding box of the county's largest ring.
        largest = max(rings, key=len)
        label = project(
            (min(x for x, _ in largest) + max(x for x, _ in largest)) / 2,
            (min(y for _, y in largest) + max(y for _, y in largest)) / 2,
        )
        counties[fips] = {
            "name": MISSOURI_COUNTIES[fips],
            "population": population[fips],
            "path": "".join(parts),
            "label": list(label),
        }
    return {
        "source": (
            "U.S. Census Bureau: 2010 cartographic boundaries (1:20,000,000) and county "
            "population estimates, vintage 2019"
        ),
        "width": WIDTH,
        "height": round((north - south) * scale, PLACES),
        "counties": counties,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("counties", type=Path, help="the Census counties GeoJSON")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    features = json.loads(args.counties.read_text(encoding="utf-8"))["features"]
    built = build(features)
    args.output.write_text(json.dumps(built, separators=(",", ":")) + "\n", encoding="utf-8")
    size = args.output.stat().st_size
    print(f"[map] {len(built['counties'])} counties, {size:,} bytes -> {args.output}")


if __name__ == "__main__":
    main()
