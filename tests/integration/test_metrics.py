"""Each service's `/metrics` moves under a small load on the real stack, and no label carries a
person: the operator's view (HTTP by route template, Kafka consumers and producers, dead letters,
consumer lag, the outbox, timers, projection freshness) without the people's data."""

import base64
import os
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from cmhl_contracts import ReferralCreatedV1
from cmhl_followup.bootstrap import build as build_followup
from cmhl_followup.config import FollowUpSettings
from cmhl_referral.bootstrap import build as build_referral
from cmhl_referral.config import ReferralSettings
from cmhl_reporting.bootstrap import build as build_reporting
from cmhl_reporting.config import ReportingSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import bearer, eventually, infra_settings, running_app

pytestmark = pytest.mark.integration

LIAISON = bearer("liaison-52", Role.LIAISON, cmhc_id="cmhc-12")
# Every label a service may put on a metric: names of routes, topics, groups, reasons, never of
# people. A new label must be added here, after asking whether a value could be someone's.
ALLOWED_LABELS = {
    "method", "route", "status", "topic", "reason", "group", "partition", "store", "probe",
    "le", "quantile", "app_name", "broker", "handler", "destination", "exception_type",
}  # fmt: skip
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _scrape(client: httpx.AsyncClient) -> tuple[str, Samples]:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            assert set(sample.labels) <= ALLOWED_LABELS, (sample.name, sample.labels)
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return answer.text, samples


def _sum(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def _has(samples: Samples, name: str) -> bool:
    return any(n == name for n, _ in samples)


async def test_metrics_move_under_load_and_never_name_a_person(
    kafka_bootstrap: str, mongo_uri: str, kafka_access: Any
) -> None:
    def infra() -> dict[str, Any]:
        return infra_settings(kafka_bootstrap, mongo_uri)

    referral_settings = ReferralSettings(
        **infra(),
        pseudonym_key="test-pseudonym-key",
        encryption_key=base64.b64encode(os.urandom(32)).decode(),
    )
    followup_settings = FollowUpSettings(**infra(), due_scan_seconds=3600)
    reporting_settings = ReportingSettings(**infra())
    marker = uuid.uuid4().hex[:8]
    people = [
        {
            "given_name": f"Metricia{marker}",
            "family_name": f"Labelson{marker}{i}",
            "birth_date": f"1977-0{i + 1}-1{i}",
        }
        for i in range(5)
    ]
    narrative = f"Narrative {marker} that must never become a label"
    async with (
        running_app(build_followup(followup_settings), from_now=True) as followups,
        running_app(build_reporting(reporting_settings), from_now=True) as reporting,
        running_app(build_referral(referral_settings), from_now=True) as referrals,
    ):
        ids = []
        for person in people:
            created = await referrals.post(
                "/api/v1/referrals",
                json={
                    "agency": {"agency_id": "boone-so", "source": "sheriff"},
                    "county_fips": "29019",
                    "primary_need": "behavioral_needs",
                    "person_location": "community",
                    "person": person,
                    "narrative": narrative,
                },
                headers=LIAISON,
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["referral_id"])
        assert (await referrals.get(f"/api/v1/referrals/{ids[0]}", headers=LIAISON)).is_success
        assert (await referrals.get(f"/no/such/{people[0]['family_name']}")).status_code == 404

        # A record that is not an event: the follow-up service dead-letters it.
        producer = AIOKafkaProducer(**kafka_access.client_options(), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(
                ReferralCreatedV1.topic(), b"{not json", key=f"metrics-{marker}".encode()
            )
        finally:
            await producer.stop()

        async def followups_saw_everything() -> bool:
            _, samples = await _scrape(followups)
            return (
                _sum(samples, "cmhl_timers_pending", store="follow_up_due") >= 5
                and _sum(samples, "cmhl_dead_letters_total", topic=ReferralCreatedV1.topic()) >= 1
            )

        await eventually(followups_saw_everything, timeout=60)

        async def reporting_projected() -> bool:
            _, samples = await _scrape(reporting)
            return _sum(samples, "cmhl_projection_delay_seconds_count") >= 5

        await eventually(reporting_projected, timeout=60)

        texts = {}
        for name, client in (
            ("referral", referrals),
            ("followup", followups),
            ("reporting", reporting),
        ):
            texts[name], samples = await _scrape(client)
            assert _has(samples, "cmhl_http_requests_total"), name
            assert _has(samples, "cmhl_consumer_lag"), f"{name}: its consumers' lag"
            if name != "referral":  # it consumes agencies' submissions, none sent here
                assert _sum(samples, "faststream_received_messages_total") >= 5, name
        _, samples = await _scrape(referrals)
        assert (
            _sum(
                samples,
                "cmhl_http_requests_total",
                method="POST",
                route="/api/v1/referrals",
                status="201",
            )
            == 5
        )
        assert _sum(samples, "cmhl_http_requests_total", route="/api/v1/referrals/{referral_id}")
        assert _sum(samples, "cmhl_http_requests_total", route="unmatched", status="404") == 1
        assert (
            _sum(samples, "cmhl_http_request_duration_seconds_count", route="/api/v1/referrals")
            == 5
        )
        assert _has(samples, "cmhl_outbox_backlog")
        assert _has(samples, "cmhl_outbox_oldest_age_seconds")
        assert (
            _sum(
                samples,
                "faststream_published_messages_total",
                destination=ReferralCreatedV1.topic(),
            )
            >= 5
        )
        _, samples = await _scrape(followups)
        assert _sum(samples, "cmhl_dead_letters_total", reason="invalid_event") >= 1
        assert _has(samples, "cmhl_timers_oldest_due_seconds")

    for name, text in texts.items():
        for person in people:
            for value in person.values():
                assert value not in text, f"{name}'s metrics name a person"
        assert marker not in text, f"{name}'s metrics carry a value from a record"
