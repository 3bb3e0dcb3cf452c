"""Consultation and barrier counts on the real stack: events from Kafka, duplicates included,
counted once by county and fiscal year, and published suppressed to those allowed to ask."""

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from cmhl_contracts import BarrierRecordedV1, ConsultationRecordedV1, IntegrationEvent
from cmhl_contracts.activity import BarrierKind, ConsultationTopic
from cmhl_contracts.vocabulary import ReferralSource
from cmhl_reporting.bootstrap import build
from cmhl_reporting.config import ReportingSettings
from cmhl_reporting.domain.activity import publish_activity
from cmhl_reporting.domain.calendar import fiscal_year
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import KafkaProbe, bearer, eventually, infra_settings, running_app

from ..conftest import CHICAGO, with_duplicates
from .helpers import send_all

pytestmark = pytest.mark.integration

ANALYST = bearer("dmh-analyst", Role.METRICS_CONSUMER)
RECORDS = bearer("privacy-officer", Role.PRIVACY_OFFICER)
LIAISON = bearer("liaison-01", Role.LIAISON, cmhc_id="cmhc-01")
URL = "/api/v1/metrics/activity"
AT = datetime(2020, 1, 1, tzinfo=UTC)


def consulted(county: str, topic: ConsultationTopic, day: date) -> ConsultationRecordedV1:
    record = uuid.uuid4()
    return ConsultationRecordedV1.create(
        about=(str(record),),
        producer="referral",
        correlation_id="c",
        occurred_at=AT,
        consultation_id=record,
        county_fips=county,
        asked_by=ReferralSource.SHERIFF,
        question_topic=topic,
        occurred_on=day,
        recorded_by="liaison-01",
        recorded_at=AT,
    )


def blocked(county: str, kind: BarrierKind, day: date) -> BarrierRecordedV1:
    record = uuid.uuid4()
    return BarrierRecordedV1.create(
        about=(str(record),),
        producer="referral",
        correlation_id="c",
        occurred_at=AT,
        barrier_id=record,
        kind=kind,
        county_fips=county,
        occurred_on=day,
        recorded_by="liaison-01",
        recorded_at=AT,
    )


def _small(body: dict[str, Any]) -> list[Any]:
    found: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)
        elif isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10:
            found.append(value)

    walk({k: v for k, v in body.items() if k in ("consultations", "barriers")})
    return found


async def test_counts_reach_reporting_by_county_and_fiscal_year_exactly_once(
    kafka_bootstrap: str, mongo_uri: str, kafka_probe: KafkaProbe
) -> None:
    # A fiscal year long ended, its own to this run: other runs' records are other years.
    year = random.randrange(1960, 2010)
    first_day = date(year - 1, 7, 1)
    last_day = date(year, 6, 30)
    events: list[IntegrationEvent] = [
        *(consulted("29019", ConsultationTopic.RESOURCES, first_day) for _ in range(14)),
        *(consulted("29019", ConsultationTopic.TRAINING, last_day) for _ in range(3)),
        *(consulted("29510", ConsultationTopic.RESOURCES, last_day) for _ in range(12)),
        *(blocked("29019", BarrierKind.NO_BED, first_day) for _ in range(25)),
        *(blocked("29095", BarrierKind.NO_TRANSPORT, last_day) for _ in range(2)),
        # The days either side belong to the fiscal years before and after.
        consulted("29019", ConsultationTopic.RESOURCES, first_day - timedelta(days=1)),
        blocked("29019", BarrierKind.NO_BED, last_day + timedelta(days=1)),
    ]
    today = datetime.now(CHICAGO).date()
    current = blocked("29019", BarrierKind.WAITLIST, today)
    sent = with_duplicates([*events, current], share=0.3, seed=year)
    expected = {
        "consultations": {
            "29019": {"resources": 14, "training": 3},
            "29510": {"resources": 12},
        },
        "barriers": {"29019": {"no_bed": 25}, "29095": {"no_transport": 2}},
    }
    app = build(ReportingSettings(**infra_settings(kafka_bootstrap, mongo_uri)))
    async with running_app(app, from_now=True) as client:
        await send_all(kafka_probe, sent)

        before = {"consultations": {"29019": {"resources": 1}}, "barriers": {}}
        after = {"consultations": {}, "barriers": {"29019": {"no_bed": 1}}}

        async def counted() -> bool:
            # Consultations and barriers come through consumers of their own, each fetching in
            # batches: every year is waited for, not only the one the last event counts in.
            now = await app.state.activity.raw(fiscal_year(today))
            return bool(
                await app.state.activity.raw(year) == expected
                and now["barriers"].get("29019", {}).get("waitlist") == 1
                and await app.state.activity.raw(year - 1) == before
                and await app.state.activity.raw(year + 1) == after
            )

        await eventually(counted, timeout=120, interval=1)

        analyst = await client.get(URL, headers=ANALYST, params={"fiscal_year": year})
        assert analyst.status_code == 200, analyst.text
        body = analyst.json()
        assert body["fiscal_year"] == year
        assert body["window"] == {
            "start": first_day.isoformat(),
            "end": date(year, 7, 1).isoformat(),
            "period": "fy",
        }
        published = publish_activity(expected)
        assert {k: body[k] for k in published} == published
        assert _small(body) == []
        rows = {r["county_fips"]: r for r in body["consultations"]["by_county"]}
        assert rows["29019"]["by_topic"]["training"] == "suppressed"
        assert rows["29019"]["by_topic"]["resources"] == 14
        # 12 alone would be shown; it hides so that training's 3 cannot be worked out from the
        # statewide total (29 = 14 + 3 + 12), and its county's total with it.
        assert rows["29510"]["by_topic"]["resources"] == "suppressed"
        assert rows["29510"]["total"] == "suppressed"
        assert body["consultations"]["total"] == 29
        assert body["barriers"]["total"] == 27
        assert body["barriers"]["by_kind"]["no_transport"] == "suppressed"

        public = await client.get("/api/v1/public/activity", params={"fiscal_year": year})
        assert public.status_code == 200
        assert {k: public.json()[k] for k in published} == published

        # A fiscal year still open to records is for roles that may see records only.
        running = {"fiscal_year": fiscal_year(today)}
        refused = await client.get(URL, headers=ANALYST, params=running)
        assert refused.status_code == 422
        assert "is published from" in refused.json()["detail"]
        refused_public = await client.get("/api/v1/public/activity", params=running)
        assert refused_public.status_code == 422
        records = await client.get(URL, headers=RECORDS, params=running)
        assert records.status_code == 200
        assert _small(records.json()) == []

        assert (await client.get(URL, params={"fiscal_year": year})).status_code == 401
        liaison = await client.get(URL, headers=LIAISON, params={"fiscal_year": year})
        assert liaison.status_code == 403
        assert (await client.get(URL, headers=ANALYST)).status_code == 422
        bad_year = await client.get(URL, headers=ANALYST, params={"fiscal_year": 99999})
        assert bad_year.status_code == 422
