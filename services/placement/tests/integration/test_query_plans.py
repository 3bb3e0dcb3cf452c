"""The placement service's reads are served by indexes on the real database, with thousands of
other rows beside the ones asked for: a liaison's and a CMHC's requests, and the timer scan."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_placement.adapters.mongo import (
    REQUESTS,
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
