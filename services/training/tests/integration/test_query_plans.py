"""The training service's reads are served by indexes on the real database, with thousands of
other rows beside the ones asked for: a trainer's and a CMHC's sessions, an officer's sessions."""

from datetime import date, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_servicekit.outbox import Outbox
from cmhl_servicekit.testing import ReadRecorder, assert_reads_use_indexes
from cmhl_training.adapters.mongo import (
    OFFICER_SESSIONS,
    SESSIONS,
    MongoOfficerLedger,
    MongoSessionRepository,
    ensure_indexes,
)

pytestmark = pytest.mark.integration

OTHERS = 3_000


async def test_session_lists_and_officer_records_use_indexes(
    recorded_db: tuple[AsyncDatabase[dict[str, Any]], ReadRecorder],
) -> None:
    db, recorder = recorded_db
    await ensure_indexes(db)
    await db[SESSIONS].insert_many(
        {
            "_id": f"s{n}",
            "trainer_liaison_id": f"liaison-{n % 30 + 2:02d}",
            "trainer_cmhc_id": f"cmhc-{n % 24 + 2:02d}",
            "held_on": (date(2018, 1, 1) + timedelta(days=n % 700)).isoformat(),
        }
        for n in range(OTHERS)
    )
    await db[OFFICER_SESSIONS].insert_many(
        {"_id": f"o{n}|s{n}", "officer_id": f"o{n}", "session_id": f"s{n}"} for n in range(OTHERS)
    )
    sessions = MongoSessionRepository(db, Outbox(db, lambda: None))
    recorder.reads.clear()

    assert await sessions.of_trainer("liaison-01", 50) == []
    assert await sessions.of_cmhc("cmhc-01", 50) == []
    assert await MongoOfficerLedger(db).sessions_of("o-nobody") == []
    await assert_reads_use_indexes(db, recorder.reads)
    assert len(recorder.reads) == 3
