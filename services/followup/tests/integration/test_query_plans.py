"""The follow-up service's reads are served by indexes on the real database, with thousands of
other rows beside the ones asked for: the due-timer scan and a liaison's lists by state."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_followup.adapters.mongo import (
    FOLLOW_UPS,
    MongoFollowUpRepository,
    ensure_indexes,
)
from cmhl_followup.application.ports import FollowUpQuery
from cmhl_followup.domain.policy import State
from cmhl_servicekit.outbox import Outbox
from cmhl_servicekit.testing import ReadRecorder, assert_reads_use_indexes
from cmhl_servicekit.timers import Timer

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
OTHERS = 3_000


async def test_due_scan_and_liaison_lists_use_indexes(
    recorded_db: tuple[AsyncDatabase[dict[str, Any]], ReadRecorder],
) -> None:
    db, recorder = recorded_db
    await ensure_indexes(db)
    # Timers still to come and other liaisons' follow-ups: what a whole history leaves behind.
    repository = MongoFollowUpRepository(db, Outbox(db, lambda: None))
    await repository.timers.schedule(
        [
            Timer(f"f{n}|due", "due", f"f{n}", NOW + timedelta(hours=n + 1), NOW)
            for n in range(OTHERS)
        ]
    )
    await db[FOLLOW_UPS].insert_many(
        {
            "_id": f"f{n}",
            "liaison_id": f"liaison-{n % 30 + 2:02d}",
            "cmhc_id": f"cmhc-{n % 24 + 2:02d}",
            "referral_id": f"r{n // 3}",
            "status": "scheduled",
            "due_at": NOW + timedelta(hours=n - OTHERS // 2),
            "overdue_at": NOW + timedelta(hours=n - OTHERS // 2 + 72),
        }
        for n in range(OTHERS)
    )
    recorder.reads.clear()

    assert await repository.timers.due(NOW, limit=100) == []
    for state in (None, *State):
        await repository.list_follow_ups(FollowUpQuery.for_state("liaison-01", state, NOW, 50))
    # A supervisor's CMHC, one referral's record, and the overview's liaison ids.
    overdue = FollowUpQuery.for_state(None, State.OVERDUE, NOW, 50)
    await repository.list_follow_ups(replace(overdue, cmhc_id="cmhc-01"))
    await repository.list_follow_ups(FollowUpQuery("liaison-01", None, 50, referral_id="r1"))
    await repository.liaisons_of(replace(overdue, cmhc_id="cmhc-01"))
    await assert_reads_use_indexes(db, recorder.reads)
    assert len(recorder.reads) == 5 + len(State)
