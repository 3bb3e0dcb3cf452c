"""A placement on the real stack: request -> ranked facilities -> calls -> placed -> events,
with a stale facility ranked below a fresh one, privacy of requests and the audit trail."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from cmhl_contracts import PlacementAttemptedV1, PlacementCompletedV1, PlacementRequestedV1
from cmhl_contracts.placement import AttemptResult
from cmhl_placement.bootstrap import build
from cmhl_placement.config import PlacementSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.testing import KafkaProbe, bearer, running_app

from ..conftest import REFERRAL_URL, ReferralDesk, a_past_day, key_of

pytestmark = pytest.mark.integration

LIAISON = bearer("liaison-32", Role.LIAISON, cmhc_id="cmhc-02")
OTHER_LIAISON = bearer("liaison-33", Role.LIAISON, cmhc_id="cmhc-02")
SUPERVISOR = bearer("sup-02", Role.SUPERVISOR, cmhc_id="cmhc-02")
FRESH = "fac-jackson-prairie"  # Kansas City, ~110 miles from Columbia
NEAR_STALE = "fac-boone-riverbend"  # Columbia itself


async def audit_entries(
    mongo_uri: str, settings: PlacementSettings, record: str
) -> list[dict[str, Any]]:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        audit = mongo[settings.audit_database]["audit_log"]
        entries: list[dict[str, Any]] = await audit.find({"record": record}).to_list(None)
        return entries
    finally:
        await mongo.close()


async def test_request_ranks_attempts_and_places_and_publishes_each_step(
    placement_settings: PlacementSettings,
    kafka_probe: KafkaProbe,
    mongo_uri: str,
    referrals: ReferralDesk,
) -> None:
    clock = AdjustableClock(a_past_day())
    app = build(placement_settings, clock=clock, referral_client=referrals.client)
    async with running_app(app) as client:
        clock.advance(timedelta(hours=13))  # every seeded number is now stale
        fresh = await client.put(
            f"/api/v1/facilities/{FRESH}/availability",
            json={"units": [{"unit_type": "adult_acute", "available": 2}]},
            headers=key_of(FRESH),
        )
        assert fresh.status_code == 200, fresh.text
        detained = clock.now() - timedelta(hours=20)
        body: dict[str, Any] = {
            "referral_id": await referrals.referral_of(LIAISON),
            "detention_started_at": detained.isoformat(),
            "age_group": "adult",
            "needs": ["aggression"],
            "county_fips": "29019",
        }
        future = body | {"detention_started_at": (clock.now() + timedelta(hours=1)).isoformat()}
        refused = await client.post("/api/v1/placement-requests", json=future, headers=LIAISON)
        assert refused.status_code == 422
        assert "future" in refused.json()["detail"]

        # Only for a referral the caller may see there: another liaison's, or one never made,
        # is not found, and the attempt is audited as denied.
        stranger = await client.post("/api/v1/placement-requests", json=body, headers=OTHER_LIAISON)
        assert (stranger.status_code, stranger.json()["detail"]) == (404, "referral not found")
        made_up = body | {"referral_id": str(uuid.uuid4())}
        nowhere = await client.post("/api/v1/placement-requests", json=made_up, headers=LIAISON)
        assert nowhere.status_code == 404
        # The person comes from the referral, not from the caller.
        forged = await client.post(
            "/api/v1/placement-requests", json=body | {"person_id": "f" * 32}, headers=LIAISON
        )
        assert forged.status_code == 422

        opened = await client.post("/api/v1/placement-requests", json=body, headers=LIAISON)
        assert opened.status_code == 201, opened.text
        request = opened.json()
        url = f"/api/v1/placement-requests/{request['request_id']}"
        assert request["clock"]["hours_elapsed"] == 20
        assert request["clock"]["hours_remaining"] == 76
        ranked = [(c["facility_id"], c["tier"]) for c in request["candidates"]]
        # The fresh facility 110 miles away comes before the stale one in the same county;
        # Ozark Hills excludes aggression, Capitol Region takes no holds, Northland only youth.
        assert ranked[0] == (FRESH, "fresh_beds")
        assert ranked[1] == (NEAR_STALE, "stale")
        assert {f for f, _ in ranked} == {
            FRESH,
            NEAR_STALE,
            "fac-stl-gateway",
            "fac-capegirardeau-bluffs",
        }

        assert (await client.get(url, headers=OTHER_LIAISON)).status_code == 404
        assert (await client.get(url, headers=SUPERVISOR)).status_code == 200
        mine = await client.get("/api/v1/placement-requests", headers=LIAISON)
        assert [r["request_id"] for r in mine.json()["data"]] == [request["request_id"]]
        theirs = await client.get("/api/v1/placement-requests", headers=OTHER_LIAISON)
        assert theirs.json()["count"] == 0

        async def attempt(facility: str, result: str, **extra: str) -> Any:
            clock.advance(timedelta(minutes=20))
            return await client.post(
                f"{url}/attempts",
                json={"facility_id": facility, "result": result, **extra},
                headers=LIAISON,
            )

        assert (await attempt(NEAR_STALE, "no_capacity")).status_code == 201
        assert (await attempt("fac-stl-gateway", "other")).status_code == 422  # needs a reason
        assert (await attempt("fac-nowhere", "no_answer")).status_code == 422
        assert (
            await attempt("fac-stl-gateway", "other", reason_code="bed-hold-expired")
        ).status_code == 201
        early = await client.post(
            f"{url}/completion", json={"outcome": "placed", "facility_id": FRESH}, headers=LIAISON
        )
        assert early.status_code == 422
        assert "no accepted attempt" in early.json()["detail"]
        accepted = await attempt(FRESH, "accepted")
        assert accepted.json()["facilities_contacted"] == 3
        assert [c["contacted"] for c in accepted.json()["candidates"][:2]] == [True, True]
        placed = await client.post(
            f"{url}/completion", json={"outcome": "placed", "facility_id": FRESH}, headers=LIAISON
        )
        assert placed.status_code == 200, placed.text
        assert placed.json()["status"] == "placed"
        assert placed.json()["candidates"] == []
        assert (await attempt(FRESH, "accepted")).status_code == 409  # the search is over

        key = request["request_id"].encode()
        records = await kafka_probe.collect(
            [
                PlacementRequestedV1.topic(),
                PlacementAttemptedV1.topic(),
                PlacementCompletedV1.topic(),
            ],
            lambda r: r.key == key,
            expect=5,
            settle=2.0,
        )

    by_topic: dict[str, list[bytes]] = {}
    for r in records:
        by_topic.setdefault(r.topic, []).append(r.value)
    requested = PlacementRequestedV1.model_validate_json(by_topic[PlacementRequestedV1.topic()][0])
    assert requested.deadline_at == detained + timedelta(hours=96)
    attempts = sorted(
        (
            PlacementAttemptedV1.model_validate_json(v)
            for v in by_topic[PlacementAttemptedV1.topic()]
        ),
        key=lambda e: e.sequence,
    )
    assert [(a.facility_id, a.result) for a in attempts] == [
        (NEAR_STALE, AttemptResult.NO_CAPACITY),
        ("fac-stl-gateway", AttemptResult.OTHER),
        (FRESH, AttemptResult.ACCEPTED),
    ]
    (done,) = [
        PlacementCompletedV1.model_validate_json(v) for v in by_topic[PlacementCompletedV1.topic()]
    ]
    assert (done.outcome, done.facility_id, done.attempts, done.facilities_contacted) == (
        "placed",
        FRESH,
        3,
        3,
    )
    assert done.hours_from_detention == 21.67  # 20 h before the request, 5 calls 20 min apart
    assert done.out_of_region is True
    assert done.cmhc_region == "cmhc-02"

    entries = await audit_entries(
        mongo_uri, placement_settings, f"placement_request/{request['request_id']}"
    )
    seen = {(e["actor"], e["action"], e["outcome"]) for e in entries}
    assert ("liaison-33", "read", "denied") in seen
    assert ("liaison-32", "open", "created") in seen
    assert ("liaison-32", "attempt", "changed") in seen
    assert ("liaison-32", "complete", "changed") in seen
    person = (
        await referrals.client.get(
            f"{REFERRAL_URL}/api/v1/referrals/{body['referral_id']}", headers=LIAISON
        )
    ).json()["person_id"]
    assert all(e["person_ids"] == [person] for e in entries)
    assert {e["service"] for e in entries} == {"placement"}
    denied = await audit_entries(mongo_uri, placement_settings, f"referral/{body['referral_id']}")
    assert {(e["actor"], e["action"], e["outcome"]) for e in denied} >= {
        ("liaison-33", "open", "denied")
    }
