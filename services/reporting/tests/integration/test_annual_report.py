"""The annual report (`/reports/annual`) on the real stack: a fiscal year of history, trainings and
placements sent through Kafka; the report shows the grid's numbers for the year (the same the
public API publishes), is rendered in Chromium (a screenshot, and the print stylesheet printed
to PDF) and as the service's own PDF, and each PDF is turned into PNG pages with pdftoppm in
the test artifacts. Periods off the grid are refused."""

import random
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from cmhl_reporting.bootstrap import build
from cmhl_reporting.config import ReportingSettings
from cmhl_servicekit.testing import (
    KafkaProbe,
    eventually,
    free_port,
    headless_chromium,
    infra_settings,
    skip_history,
)

from ..conftest import Stream, add_trainings
from ..history import make_history
from ..placement_stream import make_placement_stream
from .helpers import Reporting, artifacts, send_all

pytestmark = pytest.mark.integration


def _pages(pdf: bytes, name: str, folder: Path) -> list[str]:
    """The PDF's pages as PNGs (pdftoppm, Debian's poppler-utils) in the artifacts folder."""
    tool = shutil.which("pdftoppm")
    if tool is None:
        pytest.fail(
            "pdftoppm is missing: `python deploy/local/stack.py install --for-tests` installs it"
        )
    path = folder / f"{name}.pdf"
    path.write_bytes(pdf)
    subprocess.run([tool, "-png", "-r", "80", str(path), str(folder / name)], check=True)
    return sorted(p.name for p in folder.glob(f"{name}-*.png"))


async def test_the_annual_report_shows_the_grid_for_a_fiscal_year_in_html_and_pdf(
    kafka_bootstrap: str, mongo_uri: str, kafka_probe: KafkaProbe
) -> None:
    seed = random.randrange(10**9)
    history = make_history(
        900, seed, first=date(2022, 7, 1), days=365, counties=10, agencies=8, liaisons=6
    )
    trainings = Stream("2022-10")
    add_trainings(trainings, sessions=9, seed=seed, revise=False)
    placements = make_placement_stream(requests=60, seed=seed)
    year, month = (int(p) for p in placements.month.split("-"))
    placements_fiscal_end = date(year + 1 if month >= 7 else year, 6, 30)
    every_placement_row = "Placement requests</th><td></td><td></td><td>60<"
    port = free_port()
    settings = infra_settings(kafka_bootstrap, mongo_uri) | {
        "http_port": port,
        "grid_refresh_seconds": 0,
    }
    await skip_history(build(ReportingSettings(**settings)))
    folder = artifacts()
    service = Reporting(settings, folder / "reporting-annual.log")
    base = f"http://127.0.0.1:{port}"
    service.start()
    try:
        await send_all(kafka_probe, history.events + trainings.events + placements.events)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:

            async def counted() -> bool:
                try:
                    body = (await client.get("/api/v1/public/statewide?period=fy2023")).json()
                    placed = await client.get(
                        "/reports/annual", params={"as_of": placements_fiscal_end.isoformat()}
                    )
                except httpx.HTTPError:
                    return False
                # Every topic is consumed on its own: wait for the last placement too, not the
                # first (the placement consumer may still be part way through the 60).
                return bool(
                    body["referrals"]["total"] == 900
                    and body["trainings"]["sessions"] == 9
                    and every_placement_row in placed.text
                    and body["follow_ups"]["completed"] != 0
                )

            await eventually(counted, timeout=180, interval=1)
            read: dict[str, Any] = {}

            async def agreeing() -> bool:
                # The page and the API answer from one plan when the views hold still; follow-up
                # and status events, not waited for above, may still move the plan meanwhile
                # (and with it which shares the grid hides).
                read["public"] = (await client.get("/api/v1/public/statewide?period=fy2023")).json()
                read["page"] = await client.get("/reports/annual", params={"period": "fy2023"})
                shares = read["public"]["referrals"]["by_source_percent"].values()
                return all(f"{s:g}%" in read["page"].text for s in shares if s is not None)

            await eventually(agreeing, timeout=60, interval=1)
            public, page = read["public"], read["page"]
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            text = page.text
            assert "State fiscal year 2023: July 1, 2022 to June 30, 2023" in text
            assert "900" in text
            assert str(public["trainings"]["officers_trained"]) in text
            seats = public["trainings"]["seats_filled"]
            assert seats == 9 * 6  # six officers on each roster, some in several sessions
            assert f"{seats:,} seats filled" in text
            pdf = await client.get("/reports/annual", params={"period": "fy2023", "format": "pdf"})
            assert pdf.status_code == 200
            assert pdf.headers["content-type"] == "application/pdf"
            assert pdf.content.startswith(b"%PDF")
            assert _pages(pdf.content, "annual-fy2023", folder) == ["annual-fy2023-1.png"]
            # The placements' fiscal year, cumulatively as of its end.
            cumulative = await client.get(
                "/reports/annual", params={"as_of": placements_fiscal_end.isoformat()}
            )
            assert cumulative.status_code == 200
            assert f"as of June 30, {placements_fiscal_end.year}" in cumulative.text
            assert every_placement_row in cumulative.text
            for bad in ({"period": "2023"}, {"period": "2023-01"}, {"as_of": "2023-01-15"}):
                refused = await client.get("/reports/annual", params=bad)
                assert refused.status_code == 422, bad
                assert "fyYYYY" in refused.text
        async with headless_chromium() as browser:
            tab = await browser.new_page(viewport={"width": 1100, "height": 1400})
            await tab.goto(base + "/reports/annual?period=fy2023")
            assert await tab.title() == (
                "Community Mental Health Liaisons: making the connection: "
                "State fiscal year 2023: July 1, 2022 to June 30, 2023"
            )
            await tab.screenshot(path=str(folder / "annual-report.png"), full_page=True)
            printed = await tab.pdf(format="Letter", print_background=True)
            assert _pages(printed, "annual-fy2023-printed", folder) == [
                "annual-fy2023-printed-1.png"
            ]
    finally:
        service.kill()
