"""The follow-up service's reads are served by indexes on the real database, with thousands of
other rows beside the ones asked for: the due-timer scan and a liaison's lists by state."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_followup.adapters.mongo import (
    FOLLOW_UPS,
    TIMERS,
    MongoFollowUpRepository,
    ensure_indexes,
)
from cmhl_followup.application.ports import FollowUpQuery
from cmhl_followup.domain.policy import State
from cmhl_servicekit.outbox import Outbox
from cmhl_servicekit.testing import ReadRecorder, assert_reads_use_indexes

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
OTHERS = 3_000


async def test_due_scan_and_liaison_lists_use_indexes(
    recorded_db: tuple[AsyncDatabase[dict[str, Any]], ReadRecorder],
) -> None:
    db, recorder = recorded_db
    await ensure_indexes(db)
    # Timers still to come and other liaisons' follow-ups: what a whole history leaves behind.
    await db[TIMERS].insert_many(
        {
            "_id": f"f{n}|due",
            "follow_up_id": f"f{n}",
            "stage": "due",
            "fire_at": NOW + timedelta(hours=n + 1),
            "created_at": NOW,
        }
        for n in range(OTHERS)
    )
    await db[FOLLOW_UPS].insert_many(
        {
            "_id": f"f{n}",
            "liaison_id": f"liaison-{n % 30 + 2:02d}",
            "status": "scheduled",
            "due_at": NOW + timedelta(hours=n - OTHERS // 2),
            "overdue_at": NOW + timedelta(hours=n - OTHERS // 2 + 72),
        }
        for n in range(OTHERS)
    )
    repository = MongoFollowUpRepository(db, Outbox(db, lambda: None))
    recorder.reads.clear()

    assert await repository.due_timers(NOW, limit=100) == []
    for state in (None, *State):
        await repository.list_for_liaison(FollowUpQuery.for_state("liaison-01", state, NOW, 50))
    await assert_reads_use_indexes(db, recorder.reads)
    assert len(recorder.reads) == 2 + len(State)
