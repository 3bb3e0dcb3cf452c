"""The publication grid on the real stack: a program history sent through Kafka, then every grid
answer the running service gives over HTTP (statewide, each county, every dimension; the public
and a metrics consumer; JSON and CSV) is checked to agree everywhere, and attacked by adding and
subtracting (tests/differencing.py). Windows off the grid are refused with the grid's forms."""

import asyncio
import csv
import io
from datetime import date
from typing import Any

import pytest
from httpx import AsyncClient

from cmhl_reporting.bootstrap import build
from cmhl_reporting.config import ReportingSettings
from cmhl_reporting.domain import grid
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import KafkaProbe, bearer, eventually, infra_settings, running_app

from ..differencing import Answer, Truth, attack, numbers
from ..history import make_history
from .helpers import send_all

pytestmark = pytest.mark.integration

ANALYST = bearer("dmh-analyst", Role.METRICS_CONSUMER)
RECORDS = bearer("privacy-officer", Role.PRIVACY_OFFICER)
# Fixed: the unit tests attack many seeds; this one checks what the running service answers.
SEED = 20261130
ENVELOPE = ("as_of", "generation", "window", "county", "dimension")


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = "" if value is None else str(value)


async def _get(client: AsyncClient, url: str, headers: Any, **params: Any) -> Any:
    response = await client.get(url, headers=headers, params=params)
    assert response.status_code == 200, (url, params, response.text)
    return response.json()


async def _csv(client: AsyncClient, url: str, headers: Any, **params: Any) -> list[dict[str, str]]:
    response = await client.get(url, headers=headers, params=params | {"format": "csv"})
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def _body(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ENVELOPE}


async def _settled(app: Any) -> None:
    """Until the views stop changing and the grid's plan is built from the last of them."""
    reader, publication = app.state.reader, app.state.grid
    last = -1
    while True:
        await asyncio.sleep(3)
        version = (await reader.current()).counters.version
        if version == last:
            break
        last = version

    async def built() -> bool:
        return bool((await publication.published()).version == last)

    await eventually(built, timeout=60, interval=0.5)


async def test_every_grid_answer_agrees_and_gives_no_small_count_away(
    kafka_bootstrap: str, mongo_uri: str, kafka_probe: KafkaProbe
) -> None:
    history = make_history(
        500,
        SEED,
        first=date(2021, 7, 1),
        days=1095,  # three whole fiscal years
        counties=8,
        agencies=9,
        liaisons=6,
    )
    settings = ReportingSettings(**infra_settings(kafka_bootstrap, mongo_uri))
    app = build(settings.model_copy(update={"grid_refresh_seconds": 0}))
    async with running_app(app, from_now=True) as client:
        await send_all(kafka_probe, history.events)

        async def counted() -> bool:
            body = await _get(client, "/api/v1/metrics/statewide", RECORDS, period="all")
            return bool(body["referrals"]["total"] == len(history.referrals))

        await eventually(counted, timeout=180, interval=1)
        await _settled(app)
        today = app.state.grid.today()
        asked: list[tuple[dict[str, str], grid.GridPeriod]] = [
            ({"period": "all"}, grid.resolve("all", None, [], today))
        ]
        for fiscal in ("fy2022", "fy2023", "fy2024"):
            asked.append(({"period": fiscal}, grid.resolve(fiscal, None, [], today)))
            for as_of in (date(int(fiscal[2:]) - 1, 9, 30), date(int(fiscal[2:]), 6, 30)):
                asked.append(({"as_of": as_of.isoformat()}, grid.resolve(None, as_of, [], today)))
            for n in range(1, 5):
                quarter = f"{fiscal}-q{n}"
                asked.append(({"period": quarter}, grid.resolve(quarter, None, [], today)))
        counties = sorted({r.county for r in history.referrals})
        answers: list[Answer] = []
        for params, period in asked:
            url = "/api/v1/metrics/statewide"
            consumer = await _get(client, url, ANALYST, **params)
            public = await _get(client, "/api/v1/public/statewide", None, **params)
            assert consumer["window"]["grid"] is True
            # The same numbers for the public and for metrics consumers, in JSON and in CSV.
            assert _body(public) == _body(consumer)
            flat: dict[str, str] = {}
            _flat("", consumer, flat)
            as_csv = await _csv(client, url, ANALYST, **params)
            assert {f"{r['metric']}.{r['key']}".lstrip("."): r["value"] for r in as_csv} == flat
            answers.append((period, "statewide", None, consumer))
            for county in counties:
                body = await _get(client, url, ANALYST, county=county, **params)
                answers.append((period, "statewide", county, body))
            tables: dict[str, dict[str, Any]] = {}
            for dim in grid.REFERRAL_DIMENSIONS:
                body = tables[dim] = await _get(client, f"/api/v1/metrics/{dim}", ANALYST, **params)
                rows = await _csv(client, f"/api/v1/metrics/{dim}", ANALYST, **params)
                assert rows == [
                    {k: "" if v is None else str(v) for k, v in row.items()} for row in body["rows"]
                ]
                answers.append((period, "dimension", dim, body))
            # The map and the placement panel publish the same numbers as the analyst's tables
            # (so the attack below covers them): counts per county, placements.
            by_county = {row["key"]: row["referrals"] for row in tables["county"]["rows"]}
            shown = await _get(client, "/api/v1/public/counties", None, **params)
            assert {r["county_fips"]: r["referrals"] for r in shown["rows"] if r["referrals"]} == {
                k: v for k, v in by_county.items() if v
            }
            placed = await _get(client, "/api/v1/public/placement", None, **params)
            analyst = await _get(client, "/api/v1/metrics/placement", ANALYST, **params)
            analyst.pop("bed_availability")
            assert _body(placed) == _body(analyst)
        published = list(numbers(answers, Truth(history, today)))
        findings = attack(published)
        assert findings == [], f"{len(findings)} derivations, e.g. {findings[:10]}"
        assert len(published) > 1000

        # Off the grid: a 422 that names the accepted forms, for the public and for analysts.
        for params in (
            {"period": "2023"},
            {"period": "2023-09"},
            {"period": "2023-09-14"},
            {"start": "2023-01-01T00:00:00Z", "end": "2023-02-01T00:00:00Z"},
            {"as_of": "2023-09-14"},  # not a quarter's last day
            {"period": grid.quarter_of(today.isoformat())},  # still running
            {"period": "fy2031"},
        ):
            for headers in (ANALYST, None):
                url = "/api/v1/metrics/statewide" if headers else "/api/v1/public/statewide"
                refused = await client.get(url, headers=headers, params=params)
                assert refused.status_code == 422, (params, refused.text)
                assert "fyYYYY" in refused.text
        month = await client.get("/api/v1/metrics/month", headers=ANALYST, params={"period": "all"})
        assert month.status_code == 422
        assert "by_quarter" in month.json()["detail"]
        # Roles that may see records keep any window; the future is refused there too.
        free = await _get(client, "/api/v1/metrics/statewide", RECORDS, period="2023-09")
        assert free["window"]["period"] == "month"
        future = await client.get(
            "/api/v1/metrics/statewide", headers=RECORDS, params={"as_of": "2099-01-01"}
        )
        assert future.status_code == 422
        assert "future" in future.json()["detail"]
