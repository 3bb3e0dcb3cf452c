"""Referral service on the real stack: HTTP and agency intake in, events out through the outbox."""

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from cmhl_contracts import AgencyReferralSubmittedV1, ReferralCreatedV1
from cmhl_referral.bootstrap import build
from cmhl_referral.config import ReferralSettings
from cmhl_referral.domain.referral import referral_id_for
from cmhl_servicekit.auth import Role
from cmhl_servicekit.dlq import read_dead_letters, redrive
from cmhl_servicekit.testing import (
    KafkaProbe,
    bearer,
    eventually,
    kafka_principal_access,
    running_app,
)

pytestmark = pytest.mark.integration

LIAISON = bearer("liaison-07", Role.LIAISON, cmhc_id="cmhc-05")


def keyed(key: str) -> Callable[[Any], bool]:
    return lambda record: record.key == key.encode()


async def test_created_referral_is_stored_then_published_once(
    referral_settings: ReferralSettings,
    kafka_probe: KafkaProbe,
    referral_body: Callable[..., dict[str, Any]],
) -> None:
    async with running_app(build(referral_settings), from_now=True) as client:
        response = await client.post("/api/v1/referrals", json=referral_body(), headers=LIAISON)
        assert response.status_code == 201, response.text
        referral = response.json()
        assert referral["liaison_id"] == "liaison-07"
        assert referral["cmhc_id"] == "cmhc-05"

        records = await kafka_probe.collect(
            [ReferralCreatedV1.topic()], keyed(referral["referral_id"]), expect=1, settle=1.0
        )
    assert len(records) == 1
    event = ReferralCreatedV1.model_validate_json(records[0].value)
    assert str(event.referral_id) == referral["referral_id"]
    assert event.person_id == referral["person_id"]
    assert event.source == "municipal_police"
    # The event and its key carry the pseudonym only, never the name, birth date or narrative.
    raw = records[0].value.decode() + records[0].key.decode()
    for secret in ("Jane", "Roe", "1990-01-02", "station"):
        assert secret not in raw


async def test_resubmitted_agency_reference_returns_the_existing_referral(
    referral_settings: ReferralSettings, referral_body: Callable[..., dict[str, Any]]
) -> None:
    body = referral_body(agency_reference=f"R-{uuid.uuid4().hex[:8]}")
    async with running_app(build(referral_settings), from_now=True) as client:
        first = await client.post("/api/v1/referrals", json=body, headers=LIAISON)
        again = await client.post("/api/v1/referrals", json=body, headers=LIAISON)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()


async def test_repeat_involvement_is_flagged_within_90_days(
    referral_settings: ReferralSettings, referral_body: Callable[..., dict[str, Any]]
) -> None:
    person = {"given_name": "Rae", "family_name": "Moss", "birth_date": "1985-05-05"}
    async with running_app(build(referral_settings), from_now=True) as client:
        old = await client.post(
            "/api/v1/referrals",
            headers=LIAISON,
            json=referral_body(person=person, referred_at="2026-01-01T10:00:00Z"),
        )
        later = await client.post(
            "/api/v1/referrals",
            headers=LIAISON,
            json=referral_body(person=person, referred_at="2026-03-01T10:00:00Z"),
        )
        much_later = await client.post(
            "/api/v1/referrals",
            headers=LIAISON,
            json=referral_body(person=person, referred_at="2026-09-01T10:00:00Z"),
        )
    flags = [r.json()["repeat_involvement"] for r in (old, later, much_later)]
    assert flags == [False, True, False]
    assert old.json()["person_id"] == later.json()["person_id"]


async def test_access_is_limited_to_own_caseload_and_every_access_is_audited(
    referral_settings: ReferralSettings,
    referral_body: Callable[..., dict[str, Any]],
    mongo_uri: str,
) -> None:
    unknown = uuid.uuid4()
    async with running_app(build(referral_settings), from_now=True) as client:
        created = await client.post("/api/v1/referrals", json=referral_body(), headers=LIAISON)
        url = f"/api/v1/referrals/{created.json()['referral_id']}"
        answers = {
            "owner": await client.get(url, headers=LIAISON),
            "other liaison": await client.get(url, headers=bearer("liaison-08", Role.LIAISON)),
            "same cmhc supervisor": await client.get(
                url, headers=bearer("sup-1", Role.SUPERVISOR, cmhc_id="cmhc-05")
            ),
            "other cmhc supervisor": await client.get(
                url, headers=bearer("sup-2", Role.SUPERVISOR, cmhc_id="cmhc-09")
            ),
            "metrics consumer": await client.get(url, headers=bearer("dmh", Role.METRICS_CONSUMER)),
            "no token": await client.get(url),
            "unknown id": await client.get(f"/api/v1/referrals/{unknown}", headers=LIAISON),
        }
    codes = {who: response.status_code for who, response in answers.items()}
    assert codes == {
        "owner": 200,
        "other liaison": 404,
        "same cmhc supervisor": 200,
        "other cmhc supervisor": 404,
        "metrics consumer": 403,
        "no token": 401,
        "unknown id": 404,
    }
    assert answers["other liaison"].json() == answers["unknown id"].json()

    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        entries = (
            await mongo[referral_settings.audit_database]["audit_log"]
            .find(
                # Every service of the test run appends to this audit database: only these two.
                {"referral_id": {"$in": [created.json()["referral_id"], str(unknown)]}},
                {"_id": 0, "actor": 1, "action": 1, "outcome": 1},
            )
            .to_list(None)
        )
        stored = await mongo[referral_settings.mongo_database]["referrals"].find_one(
            {"_id": created.json()["referral_id"]}
        )
    finally:
        await mongo.close()
    assert {(e["actor"], e["action"], e["outcome"]) for e in entries} == {
        ("liaison-07", "create", "created"),
        ("liaison-07", "read", "allowed"),
        ("liaison-08", "read", "denied"),
        ("sup-1", "read", "allowed"),
        ("sup-2", "read", "denied"),
        ("liaison-07", "read", "not_found"),
    }
    # Clear identifiers and the narrative are sealed at rest.
    assert stored is not None
    assert "Jane" not in json.dumps(stored, default=str)
    assert "station" not in json.dumps(stored, default=str)


def agency_submission(reference: str, **overrides: Any) -> AgencyReferralSubmittedV1:
    fields: dict[str, Any] = {
        "agency": {"agency_id": "greene-so", "source": "sheriff"},
        "agency_reference": reference,
        "county_fips": "29077",
        "primary_need": "behavioral_needs",
        "person_location": "community",
        "person": {"given_name": "Sam", "family_name": "Poe", "birth_date": "1979-03-04"},
        "referred_at": datetime.now(UTC),
    } | overrides
    return AgencyReferralSubmittedV1.create(
        about=(reference,), producer="greene-rms", correlation_id=reference, **fields
    )


async def test_agency_intake_is_idempotent_and_dead_letters_bad_messages(
    referral_settings: ReferralSettings, kafka_probe: KafkaProbe, mongo_uri: str
) -> None:
    run = uuid.uuid4().hex[:8]
    first = agency_submission(f"A-{run}-1")
    second = agency_submission(f"A-{run}-2")
    # Well-formed, but against a rule the service checks: a referral date two days ahead.
    future = agency_submission(f"A-{run}-3", referred_at=datetime.now(UTC) + timedelta(days=2))
    topic = AgencyReferralSubmittedV1.topic()
    bad_key = f"greene-so:BAD-{run}".encode()
    async with running_app(build(referral_settings), from_now=True):
        # Everything on one partition (one key) so "the next message" is really after the bad one.
        key = first.kafka_key()
        await kafka_probe.send(topic, first.model_dump_json().encode(), key=key)
        await kafka_probe.send(topic, first.model_dump_json().encode(), key=key)  # a retry
        await kafka_probe.send(topic, b'{"agency": "not json at all', key=key)
        invalid = json.loads(second.model_dump_json()) | {"county_fips": "99999"}
        await kafka_probe.send(topic, json.dumps(invalid).encode(), key=bad_key)
        await kafka_probe.send(topic, future.model_dump_json().encode(), key=key)
        await kafka_probe.send(topic, second.model_dump_json().encode(), key=key)

        async with stored_referrals(mongo_uri, referral_settings) as referrals:
            await eventually(lambda: _count(referrals, run, 2), timeout=60)
            dead = await kafka_probe.collect(
                [f"{topic}.dlq"],
                lambda r: (
                    r.key in (key, bad_key)
                    and dict(r.headers).get("dlq-original-topic") == topic.encode()
                ),
                expect=3,
                settle=1.0,
            )
            created_keys = {
                str(referral_id_for("greene-so", s.agency_reference)).encode()
                for s in (first, second)
            }
            created = await kafka_probe.collect(
                [ReferralCreatedV1.topic()],
                lambda r: r.key in created_keys,
                expect=2,
                timeout=30,
                settle=2.0,
            )
            assert await referrals.count_documents({"agency_reference": {"$regex": run}}) == 2
        # An operator lists the dead letters and re-drives one: it is read again (and, still
        # invalid, dead-lettered again with its reason), while the listing names no person.
        letters = await read_dead_letters(kafka_probe.access, topic)
        ours = [d for d in letters if d.key == bad_key]
        assert ours
        assert all("county_fips" in d.headers["dlq-reason"] for d in ours)
        await redrive(kafka_probe.access, topic, {(ours[0].partition, ours[0].offset)})
        again = await kafka_probe.collect(
            [f"{topic}.dlq"], lambda r: r.key == bad_key, expect=len(ours) + 1, settle=1.0
        )
        assert len(again) == len(ours) + 1
    reasons = sorted(dict(record.headers)["dlq-reason"].decode() for record in dead)
    assert len(reasons) == 3
    assert any("county_fips" in reason for reason in reasons)
    assert any("json" in reason.lower() for reason in reasons)
    assert "referred_at is in the future" in reasons
    assert all("Sam" not in reason and "Poe" not in reason for reason in reasons)
    # Dead letters keep no person: the garbled record (which cannot be told apart) not at all,
    # the invalid one without `person` and `narrative`, but with whom to ask to send it again.
    for letter in dead:
        assert b"Sam" not in letter.value
        assert b"Poe" not in letter.value
    removed = {dict(r.headers)["dlq-removed"]: r.value for r in dead if r.key == key}
    assert removed[b"value"] == b""
    kept_by_reference = {
        json.loads(r.value)["agency_reference"]: json.loads(r.value)
        for r in dead
        if dict(r.headers)["dlq-removed"] == b"narrative,person"
    }
    assert set(kept_by_reference) == {second.agency_reference, future.agency_reference}
    assert all("person" not in kept for kept in kept_by_reference.values())
    assert len(created) == 2


async def test_agency_intake_creates_people_concurrently_and_each_person_in_order(
    referral_settings: ReferralSettings, kafka_probe: KafkaProbe, mongo_uri: str
) -> None:
    """One burst of 12 people's submissions, 3 each, lands in shared batches: the intake
    creates different people's at once, yet every person's are applied in order, so the repeat
    flags (2+ referrals within 90 days) are those of the referral dates."""
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    days_ago = [200, 150, 10]  # the second is 50 days after the first, the third 140 days later
    topic = AgencyReferralSubmittedV1.topic()
    async with running_app(build(referral_settings), from_now=True):
        for n in range(12):
            person = {
                "given_name": "Lee",
                "family_name": f"Burst{run}{n}",
                "birth_date": "1990-01-01",
            }
            for visit, days in enumerate(days_ago):
                submission = agency_submission(
                    f"B-{run}-{n}-{visit}", person=person, referred_at=now - timedelta(days=days)
                )
                # One person's submissions share a partition, as an agency's would by person.
                key = f"greene-so:{run}-{n}".encode()
                await kafka_probe.send(topic, submission.model_dump_json().encode(), key=key)
        async with stored_referrals(mongo_uri, referral_settings) as referrals:
            await eventually(lambda: _count(referrals, run, 36), timeout=90)
            stored = await referrals.find(
                {"agency_reference": {"$regex": run}},
                {"agency_reference": 1, "repeat_involvement": 1, "person_id": 1},
            ).to_list(None)
    flags = {doc["agency_reference"]: doc["repeat_involvement"] for doc in stored}
    for n in range(12):
        assert [flags[f"B-{run}-{n}-{visit}"] for visit in range(3)] == [False, True, False]
    assert len({doc["person_id"] for doc in stored}) == 12


@contextlib.asynccontextmanager
async def stored_referrals(
    mongo_uri: str, settings: ReferralSettings
) -> AsyncIterator[AsyncCollection[dict[str, Any]]]:
    """The service's own referral documents, read behind its back to check what it stored."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        yield mongo[settings.mongo_database]["referrals"]
    finally:
        await mongo.close()


async def _count(collection: Any, run: str, expected: int) -> bool:
    count: int = await collection.count_documents({"agency_reference": {"$regex": run}})
    return count == expected


async def test_an_agency_on_kafka_submits_only_in_its_own_name(
    referral_settings: ReferralSettings, kafka_probe: KafkaProbe, mongo_uri: str
) -> None:
    """Its own topic, which only its principal may write (ADR 0010), says which agency sent a
    submission: one there naming another agency is dead-lettered with the rule, not created."""
    run = uuid.uuid4().hex[:8]
    settings = referral_settings.model_copy(update={"kafka_feedback_agencies": ["columbia-pd"]})
    own_topic = AgencyReferralSubmittedV1.agency_topic("columbia-pd")
    agency = kafka_principal_access(kafka_probe.bootstrap, "agency-columbia-pd")
    columbia = {"agency_id": "columbia-pd", "source": "municipal_police"}
    honest = agency_submission(f"C-{run}-1", agency=columbia, county_fips="29019")
    forged = agency_submission(f"C-{run}-2")  # names greene-so
    async with running_app(build(settings), from_now=True):
        producer = AIOKafkaProducer(**agency.client_options(), acks="all")
        await producer.start()
        try:
            for submission in (forged, honest):
                await producer.send_and_wait(
                    own_topic, submission.model_dump_json().encode(), key=submission.kafka_key()
                )
            # Nor may it write the shared topic, or another agency's.
            for elsewhere in (
                AgencyReferralSubmittedV1.topic(),
                AgencyReferralSubmittedV1.agency_topic("greene-so"),
            ):
                with pytest.raises(TopicAuthorizationFailedError):
                    await producer.send_and_wait(elsewhere, honest.model_dump_json().encode())
        finally:
            await producer.stop()
        async with stored_referrals(mongo_uri, settings) as referrals:
            await eventually(lambda: _count(referrals, run, 1), timeout=60)
            dead = await kafka_probe.collect(
                [f"{own_topic}.dlq"], lambda r: r.key == forged.kafka_key(), expect=1, settle=2.0
            )
            stored = await referrals.find_one({"agency_reference": {"$regex": run}})
    assert stored is not None
    assert stored["agency_id"] == "columbia-pd"
    assert len(dead) == 1
    reason = dict(dead[0].headers)["dlq-reason"].decode()
    assert reason.startswith("agency_mismatch")
    assert "greene-so" in reason
    assert b"Sam" not in dead[0].value  # the dead letter keeps no person
