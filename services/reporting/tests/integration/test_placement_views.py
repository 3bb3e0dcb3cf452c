"""Placement views on the real stack: freshness by facility and placement figures over HTTP."""

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from cmhl_reporting.bootstrap import build
from cmhl_reporting.config import ReportingSettings
from cmhl_reporting.domain.window import parse_period
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import KafkaProbe, bearer, eventually, infra_settings, running_app

from ..conftest import CHICAGO, with_duplicates
from ..placement_stream import (
    bed_update,
    expected_facilities,
    expected_placement,
    make_placement_stream,
)
from .helpers import send_all

pytestmark = pytest.mark.integration

ANALYST = bearer("dmh-analyst", Role.METRICS_CONSUMER)
# Days and months are free windows: for roles that may see records.
RECORDS = bearer("privacy-officer", Role.PRIVACY_OFFICER)
URL = "/api/v1/metrics/placement"


async def _get(client: AsyncClient, **params: Any) -> Any:
    response = await client.get(URL, headers=RECORDS, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _shown(count: int) -> int | str:
    """The publication rule for counts of people: 1 to 10 are suppressed."""
    return "suppressed" if 1 <= count <= 10 else count


def _facility(body: dict[str, Any], facility: str) -> dict[str, Any] | None:
    rows = [r for r in body["bed_availability"] if r["facility_id"] == facility]
    return rows[0] if rows else None


async def test_a_bed_update_shows_in_freshness_and_an_older_redelivery_never_wins(
    kafka_bootstrap: str, mongo_uri: str, kafka_probe: KafkaProbe
) -> None:
    facility = f"fac-{uuid.uuid4().hex[:10]}"
    day = datetime(2005, 1, 1, tzinfo=CHICAGO) + timedelta(days=random.randrange(1460))
    older = bed_update(facility, "region-2", 1, day + timedelta(hours=2), available=5)
    newer = bed_update(facility, "region-2", 2, day + timedelta(hours=9), available=1)
    app = build(ReportingSettings(**infra_settings(kafka_bootstrap, mongo_uri)))
    async with running_app(app, from_now=True) as client:
        await send_all(kafka_probe, [older, newer, older])  # the older one redelivered last
        period = day.date().isoformat()

        async def shown() -> dict[str, Any] | None:
            row = _facility(await _get(client, period=period), facility)
            return row if row and row["updates"] == 2 and row["sequence"] == 2 else None

        row = await eventually(shown, timeout=90, interval=1)
        assert row["last_reported_at"] == newer.updated_at.isoformat()
        assert row["units"][0]["available"] == 1
        age = (datetime.now(UTC) - newer.updated_at).total_seconds() / 3600
        assert abs(row["age_hours"] - age) < 0.1  # now - the newest report, in hours
        assert row["stale_reminders"] == 0
        anonymous = await client.get(URL, params={"period": period})
        assert anonymous.status_code == 401
        bad = await client.get(URL, headers=RECORDS, params={"period": "someday"})
        assert bad.status_code == 422
        not_on_grid = await client.get(URL, headers=ANALYST, params={"period": period})
        assert not_on_grid.status_code == 422
        on_grid = await client.get(URL, headers=ANALYST, params={"period": "all"})
        assert on_grid.status_code == 200
        assert on_grid.json()["window"]["grid"] is True


async def test_placement_figures_equal_the_distinct_events_with_duplicates(
    kafka_bootstrap: str, mongo_uri: str, kafka_probe: KafkaProbe
) -> None:
    stream = make_placement_stream(requests=40, seed=random.randrange(10**9))
    sent = with_duplicates(stream.events, share=0.1, seed=5)
    truth = expected_placement(stream.events)
    facilities = expected_facilities(stream.events)
    app = build(ReportingSettings(**infra_settings(kafka_bootstrap, mongo_uri)))
    async with running_app(app, from_now=True) as client:
        await send_all(kafka_probe, sent)

        async def caught_up() -> bool:
            raw = await app.state.placement.raw(parse_period(stream.month))
            return bool(raw == truth)

        await eventually(caught_up, timeout=120, interval=1)

        def facility_rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
            keys = ("updates", "stale_reminders", "sequence", "last_reported_at")
            rows = {r["facility_id"]: r for r in body["bed_availability"]}
            return {f: {k: rows.get(f, {}).get(k) for k in keys} for f in facilities}

        async def fresh() -> Any:
            # The counters and the latest states are written by two consumer groups.
            body = await _get(client, period=stream.month)
            return body if facility_rows(body) == facilities else None

        body = await eventually(fresh, timeout=60, interval=1)
    placed = truth["completed"]["placed"]
    assert placed > 10  # shown, not suppressed
    assert body["hours_to_placement"] == {
        "placements": placed,
        "median_hours": truth["hours_to_placement"]["median_hours"],
    }
    contacted = body["facilities_contacted"]
    assert contacted["placements"] == placed
    assert contacted["mean_per_placement"] == truth["facilities_contacted"]["mean_per_placement"]
    assert body["requests"] == 40
    failed = truth["completed"]["failed"]
    assert body["completed"] == {"total": 40, "by_outcome": {"placed": placed, "failed": failed}}
    assert (
        contacted["mean_per_failed_search"]
        == (truth["facilities_contacted"]["mean_per_failed_search"])
    )
    past = truth["past_96_hours"]
    assert body["past_96_hours"]["completed"] == _shown(sum(past["completed"].values()))
    assert body["past_96_hours"]["flagged"] == {k: _shown(n) for k, n in past["flagged"].items()}
    region = truth["region"]
    percent = body["region"]["out_of_region_percent"]
    known = region["out_of_region"] + region["in_region"]
    assert percent is None or percent == round(100 * region["out_of_region"] / known, 1)
    assert len(facilities) == 3
    assert all(f["updates"] >= 1 and f["stale_reminders"] == 1 for f in facilities.values())
