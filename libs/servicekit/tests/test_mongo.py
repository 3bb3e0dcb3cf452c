"""The MongoDB helpers on the real local database."""

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_servicekit.mongo import (
    COUNTED_EXACTLY_UP_TO,
    IDS_CHUNK,
    delete_by_ids,
    estimated_count,
    find_by_ids,
    insert_new,
)
from cmhl_servicekit.testing import eventually

pytestmark = pytest.mark.integration


async def test_a_gauge_count_is_exact_while_small_and_close_beyond(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Exact up to COUNTED_EXACTLY_UP_TO (a fresh table has no statistics yet), the statistics'
    estimate beyond it, never less than what was counted; a collection not yet made holds 0."""
    timers = mongo_db["timers"]
    assert await estimated_count(timers) == 0
    await timers.insert_many({"_id": f"t-{n}"} for n in range(7))
    assert await estimated_count(timers) == 7
    await timers.insert_many({"_id": f"u-{n}"} for n in range(3 * COUNTED_EXACTLY_UP_TO))
    held = 3 * COUNTED_EXACTLY_UP_TO + 7
    assert COUNTED_EXACTLY_UP_TO <= await estimated_count(timers) <= held

    async def close_to_what_is_held() -> bool:
        # PostgreSQL's autovacuum analyses the table within seconds (the stack's settings).
        return abs(await estimated_count(timers) - held) <= held // 10

    await eventually(close_to_what_is_held)


async def test_reads_and_deletes_by_id_cover_every_chunk(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """More ids than one statement takes: every stored one is found (with the projection) and
    deleted; an id not stored is simply absent."""
    things = mongo_db["things"]
    stored = [f"t-{n}" for n in range(IDS_CHUNK + 5)]
    await things.insert_many([{"_id": i, "n": 1, "big": "x"} for i in stored])
    found = await find_by_ids(things, [*stored, "missing"], {"n": 1})
    assert sorted(found) == sorted(stored)
    assert found["t-0"] == {"_id": "t-0", "n": 1}
    await delete_by_ids(things, stored[1:])
    assert [d["_id"] async for d in things.find({})] == ["t-0"]


async def test_insert_new_keeps_what_was_there_and_inserts_the_rest(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Keyed inserts are how the services stay idempotent: over several of the database's
    batches, each key already taken is returned and keeps its document, every other is stored,
    and running the same inserts again stores nothing twice."""
    claims = mongo_db["claims"]
    taken = {f"c-{n}" for n in range(0, 250, 3)}
    await claims.insert_many([{"_id": key, "owner": "earlier"} for key in sorted(taken)])
    documents = [{"_id": f"c-{n}", "owner": "now"} for n in range(250)]
    assert await insert_new(claims, documents) == taken
    owners = {d["_id"]: d["owner"] async for d in claims.find({})}
    assert len(owners) == 250
    assert {key for key, owner in owners.items() if owner == "earlier"} == taken
    assert await insert_new(claims, documents) == {d["_id"] for d in documents}
    assert await claims.count_documents({}) == 250
