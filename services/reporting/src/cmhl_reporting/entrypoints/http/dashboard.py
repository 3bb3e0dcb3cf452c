"""The public dashboard at `/`: the brochure's infographic drawn from the suppressed view.

One self-contained page (no external scripts, fonts or CDNs: it must work offline and leak no
visitor to a third party). It reads only `/api/v1/public/statewide`, which is suppressed."""

import functools
import html
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_reporting.domain.geography import missouri_map

router = APIRouter(tags=["dashboard"])


@functools.cache
def _page() -> str:
    page = (Path(__file__).parent / "dashboard.html").read_text(encoding="utf-8")
    options = "".join(
        f'<option value="{code}">{html.escape(name)}</option>'
        for code, name in sorted(MISSOURI_COUNTIES.items(), key=lambda item: item[1])
    )
    shapes = missouri_map()
    paths = "".join(
        f'<path id="c{fips}" data-fips="{fips}" d="{county["path"]}" fill="#e8edf1">'
        f"<title>{html.escape(county['name'])}</title></path>"
        for fips, county in shapes["counties"].items()
    )
    return (
        page.replace("__COUNTIES__", options)
        .replace("__MAP_WIDTH__", f"{shapes['width']:g}")
        .replace("__MAP_HEIGHT__", f"{shapes['height']:g}")
        .replace("__MAP_PATHS__", paths)
        .replace("__MAP_SOURCE__", html.escape(shapes["source"]))
    )


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(_page())
