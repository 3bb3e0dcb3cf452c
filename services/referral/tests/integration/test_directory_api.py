"""The treatment directory on the real stack: HSDS JSON and CSV packages imported by a program
admin (a re-import stores nothing twice, a bad record is reported by its rule), searched by
county and type, and a referral's connection to a service recorded, refused, audited and
published once."""

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from cmhl_contracts.directory import ReferralConnectedToServiceV1, ServiceType
from cmhl_referral.adapters.directory_mongo import (
    DIRECTORY_SEARCH_ENTRIES,
    DIRECTORY_SERVICES,
    MongoDirectory,
    ensure_directory_indexes,
)
from cmhl_referral.application.directory import Stored
from cmhl_referral.application.hsds import read_service
from cmhl_referral.bootstrap import build
from cmhl_referral.config import ReferralSettings
from cmhl_referral.domain.directory import search_key
from cmhl_servicekit.auth import Role
from cmhl_servicekit.outbox import Outbox
from cmhl_servicekit.testing import KafkaProbe, bearer, running_app

from ..unit.test_directory import csv_package, hsds_service

pytestmark = pytest.mark.integration

ADMIN = bearer("admin-7", Role.PROGRAM_ADMIN)
LIAISON = bearer("liaison-21", Role.LIAISON, cmhc_id="cmhc-17")
SUPERVISOR = bearer("sup-17", Role.SUPERVISOR, cmhc_id="cmhc-17")
OTHER_CMHC_LIAISON = bearer("liaison-30", Role.LIAISON, cmhc_id="cmhc-24")
METRICS = bearer("dmh-1", Role.METRICS_CONSUMER)
IMPORTS = "/api/v1/directory/imports"
SEARCH = "/api/v1/directory/services"


def package(*records: dict[str, Any]) -> dict[str, Any]:
    return {"system": "mo-directory", "records": list(records)}


async def test_import_json_and_csv_reimport_and_search(referral_settings: ReferralSettings) -> None:
    crisis = hsds_service("svc-crisis", name="Crisis Center")
    outpatient = hsds_service(
        "svc-outpatient",
        name="Outpatient Clinic",
        service_areas=[],
        attributes=[{"taxonomy_term": {"name": "Outpatient Mental Health"}}],
    )
    bad = hsds_service("svc-bad", service_areas=[{"name": "Jane Roe"}])
    async with running_app(build(referral_settings)) as client:
        refused = await client.post(IMPORTS, json=package(crisis), headers=LIAISON)
        assert refused.status_code == 403

        first = await client.post(IMPORTS, json=package(crisis, outpatient, bad), headers=ADMIN)
        assert first.status_code == 200, first.text
        answer = first.json()
        assert (answer["imported"], answer["updated"], answer["already_imported"]) == (2, 0, 0)
        assert [(r["index"], r["record_id"]) for r in answer["rejected"]] == [(2, "svc-bad")]
        assert "service_areas.0: names no Missouri county" in answer["rejected"][0]["reason"]
        assert "Jane Roe" not in first.text

        changed = hsds_service("svc-outpatient", **{**outpatient, "name": "Outpatient Clinic East"})
        again = await client.post(IMPORTS, json=package(crisis, changed), headers=ADMIN)
        assert (again.json()["imported"], again.json()["updated"]) == (0, 1)
        assert again.json()["already_imported"] == 1

        zipped = await client.post(
            IMPORTS,
            data={"system": "mo-csv"},
            files={"file": ("hsds.zip", csv_package(), "application/zip")},
            headers=ADMIN,
        )
        assert zipped.status_code == 200, zipped.text
        assert zipped.json()["imported"] == 1
        rezipped = await client.post(
            IMPORTS,
            data={"system": "mo-csv"},
            files={"file": ("hsds.zip", csv_package(), "application/zip")},
            headers=ADMIN,
        )
        assert rezipped.json()["already_imported"] == 1
        not_zip = await client.post(
            IMPORTS,
            data={"system": "mo-csv"},
            files={"file": ("hsds.zip", b"Jane Roe,1990-01-02", "application/zip")},
            headers=ADMIN,
        )
        assert not_zip.status_code == 422
        assert "not a zip" in not_zip.text
        assert "Jane" not in not_zip.text

        jackson = await client.get(SEARCH, params={"county_fips": "29095"}, headers=LIAISON)
        assert jackson.status_code == 200
        assert [s["id"] for s in jackson.json()["items"]] == ["svc-crisis", "svc-outpatient"]
        item = jackson.json()["items"][0]
        assert set(item) == {
            "id",
            "name",
            "description",
            "organization",
            "service_types",
            "eligibility",
            "locations",
            "phones",
            "url",
        }
        assert item["organization"] == {"id": "org-1", "name": "Example Behavioral Health"}
        assert item["locations"][0]["county_fips"] == "29095"
        assert jackson.json()["items"][1]["name"] == "Outpatient Clinic East"

        # Clay County is served by the crisis center's service area only.
        clay_crisis = await client.get(
            SEARCH, params={"county_fips": "29047", "service_type": "crisis"}, headers=SUPERVISOR
        )
        assert [s["id"] for s in clay_crisis.json()["items"]] == ["svc-crisis"]
        boone = await client.get(
            SEARCH, params={"county_fips": "29019", "service_type": "substance_use"}, headers=ADMIN
        )
        assert [s["id"] for s in boone.json()["items"]] == ["svc-9"]

        page = await client.get(SEARCH, params={"limit": 1}, headers=LIAISON)
        seen = [s["id"] for s in page.json()["items"]]
        while cursor := page.json()["next_cursor"]:
            page = await client.get(SEARCH, params={"limit": 1, "cursor": cursor}, headers=LIAISON)
            seen += [s["id"] for s in page.json()["items"]]
        assert seen == ["svc-crisis", "svc-outpatient", "svc-9"]

        unknown_county = await client.get(SEARCH, params={"county_fips": "29999"}, headers=LIAISON)
        assert unknown_county.status_code == 422
        assert unknown_county.json()["detail"][0]["loc"] == ["query", "county_fips"]
        assert "not a Missouri county" in unknown_county.text
        unknown_type = await client.get(SEARCH, params={"service_type": "spa"}, headers=LIAISON)
        assert unknown_type.status_code == 422
        assert unknown_type.json()["detail"][0]["loc"] == ["query", "service_type"]
        assert (await client.get(SEARCH, headers=METRICS)).status_code == 403
        assert (await client.get(SEARCH)).status_code == 401

        one = await client.get(f"{SEARCH}/svc-crisis", headers=LIAISON)
        assert one.json() == item
        assert (await client.get(f"{SEARCH}/svc-none", headers=LIAISON)).status_code == 404


async def test_a_connection_is_recorded_once_refused_to_others_audited_and_published(
    referral_settings: ReferralSettings,
    referral_body: Callable[..., dict[str, Any]],
    kafka_probe: KafkaProbe,
    mongo_uri: str,
) -> None:
    async with running_app(build(referral_settings), from_now=True) as client:
        imported = await client.post(
            IMPORTS,
            json=package(
                hsds_service("svc-crisis"),
                hsds_service("svc-peer", name="Peer Support"),
                hsds_service("svc-closed", status="inactive"),
            ),
            headers=ADMIN,
        )
        assert imported.json()["imported"] == 3
        created = await client.post(
            "/api/v1/referrals",
            json=referral_body(agency_reference=f"DIR-{uuid.uuid4().hex[:8]}"),
            headers=LIAISON,
        )
        assert created.status_code == 201, created.text
        referral_id = created.json()["referral_id"]
        url = f"/api/v1/referrals/{referral_id}/connections"

        first = await client.post(url, json={"service_id": "svc-crisis"}, headers=LIAISON)
        assert first.status_code == 201, first.text
        assert first.json()["service_name"] == "Crisis Stabilization Center"
        assert first.json()["connected_by"] == "liaison-21"
        repeated = await client.post(url, json={"service_id": "svc-crisis"}, headers=LIAISON)
        assert repeated.status_code == 200
        assert repeated.json() == first.json()
        by_supervisor = await client.post(url, json={"service_id": "svc-peer"}, headers=SUPERVISOR)
        assert by_supervisor.status_code == 201

        unknown = await client.post(url, json={"service_id": "svc-none"}, headers=LIAISON)
        assert unknown.status_code == 422
        assert "service_id" in unknown.json()["detail"]
        inactive = await client.post(url, json={"service_id": "svc-closed"}, headers=LIAISON)
        assert inactive.status_code == 422
        stranger = await client.post(
            url, json={"service_id": "svc-crisis"}, headers=OTHER_CMHC_LIAISON
        )
        assert stranger.status_code == 404
        assert (
            await client.post(url, json={"service_id": "svc-crisis"}, headers=METRICS)
        ).status_code == 403
        assert (
            await client.post(
                f"/api/v1/referrals/{uuid.uuid4()}/connections",
                json={"service_id": "svc-crisis"},
                headers=LIAISON,
            )
        ).status_code == 404

        read = await client.get(f"/api/v1/referrals/{referral_id}", headers=LIAISON)
        connections = read.json()["connections"]
        assert [(c["service_id"], c["service_name"], c["connected_by"]) for c in connections] == [
            ("svc-crisis", "Crisis Stabilization Center", "liaison-21"),
            ("svc-peer", "Peer Support", "sup-17"),
        ]

        published = await kafka_probe.collect(
            [ReferralConnectedToServiceV1.topic()],
            lambda r: r.key == referral_id.encode(),
            expect=2,
            settle=1.5,
        )
    events = [ReferralConnectedToServiceV1.model_validate_json(r.value) for r in published]
    assert sorted(e.service_id for e in events) == ["svc-crisis", "svc-peer"]
    assert {e.person_id for e in events} == {created.json()["person_id"]}
    assert events[0].service_types == ["crisis", "peer_support"]
    assert events[0].county_fips == "29510"
    # No name or birth date travels in the event.
    assert all(b"Roe" not in r.value and b"1990" not in r.value for r in published)

    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        entries = (
            await mongo[referral_settings.audit_database]["audit_log"]
            .find(
                {"referral_id": referral_id, "action": "connect_service"},
                {"_id": 0, "actor": 1, "outcome": 1},
            )
            .to_list(None)
        )
    finally:
        await mongo.close()
    assert sorted((e["actor"], e["outcome"]) for e in entries) == [
        ("liaison-21", "changed"),
        ("liaison-21", "refused"),
        ("liaison-21", "refused"),
        ("liaison-21", "unchanged"),
        ("liaison-30", "denied"),
        ("sup-17", "changed"),
    ]


@pytest.fixture
async def directory_store(mongo_db: Any) -> tuple[MongoDirectory, Any]:
    """The directory's repository on a fresh database, and its search entries."""
    await ensure_directory_indexes(mongo_db)
    directory = MongoDirectory(mongo_db, Outbox(mongo_db, lambda: None))
    return directory, mongo_db[DIRECTORY_SEARCH_ENTRIES]


async def test_search_entries_follow_each_stored_version_and_an_import_cut_short_is_completed(
    directory_store: tuple[MongoDirectory, Any],
) -> None:
    """A search reads search entries, one per way of finding a service: a service that leaves a
    county, or stops being active, is no longer found there; an import cut short after storing
    the service (entries missing, or an older version's left) is completed by the next import."""
    directory, entries = directory_store

    async def found(county: str | None, kind: ServiceType | None = None) -> list[str]:
        return [s.id for s in await directory.search(search_key(county, kind), None, 25)]

    clay = read_service(hsds_service("svc-1"))  # Jackson (location) and Clay (service area)
    assert await directory.store(clay, "mo") is Stored.IMPORTED
    assert await found("29047") == ["svc-1"]
    assert await found("29095", ServiceType.CRISIS) == ["svc-1"]
    assert await entries.count_documents({"service_id": "svc-1"}) == len(clay.search_keys())

    jackson_only = read_service(hsds_service("svc-1", name="Crisis Center", service_areas=[]))
    assert await directory.store(jackson_only, "mo") is Stored.UPDATED
    assert await found("29047") == []
    [renamed] = await directory.search(search_key("29095", None), None, 25)
    assert renamed.name == "Crisis Center"
    assert await entries.count_documents({"service_id": "svc-1"}) == len(jackson_only.search_keys())

    # Cut short: the service stored, its entries lost, or an older version's entry left.
    await entries.delete_many({"service_id": "svc-1"})
    assert await found("29095") == []
    await entries.insert_one(
        {"_id": "29047|*|svc-1", "key": "29047|*", "service_id": "svc-1", "hash": "older"}
    )
    assert await directory.store(jackson_only, "mo") is Stored.UNCHANGED
    assert await found("29095") == ["svc-1"]
    assert await found("29047") == []

    closed = read_service(hsds_service("svc-1", name="Crisis Center", status="inactive"))
    assert await directory.store(closed, "mo") is Stored.UPDATED
    assert await found(None) == []
    assert await entries.count_documents({"service_id": "svc-1"}) == 0
    # A record another system holds is not touched, nor are its entries.
    assert await directory.store(clay, "elsewhere") is Stored.HELD_ELSEWHERE
    assert await found(None) == []


async def test_concurrent_imports_leave_the_entries_of_what_is_stored_and_old_services_get_them(
    directory_store: tuple[MongoDirectory, Any],
) -> None:
    """Imports of two versions of one service at once leave the search entries of the version
    stored, whichever finishes last; the same version imported twice at once stores it once
    without an error; services stored before search entries existed get them at start, once."""
    directory, entries = directory_store
    services = entries.database[DIRECTORY_SERVICES]
    clay = read_service(hsds_service("svc-1", name="Clay Crisis"))
    jackson = read_service(hsds_service("svc-1", name="Jackson Crisis", service_areas=[]))
    for _ in range(5):
        await asyncio.gather(directory.store(clay, "mo"), directory.store(jackson, "mo"))
        stored = await directory.get("svc-1")
        assert stored is not None
        found = await directory.search(search_key("29095", None), None, 25)
        assert [(s.id, s.name) for s in found] == [("svc-1", stored.name)]
        in_clay = [s.name for s in await directory.search(search_key("29047", None), None, 25)]
        assert in_clay == ([stored.name] if stored.name == "Clay Crisis" else [])
        keys = {e["key"] for e in await entries.find({"service_id": "svc-1"}).to_list(None)}
        assert keys == set((clay if stored.name == "Clay Crisis" else jackson).search_keys())
    twice = await asyncio.gather(*(directory.store(jackson, "mo") for _ in range(4)))
    assert set(twice) <= {Stored.UPDATED, Stored.UNCHANGED}

    # Stored before entries existed: none until the service starts (and only the first time).
    await services.insert_one((await services.find_one({"_id": "svc-1"})) | {"_id": "svc-old"})
    assert [s.id for s in await directory.search(search_key("29095", None), None, 25)] == ["svc-1"]
    assert await directory.index_unindexed() == 2
    found = await directory.search(search_key("29095", None), None, 25)
    assert [s.id for s in found] == ["svc-1", "svc-old"]
    assert await directory.index_unindexed() == 0
