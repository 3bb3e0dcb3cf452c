"""The views' reader on the real database: training sessions are read again only after a write
changed them, so a refresh (twice a second under traffic) does not read every session ever held."""

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_reporting.adapters.mongo import MongoViewReader, MongoViewStore
from cmhl_reporting.domain.projections import TrainingFact
from cmhl_servicekit.testing import ReadRecorder

pytestmark = pytest.mark.integration


def session(n: int, revision: int = 1, officers: int = 2) -> TrainingFact:
    ids = tuple(f"o{n}-{k}" for k in range(officers))
    return TrainingFact(
        f"s{n}", revision, "cit", "29019", "boone-so", "2025-01-10", ids, ("boone-so",) * officers
    )


async def test_sessions_are_read_again_only_after_they_changed(
    recorded_db: tuple[AsyncDatabase[dict[str, Any]], ReadRecorder],
) -> None:
    db, recorder = recorded_db
    store = MongoViewStore(db)
    gen = await store.serving_generation()
    await store.save_trainings(gen, [session(n) for n in range(40)])
    # Refreshed by the test alone (no background refresh started by `current`).
    reader = MongoViewReader(db, min_interval=3600)

    def session_reads() -> list[dict[str, Any]]:
        """Reads of the sessions themselves (the change marker is looked up by `_id`)."""
        return [
            r
            for r in recorder.reads
            if str(r.get("find", "")).endswith("training_sessions")
            and r.get("filter") != {"_id": "~changed"}
        ]

    first = await reader.current()
    assert len(first.trainings) == 40
    recorder.reads.clear()
    for _ in range(3):
        await reader._refresh_now()
    assert session_reads() == []
    assert len((await reader.current()).trainings) == 40

    await store.save_trainings(gen, [session(7, revision=2, officers=5), session(40)])
    await reader._refresh_now()
    assert len(session_reads()) == 1
    trainings = {t.session_id: t for t in (await reader.current()).trainings}
    assert len(trainings) == 41
    assert len(trainings["s7"].officer_ids) == 5
