"""The referral service's reads are served by indexes on the real database, at a size where a
planner would rather scan than use a useless index: caseload pages (liaison and supervisor, with
filters and a cursor), one referral, the person ledger and the accounting of disclosures."""

import os
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_contracts.registry import LiaisonStatus
from cmhl_contracts.vocabulary import PersonLocation, PresentingNeed, ReferralSource
from cmhl_referral.adapters.activity_mongo import (
    BARRIERS,
    CONSULTATIONS,
    MongoActivityRepository,
    day_start,
    ensure_activity_indexes,
)
from cmhl_referral.adapters.mongo import REFERRALS, MongoReferralRepository, ensure_indexes
from cmhl_referral.adapters.registry_mongo import MongoRegistryRepository
from cmhl_referral.application.activity import ActivityQuery
from cmhl_referral.application.commands import CreateReferral
from cmhl_referral.application.ports import CaseloadQuery
from cmhl_referral.application.registry import RegistryAssignments, RegistryService
from cmhl_referral.application.service import Actor, ReferralService
from cmhl_referral.domain.referral import Person
from cmhl_referral.domain.registry import UNASSIGNED, LiaisonTerms, Strategy
from cmhl_servicekit.audit import MongoAuditLog
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.crypto import FieldCipher
from cmhl_servicekit.outbox import Outbox
from cmhl_servicekit.testing import ReadRecorder, assert_reads_use_indexes

pytestmark = pytest.mark.integration

CHICAGO = ZoneInfo("America/Chicago")
NOW = datetime(2018, 9, 30, 15, tzinfo=UTC)
# Other liaisons' and CMHCs' referrals: enough rows that a sequential scan would cost more than
# an index, so a plan that scans means no index fits the query.
OTHERS = 3_000


def create(reference: str, given: str) -> CreateReferral:
    return CreateReferral(
        agency_id="stl-pd",
        source=ReferralSource.MUNICIPAL_POLICE,
        court_type=None,
        agency_reference=reference,
        officer_reference=None,
        county_fips="29510",
        primary_need=PresentingNeed.BEHAVIORAL_NEEDS,
        other_needs=[],
        person_location=PersonLocation.DETENTION,
        person=Person(given, "Plan", date(1980, 1, 1)),
        narrative="n",
        consent=None,
        referred_at=None,
        correlation_id="c",
    )


async def test_caseload_reads_and_lookups_use_indexes(
    recorded_db: tuple[AsyncDatabase[dict[str, Any]], ReadRecorder],
) -> None:
    db, recorder = recorded_db
    await ensure_indexes(db)
    await db[REFERRALS].insert_many(
        {
            "_id": str(uuid.uuid4()),
            "liaison_id": f"liaison-{n % 30 + 2:02d}",
            "cmhc_id": f"cmhc-{n % 24 + 2:02d}",
            "status": "received",
            "person_id": f"p{n}",
            "received_at": NOW - timedelta(minutes=n),
            "referred_at": NOW - timedelta(minutes=n),
        }
        for n in range(OTHERS)
    )
    audit = MongoAuditLog(db, "referral")
    await audit.ensure_indexes()
    repository = MongoReferralRepository(
        db, FieldCipher(os.urandom(32)), Outbox(db, lambda: None), search_key=b"k"
    )
    service = ReferralService(repository, audit, AdjustableClock(NOW), b"k", lambda: None, CHICAGO)
    liaison = Actor(Principal("liaison-01", frozenset({Role.LIAISON}), "cmhc-01"), None, None)
    created = [
        (await service.create(create(f"PLAN-{n}", f"Ana{n}"), liaison)).referral for n in range(5)
    ]
    recorder.reads.clear()

    first = await repository.find(CaseloadQuery(liaison_id="liaison-01", cmhc_id=None, limit=2))
    after = (first[-1].received_at, str(first[-1].referral_id))
    await repository.find(
        CaseloadQuery(liaison_id="liaison-01", cmhc_id=None, after=after, limit=2)
    )
    await repository.find(
        CaseloadQuery(
            liaison_id="liaison-01",
            cmhc_id=None,
            status="received",
            county_fips="29510",
            received_from=NOW - timedelta(days=30),
            received_to=NOW + timedelta(days=1),
        )
    )
    await repository.find(CaseloadQuery(liaison_id=None, cmhc_id="cmhc-01", status="received"))
    named = await repository.find(
        CaseloadQuery(liaison_id="liaison-01", cmhc_id=None, family_name="  plAN ")
    )
    nobody = await repository.find(
        CaseloadQuery(liaison_id=None, cmhc_id="cmhc-01", family_name="Plan-Other")
    )
    await repository.get(created[0].referral_id)
    many = await repository.get_many([created[1].referral_id, created[0].referral_id])
    assert [r.referral_id for r in many] == [created[1].referral_id, created[0].referral_id]
    await audit.for_person(created[0].person_id)
    await assert_reads_use_indexes(db, recorder.reads)
    # get_many is one `_id` list read; the accounting two (its entries, and whether any are
    # not filed yet).
    assert len(recorder.reads) == 10
    # The name search finds the caseload's referrals of that family name, any case or spacing.
    assert sorted(str(r.referral_id) for r in named) == sorted(str(r.referral_id) for r in created)
    assert nobody == []
    newest = sorted(created, key=lambda r: (r.received_at, str(r.referral_id)), reverse=True)
    assert [r.referral_id for r in first] == [r.referral_id for r in newest[:2]]


async def test_referrals_stored_before_the_name_search_get_their_key_once(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    await ensure_indexes(mongo_db)
    repository = MongoReferralRepository(
        mongo_db, FieldCipher(os.urandom(32)), Outbox(mongo_db, lambda: None), search_key=b"k"
    )
    audit = MongoAuditLog(mongo_db, "referral")
    service = ReferralService(repository, audit, AdjustableClock(NOW), b"k", lambda: None, CHICAGO)
    liaison = Actor(Principal("liaison-01", frozenset({Role.LIAISON}), "cmhc-01"), None, None)
    created = [
        (await service.create(create(f"OLD-{n}", f"Bo{n}"), liaison)).referral for n in (1, 2)
    ]
    # As stored before the name search existed.
    await mongo_db[REFERRALS].update_many({}, {"$unset": {"family_name_key": ""}})
    query = CaseloadQuery(liaison_id="liaison-01", cmhc_id=None, family_name="plan")
    assert await repository.find(query) == []

    assert await repository.key_family_names() == 2
    assert {r.referral_id for r in await repository.find(query)} == {r.referral_id for r in created}
    assert await repository.key_family_names() == 0  # done once, recorded


async def test_registry_reads_use_indexes(
    recorded_db: tuple[AsyncDatabase[dict[str, Any]], ReadRecorder],
) -> None:
    """Assignment's load counts, the unassigned list and count, and the registry's lookups by id.
    The whole registry (a few dozen CMHCs and liaisons) is read in full by design, so it is not
    among the reads checked."""
    db, recorder = recorded_db
    await ensure_indexes(db)
    await db[REFERRALS].insert_many(
        {
            "_id": str(uuid.uuid4()),
            "liaison_id": f"liaison-{n % 30 + 2:02d}" if n % 50 else UNASSIGNED,
            "cmhc_id": f"cmhc-{n % 24 + 2:02d}" if n % 50 else "cmhc-other",
            "status": "received" if n % 3 else "connected_to_treatment",
            "person_id": f"p{n}",
            "received_at": NOW - timedelta(minutes=n),
            "referred_at": NOW - timedelta(minutes=n),
        }
        for n in range(OTHERS)
    )
    outbox = Outbox(db, lambda: None)
    registry = MongoRegistryRepository(db, outbox)
    referrals = MongoReferralRepository(db, FieldCipher(os.urandom(32)), outbox, search_key=b"k")
    audit = MongoAuditLog(db, "referral")
    admin = RegistryService(registry, referrals, audit, AdjustableClock(NOW), lambda: None)
    program_admin = Principal("admin-1", frozenset({Role.PROGRAM_ADMIN}), None)
    # Cmhc-02 serves Boone and has no liaison yet; nobody serves St. Louis City.
    await admin.register_cmhc("cmhc-02", "Two", ["29019"], NOW.date(), program_admin, "c")
    await admin.register_cmhc("cmhc-03", "Three", ["29051"], NOW.date(), program_admin, "c")
    cole = LiaisonTerms(NOW.date(), "cmhc-03", LiaisonStatus.ACTIVE, frozenset())
    await admin.register_liaison("liaison-03", cole, program_admin, "c")
    assignments = RegistryAssignments(registry, Strategy.ROUND_ROBIN, CHICAGO)
    service = ReferralService(
        referrals, audit, AdjustableClock(NOW), b"k", lambda: None, CHICAGO, assignments=assignments
    )
    agency = Actor(None, "stl-pd", None)
    for n, county in enumerate(("29019", "29510")):
        await service.create(replace(create(f"GAP-{n}", f"Gap{n}"), county_fips=county), agency)
    recorder.reads.clear()

    loads = await registry.open_referrals(["liaison-02", "liaison-03"])
    assert loads == {"liaison-02": 0, "liaison-03": 100}  # liaison-02's are all closed
    assert await registry.unassigned_open() == 42
    await registry.cmhc("cmhc-02")
    await registry.liaison("liaison-03")
    assert await registry.next_ticket("cmhc-02") == 0
    supervisor = Principal("sup-02", frozenset({Role.SUPERVISOR}), "cmhc-02")
    listed = await admin.unassigned(supervisor, None)
    assert {r.assignment.cmhc_id for r in listed} == {"cmhc-02", UNASSIGNED}
    await assert_reads_use_indexes(db, recorder.reads)


async def test_directory_searches_and_connections_use_indexes(
    recorded_db: tuple[AsyncDatabase[dict[str, Any]], ReadRecorder],
) -> None:
    """A directory search (by county and type, by county, by type, all, a next page) is one
    equality on a search entry's scalar `key`, served by its index; a referral's connections by
    theirs."""
    from cmhl_contracts.directory import ServiceType
    from cmhl_referral.adapters.directory_mongo import (
        DIRECTORY_SEARCH_ENTRIES,
        REFERRAL_CONNECTIONS,
        MongoDirectory,
        ensure_directory_indexes,
    )
    from cmhl_referral.domain.directory import Connection, search_key

    from ..unit.test_directory import hsds_service

    db, recorder = recorded_db
    await ensure_directory_indexes(db)
    # Other counties' services and other referrals' connections.
    await db[DIRECTORY_SEARCH_ENTRIES].insert_many(
        {
            "_id": f"{key}|other-{n}",
            "key": key,
            "service_id": f"other-{n}",
            "sort_name": f"service {n:05d}",
            "hash": "h",
        }
        for n in range(OTHERS)
        for key in (f"29{n % 50 * 2 + 101:03d}|housing", f"29{n % 50 * 2 + 101:03d}|*")
    )
    await db[REFERRAL_CONNECTIONS].insert_many(
        {"_id": f"{uuid.uuid4()}|svc", "referral_id": str(uuid.uuid4()), "connected_at": NOW}
        for _ in range(OTHERS)
    )
    directory = MongoDirectory(db, Outbox(db, lambda: None))
    from cmhl_referral.application.hsds import read_service

    for n in range(3):
        await directory.store(read_service(hsds_service(f"svc-{n}", name=f"Crisis {n}")), "mo")
    referral_id = str(uuid.uuid4())
    await directory.add_connection(Connection(referral_id, "svc-0", "Crisis 0", NOW, "l-1"), [])
    recorder.reads.clear()

    first = await directory.search(search_key("29095", ServiceType.CRISIS), None, 2)
    assert [s.id for s in first] == ["svc-0", "svc-1"]
    following = await directory.search(
        search_key("29095", ServiceType.CRISIS), ("crisis 1", "svc-1"), 2
    )
    assert [s.id for s in following] == ["svc-2"]
    await directory.search(search_key("29095", None), None, 25)
    await directory.search(search_key(None, ServiceType.PEER_SUPPORT), None, 25)
    await directory.get("svc-1")
    assert [c.service_id for c in await directory.connections_of(referral_id)] == ["svc-0"]
    await directory.connection(referral_id, "svc-0")
    await assert_reads_use_indexes(db, recorder.reads)
    assert len(recorder.reads) == 7


async def test_consultation_and_barrier_listings_use_indexes(
    recorded_db: tuple[AsyncDatabase[dict[str, Any]], ReadRecorder],
) -> None:
    """Every scope of the listings (a liaison's own, a CMHC's, a county's or all for a program
    admin, a referral's barriers), with a window and a cursor, is an index range."""
    db, recorder = recorded_db
    await ensure_activity_indexes(db)
    start = date(2018, 1, 1)
    for collection in (CONSULTATIONS, BARRIERS):
        await db[collection].insert_many(
            {
                "_id": str(uuid.uuid4()),
                "county_fips": f"29{n % 115 * 2 + 1:03d}",
                "referral_id": str(uuid.uuid4()) if n % 2 else None,
                "occurred_on": day_start(start + timedelta(days=n % 700)),
                "recorded_by": f"liaison-{n % 30 + 1:02d}",
                "cmhc_id": f"cmhc-{n % 24 + 1:02d}",
                "recorded_at": NOW,
                "topic": "resources",
                "asked_by": "court",
                "kind": "no_bed",
            }
            for n in range(OTHERS)
        )
    some = await db[BARRIERS].find_one({"referral_id": {"$ne": None}})
    assert some is not None
    recorder.reads.clear()
    repository = MongoActivityRepository(db, Outbox(db, lambda: None))
    window = ActivityQuery(occurred_from=date(2018, 3, 1), occurred_to=date(2018, 6, 30))
    queries = [
        ActivityQuery(recorded_by="liaison-01", limit=5),
        replace(window, recorded_by="liaison-01", county_fips="29001"),
        replace(window, cmhc_id="cmhc-01"),
        ActivityQuery(county_fips="29001"),
        window,
    ]
    for query in queries:
        found = await repository.find_consultations(query)
        await repository.find_barriers(query)
        if len(found) == query.limit:
            last = found[-1]
            after = (last.occurred_on, str(last.consultation_id))
            await repository.find_consultations(replace(query, after=after))
    by_referral = await repository.find_barriers(
        ActivityQuery(referral_id=uuid.UUID(some["referral_id"]))
    )
    assert [str(b.barrier_id) for b in by_referral] == [some["_id"]]
    await assert_reads_use_indexes(db, recorder.reads)
