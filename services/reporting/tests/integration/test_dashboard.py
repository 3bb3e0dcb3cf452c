"""The dashboard at `/` in headless Chromium (Debian's package, driven by Playwright): the
brochure's picture from live data on the publication grid, filtered by county and fiscal year."""

import random
from collections import Counter

import httpx
import pytest

from cmhl_contracts import ReferralCreatedV1
from cmhl_contracts.counties import MISSOURI_COUNTIES
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

from ..conftest import add_trainings, expected_raw, make_stream
from .helpers import Reporting, artifacts, send_all

pytestmark = pytest.mark.integration


async def test_the_dashboard_draws_the_brochure_from_live_data(
    kafka_bootstrap: str, mongo_uri: str, kafka_probe: KafkaProbe
) -> None:
    stream = make_stream(referrals=160, seed=random.randrange(10**9), lifecycle=False)
    add_trainings(stream, sessions=5, seed=2, revise=False)
    truth = expected_raw(stream.events)
    port = free_port()
    # The grid is suppressed anew as soon as the views change (300 s apart in production).
    settings = infra_settings(kafka_bootstrap, mongo_uri) | {
        "http_port": port,
        "grid_refresh_seconds": 0,
    }
    await skip_history(build(ReportingSettings(**settings)))
    folder = artifacts()
    service = Reporting(settings, folder / "reporting-dashboard.log")
    base = f"http://127.0.0.1:{port}"
    service.start()
    try:
        await send_all(kafka_probe, stream.events)
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:

            async def counted() -> bool:
                try:
                    body = (await client.get("/api/v1/public/statewide")).json()
                except httpx.HTTPError:
                    return False
                # Referrals and trainings arrive through consumers of their own, each fetching
                # in batches: both counted before the page is read.
                return bool(
                    body["referrals"]["total"] == 160
                    and body["trainings"]["sessions"] == truth["trainings"]["sessions"]
                )

            await eventually(counted, timeout=180, interval=1)
        async with headless_chromium() as browser:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(base + "/")
            await page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
            assert await page.inner_text("#total") == "160"
            sessions = await page.inner_text("#sessions")
            assert sessions == str(truth["trainings"]["sessions"])
            sources = Counter(truth["referrals"]["by_source"])
            rows = await page.query_selector_all("#sources .bar")
            assert len(rows) == len(sources)
            for row in rows:
                key = await row.get_attribute("data-key")
                assert key is not None
                text = await row.inner_text()
                if 1 <= sources[key] <= 10:
                    assert "suppressed" in text
                elif "suppressed" not in text:  # complementary cells are hidden too
                    # The API rounds to one decimal; JavaScript prints 10.0 as "10".
                    share = round(100 * sources[key] / 160, 1)
                    assert text.endswith(f"\n{share:g}%"), text
            await page.screenshot(path=str(folder / "dashboard.png"), full_page=True)
            # The county map: every county drawn, a county with 1 to 10 referrals never shaded
            # by a rate, a text alternative listing each county.
            per_county = Counter(
                e.county_fips for e in stream.events if isinstance(e, ReferralCreatedV1)
            )
            assert len(await page.query_selector_all("#map path")) == len(MISSOURI_COUNTIES)
            assert len(await page.query_selector_all("#map-table tbody tr")) == len(
                MISSOURI_COUNTIES
            )
            for fips, count in per_county.items():
                fill = await page.get_attribute(f"#c{fips}", "fill")
                if 1 <= count <= 10:
                    assert fill == "url(#hatch)", (fips, count)
                tip = await page.text_content(f"#c{fips} title") or ""
                assert MISSOURI_COUNTIES[fips] in tip
            untouched = next(f for f in MISSOURI_COUNTIES if f not in per_county)
            assert await page.get_attribute(f"#c{untouched}", "fill") == "#f7fbff"
            # The placement panel reads the grid too (no placements in this stream: zeros).
            assert await page.inner_text("#placements") == "0"
            # Choosing a county on the map filters the page to it.
            busiest = per_county.most_common(1)[0][0]
            await page.evaluate("document.body.dataset.loaded = 'false'")
            await page.click(f"#c{busiest}", force=True)
            await page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
            assert await page.input_value("#county") == busiest
            assert await page.get_attribute(f"#c{busiest}", "class") == "chosen"
            await page.screenshot(path=str(folder / "dashboard-map-county.png"), full_page=True)
            await page.select_option("#county", "")
            # The trend is by fiscal quarter, with a text alternative listing each.
            quarters = await page.query_selector_all("#trend-table tbody tr")
            assert len(quarters) > 4
            label = await page.get_attribute("#trend", "aria-label")
            assert label is not None
            assert "fiscal quarter" in label
            # One county holds only a handful of referrals: its total is suppressed.
            year, month = (int(part) for part in stream.month.split("-"))
            fiscal = f"fy{year + 1 if month >= 7 else year}"
            await page.select_option("#county", "29001")
            await page.select_option("#period", fiscal)
            await page.evaluate("document.body.dataset.loaded = 'false'")
            await page.click("button[type=submit]")
            await page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
            county_total = await page.inner_text("#total")
            assert county_total == "suppressed" or int(county_total) > 10
            assert await page.inner_text("#status") != "invalid filter"
            await page.screenshot(path=str(folder / "dashboard-county.png"), full_page=True)
    finally:
        service.kill()
