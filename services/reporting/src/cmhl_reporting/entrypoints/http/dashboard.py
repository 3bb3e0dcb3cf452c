"""The public dashboard at `/`: the brochure's infographic drawn from the suppressed view.

One self-contained page (no external scripts, fonts or CDNs: it must work offline and leak no
visitor to a third party). It reads only `/api/v1/public/statewide`, which is suppressed."""

import functools
import html
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cmhl_contracts.counties import MISSOURI_COUNTIES

router = APIRouter(tags=["dashboard"])


@functools.cache
def _page() -> str:
    page = (Path(__file__).parent / "dashboard.html").read_text(encoding="utf-8")
    options = "".join(
        f'<option value="{code}">{html.escape(name)}</option>'
        for code, name in sorted(MISSOURI_COUNTIES.items(), key=lambda item: item[1])
    )
    return page.replace("__COUNTIES__", options)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(_page())
