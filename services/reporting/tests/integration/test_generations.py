"""Which generations count unique people through anchors, on the real database: one this
version creates, never one an earlier version created (whose writers may still be running)."""

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_reporting.adapters.mongo import (
    GENERATIONS,
    SERVING,
    MongoViewStore,
    drop_generation,
    mark_people_anchored,
)
from cmhl_reporting.domain.projections import PersonSeen

pytestmark = pytest.mark.integration


async def test_a_new_store_counts_people_through_anchors(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    store = MongoViewStore(mongo_db)
    gen = await store.serving_generation()
    assert await store.people_anchored(gen)
    seen = PersonSeen("a" * 32, "2025-01-10", ("", "county=29019"))
    won = await store.claim(gen, {seen.anchor: "topic:0:7"}, False, {seen.anchor: seen})
    assert won == {seen.anchor}
    held = await store.people_seen(gen, [seen.anchor, PersonSeen("b" * 32, "", ()).anchor])
    assert held == {seen.anchor: ("2025-01-10", ("", "county=29019"))}

    await drop_generation(mongo_db, gen)
    assert not await MongoViewStore(mongo_db).people_anchored(gen)


async def test_a_generation_an_earlier_version_created_stays_unmarked(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    await mongo_db[GENERATIONS].insert_one({"_id": SERVING, "gen": 3})  # as it wrote it
    store = MongoViewStore(mongo_db)
    assert await store.serving_generation() == 3
    assert not await store.people_anchored(3)

    await mark_people_anchored(mongo_db, 4)  # what a rebuild by this version does first
    await mark_people_anchored(mongo_db, 4)  # a rebuild started again
    assert await MongoViewStore(mongo_db).people_anchored(4)
    assert not await MongoViewStore(mongo_db).people_anchored(3)
