"""Reporting on the real stack: views equal the distinct events under duplicates and restarts."""

import csv
import io
import random
from typing import Any

import pytest
from httpx import AsyncClient

from cmhl_reporting.bootstrap import build
from cmhl_reporting.config import ReportingSettings
from cmhl_reporting.domain.window import parse_period
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import (
    KafkaProbe,
    bearer,
    eventually,
    infra_settings,
    running_app,
)

from ..conftest import add_trainings, comparable, expected_raw, make_stream, with_duplicates
from .helpers import send_all

pytestmark = pytest.mark.integration

ANALYST = bearer("dmh-analyst", Role.METRICS_CONSUMER)
# Months and free windows are for roles that may see records; analysts get the grid.
RECORDS = bearer("privacy-officer", Role.PRIVACY_OFFICER)


async def test_views_equal_distinct_events_with_duplicates_and_a_restart(
    kafka_bootstrap: str, mongo_uri: str, kafka_probe: KafkaProbe
) -> None:
    stream = make_stream(referrals=150, seed=random.randrange(10**9))
    add_trainings(stream, sessions=12, seed=7)
    sent = with_duplicates(stream.events, share=0.05, seed=11)
    truth = comparable(expected_raw(stream.events))
    settings = ReportingSettings(**infra_settings(kafka_bootstrap, mongo_uri))
    half = len(sent) // 2

    async with running_app(build(settings), from_now=True):
        await send_all(kafka_probe, sent[:half])
    # Stopped mid-stream: whatever it committed, it had written; the rest is replayed.
    await send_all(kafka_probe, sent[half:])
    app = build(settings)
    async with running_app(app):

        async def caught_up() -> bool:
            raw = await app.state.queries.raw_statewide(parse_period(stream.month))
            return bool(comparable(raw) == truth)

        await eventually(caught_up, timeout=120, interval=1)
    assert truth["referrals"]["total"] == 150
    assert len(sent) - len(stream.events) == int(len(stream.events) * 0.05)


async def _get(client: AsyncClient, url: str, **params: Any) -> Any:
    response = await client.get(url, headers=RECORDS, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_published_metrics_are_suppressed_and_need_a_reader_role(
    kafka_bootstrap: str, mongo_uri: str, kafka_probe: KafkaProbe
) -> None:
    stream = make_stream(referrals=60, seed=random.randrange(10**9), lifecycle=False)
    add_trainings(stream, sessions=2, seed=3, revise=False)
    truth = expected_raw(stream.events)
    settings = ReportingSettings(**infra_settings(kafka_bootstrap, mongo_uri))
    app = build(settings)
    async with running_app(app, from_now=True) as client:
        await send_all(kafka_probe, stream.events)

        async def counted() -> bool:
            body = await _get(client, "/api/v1/metrics/statewide", period=stream.month)
            return bool(body["trainings"]["sessions"] == truth["trainings"]["sessions"]) and (
                (await app.state.queries.raw_statewide(parse_period(stream.month)))["referrals"][
                    "total"
                ]
                == 60
            )

        await eventually(counted, timeout=90, interval=1)
        raw = await app.state.queries.raw_dimension(parse_period(stream.month), "county")
        by_county = await _get(client, "/api/v1/metrics/county", period=stream.month)
        rows = {row["key"]: row for row in by_county["rows"]}
        small = [k for k, r in raw["rows"].items() if 1 <= r["referrals"] <= 10]
        assert small, "the stream has counties with a handful of referrals"
        for key, row in rows.items():
            exact = raw["rows"][key]["referrals"]
            if 1 <= exact <= 10:
                assert row["referrals"] == "suppressed"
                assert row["referrals_percent"] is None
            assert row["people"] == "suppressed" or not 1 <= row["people"] <= 10
        hidden = [k for k, r in rows.items() if r["referrals"] == "suppressed"]
        assert len(hidden) >= 2 or by_county["total"]["referrals"] == "suppressed"
        one_county = small[0]
        county_view = await _get(
            client, "/api/v1/metrics/statewide", period=stream.month, county=one_county
        )
        assert county_view["referrals"]["total"] == "suppressed"
        assert all(v is None for v in county_view["referrals"]["by_source_percent"].values())

        statewide = await _get(client, "/api/v1/metrics/statewide", period=stream.month)
        assert statewide["referrals"]["total"] == 60
        assert statewide["trainings"]["officers_trained"] == truth["trainings"]["officers_trained"]
        for key in ("by_source", "by_presenting_need"):
            assert set(statewide["referrals"][key]) <= set(truth["referrals"][key])
        # A month is not on the publication grid: the public and analysts are told its forms.
        public = await client.get("/api/v1/public/statewide", params={"period": stream.month})
        analyst = await client.get(
            "/api/v1/metrics/statewide", headers=ANALYST, params={"period": stream.month}
        )
        for refused in (public, analyst):
            assert refused.status_code == 422
            assert "all, fyYYYY or fyYYYY-qN" in refused.json()["detail"]

        as_csv = await client.get(
            "/api/v1/metrics/source",
            headers=RECORDS | {"Accept": "text/csv"},
            params={"period": stream.month},
        )
        assert as_csv.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert {r["key"] for r in table} == set(truth["referrals"]["by_source"])
        courses = await _get(client, "/api/v1/metrics/course", period=stream.month, format="json")
        assert sum(r["sessions"] for r in courses["rows"]) == truth["trainings"]["sessions"]

        url = "/api/v1/metrics/statewide"
        assert (await client.get(url)).status_code == 401
        assert (await client.get(url, headers=bearer("l", Role.LIAISON))).status_code == 403
        for bad in (
            {"start": "2018-01-01T00:00:00"},
            {"start": "2018-02-01T00:00:00Z", "end": "2018-01-01T00:00:00Z"},
            {"period": "2018-13"},
            {"county": "12345"},
        ):
            response = await client.get(url, headers=RECORDS, params=bad)
            assert response.status_code == 422, bad
        unknown = await client.get("/api/v1/metrics/shoe-size", headers=ANALYST)
        assert unknown.status_code == 404
