"""The placement service's reads are served by indexes on the real database, with thousands of
other rows beside the ones asked for: a liaison's and a CMHC's requests, the timer scan, and the
registry's lists of one county's or one region's facilities."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_placement.adapters.mongo import (
    FACILITIES,
    REQUESTS,
    MongoFacilityRepository,
    MongoRequestRepository,
    MongoTimerStore,
    ensure_indexes,
)
from cmhl_servicekit.outbox import Outbox
from cmhl_servicekit.testing import ReadRecorder, assert_reads_use_indexes
from cmhl_servicekit.timers import Timer

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
OTHERS = 3_000


async def test_request_lists_and_the_timer_scan_use_indexes(
    recorded_db: tuple[AsyncDatabase[dict[str, Any]], ReadRecorder],
) -> None:
    db, recorder = recorded_db
    await ensure_indexes(db)
    await db[REQUESTS].insert_many(
        {
            "_id": f"r{n}",
            "liaison_id": f"liaison-{n % 30 + 2:02d}",
            "cmhc_id": f"cmhc-{n % 24 + 2:02d}",
            "requested_at": NOW - timedelta(minutes=n),
        }
        for n in range(OTHERS)
    )
    outbox = Outbox(db, lambda: None)
    timers = MongoTimerStore(db, outbox)
    await timers.schedule(
        [Timer(f"t{n}", "stale", f"f{n}", NOW + timedelta(hours=n + 1), NOW) for n in range(OTHERS)]
    )
    requests = MongoRequestRepository(db, outbox)
    recorder.reads.clear()

    assert await requests.find(liaison_id="liaison-01", cmhc_id=None, limit=50) == []
    assert await requests.find(liaison_id=None, cmhc_id="cmhc-01", limit=50) == []
    one_referral = str(uuid.uuid4())
    assert (
        await requests.find(
            liaison_id="liaison-01", cmhc_id=None, limit=50, referral_id=one_referral
        )
        == []
    )
    assert await timers.due(NOW, limit=200) == []
    await assert_reads_use_indexes(db, recorder.reads)
    assert len(recorder.reads) == 4


async def test_the_registry_lists_by_county_and_region_use_indexes(
    recorded_db: tuple[AsyncDatabase[dict[str, Any]], ReadRecorder],
) -> None:
    db, recorder = recorded_db
    await ensure_indexes(db)
    await db[FACILITIES].insert_many(
        {
            "_id": f"fac-{n:05d}",
            "county_fips": f"29{n % 229 + 1:03d}",
            "cmhc_region": f"cmhc-{n % 24 + 2:02d}",
            "name": f"Hospital {n}",
            "phone": "573-555-0100",
            "accepts": [],
            "involuntary_holds": True,
            "medical_clearance_required": False,
            "exclusions": [],
            "units": [],
            "sequence": 1,
            "version": 1,
        }
        for n in range(OTHERS)
    )
    facilities = MongoFacilityRepository(db, Outbox(db, lambda: None))
    recorder.reads.clear()

    assert await facilities.find(county_fips="29510", cmhc_region=None, limit=500) == []
    assert await facilities.find(county_fips=None, cmhc_region="cmhc-01", limit=500) == []
    # The whole registry, a page in id order: the primary key's index, not a scan and a sort.
    first = await facilities.find(county_fips=None, cmhc_region=None, limit=50)
    assert [f.facility_id for f in first] == [f"fac-{n:05d}" for n in range(50)]
    await assert_reads_use_indexes(db, recorder.reads)
    assert len(recorder.reads) == 3
