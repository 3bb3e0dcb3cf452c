"""Consultations and barriers on the real stack: rules, idempotent records, who may record and
list them, the audit of records tied to a person, and their events on Kafka."""

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from httpx import AsyncClient
from pymongo import AsyncMongoClient

from cmhl_contracts import BarrierRecordedV1, ConsultationRecordedV1
from cmhl_referral.bootstrap import build
from cmhl_referral.config import ReferralSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import KafkaProbe, bearer, running_app

pytestmark = pytest.mark.integration

LIAISON = bearer("liaison-41", Role.LIAISON, cmhc_id="cmhc-41")
OTHER_LIAISON = bearer("liaison-42", Role.LIAISON, cmhc_id="cmhc-41")
SUPERVISOR = bearer("sup-41", Role.SUPERVISOR, cmhc_id="cmhc-41")
OTHER_SUPERVISOR = bearer("sup-43", Role.SUPERVISOR, cmhc_id="cmhc-43")
ADMIN = bearer("admin-41", Role.PROGRAM_ADMIN)
METRICS = bearer("dmh-41", Role.METRICS_CONSUMER)
# A recent program day: records are taken up to 60 days after the day they happened.
DAY = datetime.now(ZoneInfo("America/Chicago")).date() - timedelta(days=3)


def consultation(**overrides: Any) -> dict[str, Any]:
    return {
        "county_fips": "29019",
        "occurred_on": DAY.isoformat(),
        "asked_by": "court",
        "topic": "detention_process",
    } | overrides


async def _detail(client: AsyncClient, url: str, body: dict[str, Any]) -> str:
    answer = await client.post(url, json=body, headers=LIAISON)
    assert answer.status_code == 422, answer.text
    return json.dumps(answer.json()["detail"])


async def test_consultations_are_recorded_once_listed_by_scope_and_published(
    referral_settings: ReferralSettings, kafka_probe: KafkaProbe
) -> None:
    url = "/api/v1/consultations"
    async with running_app(build(referral_settings), from_now=True) as client:
        key = {"Idempotency-Key": f"c-{uuid.uuid4().hex}"}
        first = await client.post(url, json=consultation(), headers=LIAISON | key)
        assert first.status_code == 201, first.text
        body = first.json()
        assert set(body) == {
            "id",
            "county_fips",
            "asked_by",
            "topic",
            "referral_id",
            "occurred_on",
            "recorded_by",
            "recorded_at",
        }
        assert body["recorded_by"] == "liaison-41"
        assert body["referral_id"] is None
        retried = await client.post(url, json=consultation(), headers=LIAISON | key)
        assert retried.status_code == 200
        assert retried.json() == body
        reused = await client.post(url, json=consultation(topic="resources"), headers=LIAISON | key)
        assert reused.status_code == 409
        assert "Idempotency-Key was used before" in reused.json()["detail"]

        # Each rule broken is named.
        future = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
        assert "future" in await _detail(client, url, consultation(occurred_on=future))
        too_late = (DAY - timedelta(days=90)).isoformat()
        assert "last 60 days" in await _detail(client, url, consultation(occurred_on=too_late))
        assert "Missouri county" in await _detail(client, url, consultation(county_fips="29999"))
        assert "topic" in await _detail(client, url, consultation(topic="gossip"))
        assert "asked_by" in await _detail(client, url, consultation(asked_by="neighbour"))
        # No free text about anyone: an unknown field is refused, not stored.
        assert "note" in await _detail(client, url, consultation(note="she said ..."))
        unknown = consultation(referral_id=str(uuid.uuid4()))
        assert (await client.post(url, json=unknown, headers=LIAISON)).status_code == 404

        # Who may record.
        assert (await client.post(url, json=consultation())).status_code == 401
        for refused in (METRICS, ADMIN):
            assert (await client.post(url, json=consultation(), headers=refused)).status_code == 403
        for who in (OTHER_LIAISON, OTHER_SUPERVISOR):
            made = await client.post(url, json=consultation(asked_by="sheriff"), headers=who)
            assert made.status_code == 201

        async def seen(headers: Any, **params: Any) -> list[str]:
            answer = await client.get(url, headers=headers, params=params)
            assert answer.status_code == 200, answer.text
            return sorted(item["recorded_by"] for item in answer.json()["items"])

        assert await seen(LIAISON) == ["liaison-41"]
        assert await seen(SUPERVISOR) == ["liaison-41", "liaison-42"]
        assert await seen(OTHER_SUPERVISOR) == ["sup-43"]
        assert await seen(ADMIN) == ["liaison-41", "liaison-42", "sup-43"]
        window = {"from": DAY.isoformat(), "to": DAY.isoformat(), "county_fips": "29019"}
        assert await seen(ADMIN, **window) == ["liaison-41", "liaison-42", "sup-43"]
        later = {"from": (DAY + timedelta(days=1)).isoformat()}
        assert await seen(ADMIN, **later) == []
        assert await seen(ADMIN, county_fips="29510") == []
        assert (await client.get(url, headers=METRICS)).status_code == 403
        backwards = {"from": DAY.isoformat(), "to": (DAY - timedelta(days=1)).isoformat()}
        assert (await client.get(url, headers=ADMIN, params=backwards)).status_code == 422

        # Pages never skip or repeat.
        pages: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await client.get(url, headers=ADMIN, params=params)).json()
            pages += [item["id"] for item in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert len(pages) == len(set(pages)) == 3

    published = await kafka_probe.collect(
        [ConsultationRecordedV1.topic()],
        lambda r: json.loads(r.value)["consultation_id"] == body["id"],
        expect=1,
        settle=2.0,
    )
    [record] = published
    event = ConsultationRecordedV1.model_validate_json(record.value)
    assert record.key == body["id"].encode()
    assert (event.county_fips, event.question_topic.value, event.occurred_on) == (
        "29019",
        "detention_process",
        DAY,
    )


async def test_barriers_follow_their_referral_and_each_access_is_audited(
    referral_settings: ReferralSettings,
    referral_body: Callable[..., dict[str, Any]],
    mongo_uri: str,
    kafka_probe: KafkaProbe,
) -> None:
    url = "/api/v1/barriers"
    async with running_app(build(referral_settings), from_now=True) as client:
        created = await client.post(
            "/api/v1/referrals", json=referral_body(county_fips="29095"), headers=LIAISON
        )
        assert created.status_code == 201, created.text
        referral_id = created.json()["referral_id"]
        on_referral = {"kind": "no_bed", "occurred_on": DAY.isoformat(), "referral_id": referral_id}

        recorded = await client.post(url, json=on_referral, headers=LIAISON)
        assert recorded.status_code == 201, recorded.text
        barrier = recorded.json()
        assert barrier["county_fips"] == "29095"
        assert barrier["referral_id"] == referral_id
        assert set(barrier) == {
            "id",
            "kind",
            "county_fips",
            "referral_id",
            "occurred_on",
            "recorded_by",
            "recorded_at",
        }
        stranger = await client.post(url, json=on_referral, headers=OTHER_LIAISON)
        assert stranger.status_code == 404
        both = on_referral | {"county_fips": "29095"}
        assert "not both" in await _detail(client, url, both)
        neither = {"kind": "no_bed", "occurred_on": DAY.isoformat()}
        assert "needs one of them" in await _detail(client, url, neither)
        assert "kind" in await _detail(client, url, on_referral | {"kind": "bad_weather"})
        county_wide = {
            "kind": "no_transport",
            "occurred_on": DAY.isoformat(),
            "county_fips": "29095",
        }
        assert (await client.post(url, json=county_wide, headers=SUPERVISOR)).status_code == 201
        assert (await client.post(url, json=county_wide, headers=ADMIN)).status_code == 403

        by_referral = await client.get(url, params={"referral_id": referral_id}, headers=LIAISON)
        assert by_referral.status_code == 200
        assert [b["id"] for b in by_referral.json()["items"]] == [barrier["id"]]
        hidden = await client.get(url, params={"referral_id": referral_id}, headers=OTHER_LIAISON)
        assert hidden.status_code == 404
        county = await client.get(url, params={"county_fips": "29095"}, headers=SUPERVISOR)
        assert {b["kind"] for b in county.json()["items"]} == {"no_bed", "no_transport"}
        own = await client.get(url, params={"county_fips": "29095"}, headers=OTHER_LIAISON)
        assert own.json()["items"] == []
        admin = await client.get(url, params={"county_fips": "29095"}, headers=ADMIN)
        assert len(admin.json()["items"]) == 2
        assert (await client.get(url, headers=LIAISON)).status_code == 422

    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        entries = (
            await mongo[referral_settings.audit_database]["audit_log"]
            .find(
                {"referral_id": referral_id, "action": {"$ne": "create"}},
                {"_id": 0, "actor": 1, "action": 1, "outcome": 1, "record": 1},
            )
            .to_list(None)
        )
    finally:
        await mongo.close()
    assert sorted((e["actor"], e["action"], e["outcome"], e["record"]) for e in entries) == sorted(
        [
            ("liaison-41", "record_barrier", "allowed", f"referral/{referral_id}"),
            ("liaison-42", "record_barrier", "denied", f"referral/{referral_id}"),
            ("liaison-41", "list_barriers", "allowed", f"referral/{referral_id}"),
            ("liaison-41", "list_barriers", "allowed", f"barrier/{barrier['id']}"),
            ("liaison-42", "list_barriers", "denied", f"referral/{referral_id}"),
            # Reading the county's barriers reads the one tied to the person's referral too.
            ("sup-41", "list_barriers", "allowed", f"barrier/{barrier['id']}"),
            ("admin-41", "list_barriers", "allowed", f"barrier/{barrier['id']}"),
        ]
    )
    [record] = await kafka_probe.collect(
        [BarrierRecordedV1.topic()],
        lambda r: json.loads(r.value)["barrier_id"] == barrier["id"],
        expect=1,
        settle=1.0,
    )
    event = BarrierRecordedV1.model_validate_json(record.value)
    assert (event.kind.value, event.county_fips, str(event.referral_id)) == (
        "no_bed",
        "29095",
        referral_id,
    )
