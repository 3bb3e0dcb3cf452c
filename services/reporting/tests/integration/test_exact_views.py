"""Reporting on the real stack: views equal the distinct events under duplicates and restarts."""

import random
from typing import Any

import pytest
from httpx import AsyncClient

from cmhl_contracts import IntegrationEvent
from cmhl_reporting.bootstrap import build
from cmhl_reporting.config import ReportingSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import (
    KafkaProbe,
    bearer,
    eventually,
    infra_settings,
    running_app,
)

from ..conftest import Stream, add_trainings, make_stream

pytestmark = pytest.mark.integration

ANALYST = bearer("dmh-analyst", Role.METRICS_CONSUMER)


def with_duplicates(events: list[IntegrationEvent], share: float, seed: int) -> list[Any]:
    """The same events again (same id, later offset), as a retrying producer would send them."""
    rng = random.Random(seed)
    stream = list(events)
    for event in rng.sample(events, int(len(events) * share)):
        stream.insert(rng.randrange(len(stream) + 1), event)
    return stream


async def send_all(probe: KafkaProbe, events: list[IntegrationEvent]) -> None:
    for event in events:
        await probe.send(
            type(event).topic(), event.model_dump_json().encode(), key=event.kafka_key()
        )


def comparable(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "referrals": {
            k: metrics["referrals"][k]
            for k in ("total", "people", "by_source", "by_presenting_need")
        },
        "follow_ups": {k: metrics["follow_ups"][k] for k in ("scheduled", "due")},
        "trainings": metrics["trainings"],
    }


async def window_metrics(client: AsyncClient, stream: Stream) -> dict[str, Any]:
    response = await client.get(
        "/api/v1/metrics/statewide",
        headers=ANALYST,
        params={"start": stream.window_start.isoformat(), "end": stream.window_end.isoformat()},
    )
    assert response.status_code == 200, response.text
    return comparable(response.json())


async def test_views_equal_distinct_events_with_duplicates_and_restarts(
    kafka_bootstrap: str, mongo_uri: str, kafka_probe: KafkaProbe
) -> None:
    stream = make_stream(referrals=400, seed=random.randrange(10**9))
    add_trainings(stream, sessions=15, seed=7)
    sent = with_duplicates(stream.events, share=0.05, seed=11)
    settings = ReportingSettings(**infra_settings(kafka_bootstrap, mongo_uri))
    half = len(sent) // 2

    await send_all(kafka_probe, sent[:half])
    async with running_app(build(settings)):
        pass  # started and stopped mid-stream: whatever it committed, it had written
    await send_all(kafka_probe, sent[half:])
    async with running_app(build(settings)) as client:

        async def caught_up() -> bool:
            return await window_metrics(client, stream) == stream.expected()

        await eventually(caught_up, timeout=90, interval=0.5)


async def test_metrics_need_a_reader_role_and_a_sane_window(
    kafka_bootstrap: str, mongo_uri: str
) -> None:
    settings = ReportingSettings(**infra_settings(kafka_bootstrap, mongo_uri))
    async with running_app(build(settings)) as client:
        url = "/api/v1/metrics/statewide"
        assert (await client.get(url)).status_code == 401
        assert (await client.get(url, headers=bearer("l", Role.LIAISON))).status_code == 403
        naive = await client.get(url, headers=ANALYST, params={"start": "2018-01-01T00:00:00"})
        assert naive.status_code == 422
        backwards = await client.get(
            url,
            headers=ANALYST,
            params={"start": "2018-02-01T00:00:00Z", "end": "2018-01-01T00:00:00Z"},
        )
        assert backwards.status_code == 422
