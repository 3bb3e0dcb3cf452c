"""The referral service's reads are served by indexes on the real database, at a size where a
planner would rather scan than use a useless index: caseload pages (liaison and supervisor, with
filters and a cursor), one referral, the person ledger and the accounting of disclosures."""

import os
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_contracts.vocabulary import PersonLocation, PresentingNeed, ReferralSource
from cmhl_referral.adapters.mongo import REFERRALS, MongoReferralRepository, ensure_indexes
from cmhl_referral.application.commands import CreateReferral
from cmhl_referral.application.ports import CaseloadQuery
from cmhl_referral.application.service import Actor, ReferralService
from cmhl_referral.domain.referral import Person
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
