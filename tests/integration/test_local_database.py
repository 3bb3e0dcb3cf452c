"""The local stack's database serves the query shapes the services use from their indexes, as
MongoDB's planner does: FerretDB on PostgreSQL with the edits in deploy/local/ferretdb/patches.toml.
Without them every find, guarded update and delete by `_id`, and every caseload or due scan, reads
the whole table, and every figure in docs/benchmarks.md measures that scan. The same assertions
hold on MongoDB (no COLLSCAN), so the suite passes unchanged there."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure

from cmhl_servicekit.testing import assert_reads_use_indexes

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 30, tzinfo=UTC)
ROWS = 3_000


@pytest.fixture
async def docs(mongo_db: AsyncDatabase[dict[str, Any]]) -> AsyncDatabase[dict[str, Any]]:
    """Enough rows that a planner would rather scan than use an index that does not fit."""
    await mongo_db["docs"].create_index([("owner", 1), ("at", -1)])
    await mongo_db["docs"].create_index("due_at")
    await mongo_db["docs"].insert_many(
        {
            "_id": f"doc-{n}",
            "version": n,
            "owner": f"owner-{n % 30}",
            "state": "open" if n % 3 else "closed",
            "at": NOW - timedelta(minutes=n),
            "due_at": NOW + timedelta(hours=n + 1),
            "name": f"name-{n:05d}",
        }
        for n in range(ROWS)
    )
    return mongo_db


def both_ways(filter_: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
    """The filter as a find and as an aggregation's $match (count_documents' shape)."""
    return [
        {"find": "docs", "filter": filter_, **options},
        {"aggregate": "docs", "pipeline": [{"$match": filter_}], "cursor": {}},
    ]


@pytest.mark.parametrize(
    "filter_",
    [
        {"_id": "doc-7"},
        {"_id": "doc-7", "version": 7},
        {"owner": "owner-3"},
        {"owner": "owner-3", "state": "open"},
        {"owner": "owner-3", "at": {"$lt": NOW - timedelta(days=1)}},
        {"due_at": {"$lte": NOW}},
        {"due_at": {"$gt": NOW + timedelta(hours=ROWS - 5)}},
        {"_id": {"$in": ["doc-7", "doc-9", "doc-11"]}},
        {"owner": {"$in": ["owner-3", "owner-4"]}},
    ],
    ids=[
        "_id alone",
        "_id with a guard",
        "equality",
        "equality and another field",
        "equality and a range",
        "range up to now",
        "range from a time",
        "a list of ids",
        "a list of values",
    ],
)
async def test_query_shapes_use_an_index(
    docs: AsyncDatabase[dict[str, Any]], filter_: dict[str, Any]
) -> None:
    await assert_reads_use_indexes(docs, both_ways(filter_, sort={"at": -1}, limit=50))


async def test_pushed_down_filters_return_what_mongodb_would(
    docs: AsyncDatabase[dict[str, Any]],
) -> None:
    """A pushed-down filter is a prefilter the server checks again: arrays holding a matching
    element, other types and missing fields must come out exactly as MongoDB answers."""
    collection = docs["docs"]
    await collection.insert_many(
        [
            {"_id": "array", "owner": ["owner-3", "x"], "due_at": [NOW + timedelta(days=9), NOW]},
            {"_id": "number", "owner": 3, "due_at": 5},
            {"_id": "missing"},
            {"_id": "object", "owner": {"a": "owner-3"}, "due_at": {"a": NOW}},
        ]
    )

    async def ids(filter_: dict[str, Any]) -> set[str]:
        return {d["_id"] async for d in collection.find(filter_, {"_id": 1})}

    owners = await ids({"owner": "owner-3"})
    assert "array" in owners
    assert len(owners) == ROWS // 30 + 1
    assert await ids({"due_at": {"$lte": NOW}}) == {"array"}
    assert await ids({"due_at": {"$lt": 6}}) == {"number"}
    assert await ids({"name": {"$gte": "name-02998"}}) == {"doc-2998", "doc-2999"}
    assert await collection.count_documents({"owner": "owner-3", "state": "closed"}) == 100
    assert await ids({"_id": {"$in": ["array", "missing", "absent"]}}) == {"array", "missing"}
    listed = await ids({"owner": {"$in": ["owner-3", 3]}})
    assert {"array", "number"} <= listed
    assert len(listed) == ROWS // 30 + 2
    assert await ids({"due_at": {"$in": [NOW, 5]}}) == {"array", "number"}
    # A dotted path through an array of documents matches through any element, in every
    # command that filters (delete, update and count pass their filter down whole).
    await collection.insert_one({"_id": "nested", "items": [{"b": 5}, {"b": 6}]})
    counted = await docs.command("count", "docs", query={"items.b": {"$in": [6]}})
    assert counted["n"] == 1
    assert (await collection.update_many({"items.b": 6}, {"$set": {"seen": 1}})).matched_count == 1
    assert (await collection.delete_many({"items.b": {"$in": [6, 7]}})).deleted_count == 1
    # Lists that are not pushed down (a null matches a missing field) still answer as MongoDB.
    assert await ids({"owner": {"$in": [None]}}) == {"missing"}
    assert await ids({"owner": {"$in": []}}) == set()
    assert await collection.count_documents({"owner": "owner-3", "state": "open"}) == 0


async def test_guarded_updates_and_deletes_by_id(docs: AsyncDatabase[dict[str, Any]]) -> None:
    collection = docs["docs"]
    # The guard still decides: a stale version matches nothing.
    stale = await collection.update_one({"_id": "doc-7", "version": 6}, {"$set": {"seen": True}})
    assert stale.matched_count == 0
    fresh = await collection.update_one({"_id": "doc-7", "version": 7}, {"$set": {"seen": True}})
    assert fresh.matched_count == 1
    deleted = await collection.delete_many({"_id": {"$in": ["doc-7", "doc-8", "absent"]}})
    assert deleted.deleted_count == 2
    assert await collection.count_documents({}) == ROWS - 2


async def test_sorted_pages_are_what_mongodb_returns(docs: AsyncDatabase[dict[str, Any]]) -> None:
    """Sort and limit go to the database where that gives MongoDB's page, and the server falls
    back to sorting everything where it might not: missing fields sort first ascending and last
    descending, arrays sort by an element, and a page whose rows the re-check drops is refilled."""
    collection = docs["docs"]
    await collection.insert_many(
        [
            {"_id": "no-at", "owner": "owner-3"},
            {"_id": "null-at", "owner": "owner-3", "at": None},
            # Arrays that do not hold owner-3 pass the database's prefilter (arrays are kept for
            # the re-check) and sort before every date: the first page is all dropped rows.
            *(
                {"_id": f"arr-{n}", "owner": [f"x{n}"], "at": NOW + timedelta(days=n)}
                for n in range(60)
            ),
        ]
    )

    async def page(sort: list[tuple[str, int]], limit: int, **filter_: Any) -> list[str]:
        cursor = collection.find(filter_, {"_id": 1}, sort=sort or None, limit=limit)
        return [d["_id"] async for d in cursor]

    owned = [f"doc-{n}" for n in range(3, ROWS, 30)]  # newest first: doc-3 is the latest
    nulls = {"no-at", "null-at"}  # a missing field and null are equal in a sort
    assert await page([("at", -1)], 3, owner="owner-3") == owned[:3]
    ascending = await page([("at", 1)], 3, owner="owner-3")
    assert set(ascending[:2]) == nulls
    assert ascending[2] == owned[-1]
    assert set((await page([("at", -1)], 200, owner="owner-3"))[-2:]) == nulls
    assert await page([("at", -1), ("_id", -1)], 5, owner="owner-3", state="closed") == owned[:5]
    # An array sorts by its greatest element descending: it leads the page.
    latest = NOW + timedelta(days=999)
    await collection.insert_one({"_id": "many", "owner": "owner-3", "at": [latest, NOW]})
    assert await page([("at", -1)], 2, owner="owner-3") == ["many", owned[0]]
    # No sort: any matching rows, as many as asked.
    assert len(await page([], 7, owner="owner-3")) == 7
    due = collection.find({"due_at": {"$lte": NOW + timedelta(hours=3)}}).sort("due_at", 1)
    assert [d["_id"] async for d in due.limit(2)] == ["doc-0", "doc-1"]


async def test_many_concurrent_updates_finish(docs: AsyncDatabase[dict[str, Any]]) -> None:
    """More concurrent updates and findAndModify calls than the database user's pool has
    connections (25 on the local stack) all finish. FerretDB 1.24 as released held each
    update's read connection while it waited for a second one to write, so a burst like this
    one (a history import, an agency's batch) could take every connection and hang for good."""
    collection = docs["docs"]

    async def update(n: int) -> None:
        if n % 2:
            await collection.update_one(
                {"_id": f"doc-{n}", "owner": f"owner-{n % 30}"}, {"$inc": {"version": 1}}
            )
        else:
            await collection.find_one_and_update({"_id": f"doc-{n}"}, {"$inc": {"version": 1}})

    for _ in range(3):
        await asyncio.wait_for(asyncio.gather(*(update(n) for n in range(200))), timeout=60)
    ids = [f"doc-{n}" for n in range(200)]
    found = {d["_id"]: d["version"] async for d in collection.find({"_id": {"$in": ids}})}
    assert found == {f"doc-{n}": n + 3 for n in range(200)}


async def test_a_next_page_reads_a_page_not_the_whole_history(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """A caseload's next page continues strictly after the last row seen with an `$or` the
    database checks row by row; the rows it drops (the last row seen, its ties) used to make the
    local database read the liaison's whole history in Go, on every page after the first."""
    collection = mongo_db["pages"]
    await collection.create_index([("owner", 1), ("at", -1), ("_id", -1)])
    history = 20_000
    # Two referrals per minute: every page ends inside a tie on `at`.
    await collection.insert_many(
        {"_id": f"r-{n:05d}", "owner": "liaison-1", "at": NOW - timedelta(minutes=n // 2)}
        for n in range(history)
    )
    order = [("at", -1), ("_id", -1)]

    async def next_page(after: dict[str, Any]) -> list[dict[str, Any]]:
        selector = {
            "owner": "liaison-1",
            "at": {"$lte": after["at"]},
            "$or": [
                {"at": {"$lt": after["at"]}},
                {"at": after["at"], "_id": {"$lt": after["_id"]}},
            ],
        }
        return await collection.find(selector, limit=50).sort(order).to_list(None)

    started = time.perf_counter()
    everything = await collection.find({"owner": "liaison-1"}).sort(order).to_list(None)
    whole_history = time.perf_counter() - started
    first = await collection.find({"owner": "liaison-1"}, limit=50).sort(order).to_list(None)
    assert first == everything[:50]
    assert await next_page(first[-1]) == everything[50:100]
    assert await next_page(everything[9_949]) == everything[9_950:10_000]

    timings = []
    for _ in range(5):
        started = time.perf_counter()
        await next_page(everything[9_949])
        timings.append(time.perf_counter() - started)
    assert min(timings) * 5 < whole_history, (min(timings), whole_history)


async def test_an_unordered_insert_reports_each_duplicate_and_stores_the_rest(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """MongoDB's unordered insert: every document that breaks a unique index (the `_id`, a
    unique field, or an `_id` earlier in the same batch) gets a duplicate key error at its
    position, and every other one is stored. The local database inserts such a batch in one
    statement that skips the duplicates (patches.toml), so the positions it reports are tested
    here, across its batches of 100."""
    people = mongo_db["people"]
    await people.create_index("badge", unique=True)
    await people.insert_many([{"_id": "p-10", "badge": "b-10"}, {"_id": "x", "badge": "b-20"}])
    documents = [{"_id": f"p-{n}", "badge": f"b-{n}"} for n in range(230)]
    documents.insert(150, {"_id": "p-140", "badge": "another"})  # repeats an _id of its batch
    with pytest.raises(BulkWriteError) as raised:
        await people.insert_many(documents, ordered=False)
    errors = raised.value.details["writeErrors"]
    assert [(e["index"], e["code"]) for e in errors] == [(10, 11000), (20, 11000), (150, 11000)]
    assert raised.value.details["nInserted"] == len(documents) - 3
    stored = {d["_id"]: d["badge"] async for d in people.find({})}
    assert len(stored) == 230
    assert [stored["p-10"], stored["x"], stored["p-140"]] == ["b-10", "b-20", "b-140"]
    assert "p-20" not in stored
    # Two new documents of one batch that share a unique field: the second is refused.
    with pytest.raises(BulkWriteError) as raised:
        await people.insert_many(
            [{"_id": "r-1", "badge": "b-same"}, {"_id": "r-2", "badge": "b-same"}], ordered=False
        )
    assert [e["index"] for e in raised.value.details["writeErrors"]] == [1]
    # 0 and -0.0 are one `_id` to MongoDB: the second is a duplicate of the first.
    with pytest.raises(BulkWriteError) as raised:
        await people.insert_many(
            [{"_id": 0, "badge": "z-0"}, {"_id": -0.0, "badge": "z-1"}, {"_id": 1, "badge": "z-2"}],
            ordered=False,
        )
    assert [e["index"] for e in raised.value.details["writeErrors"]] == [1]
    assert raised.value.details["nInserted"] == 2
    # An ordered insert stops at its first duplicate, having stored what came before.
    with pytest.raises(BulkWriteError) as raised:
        await people.insert_many([{"_id": "q-1"}, {"_id": "p-3"}, {"_id": "q-2"}])
    assert [e["index"] for e in raised.value.details["writeErrors"]] == [1]
    assert await people.count_documents({"_id": {"$in": ["q-1", "q-2"]}}) == 1


async def test_an_update_of_many_documents_writes_each_as_mongodb_does(
    docs: AsyncDatabase[dict[str, Any]],
) -> None:
    """An update that matches many documents writes every one and counts them (the local
    database writes them in one statement, patches.toml); `_id`s of every kind are matched; an
    error at one document leaves the documents before it written and the rest not, as MongoDB's
    update stops at its first error."""
    collection = docs["docs"]
    owned = await collection.update_many(
        {"owner": "owner-3"}, {"$inc": {"version": 1000}, "$set": {"seen": True}}
    )
    assert (owned.matched_count, owned.modified_count) == (ROWS // 30, ROWS // 30)
    changed = {d["_id"]: d["version"] async for d in collection.find({"seen": True})}
    assert changed == {f"doc-{n}": n + 1000 for n in range(3, ROWS, 30)}
    # Entries pulled out of arrays, by documents whose `_id`s are of different kinds.
    ids: list[Any] = [7, "7", 7.5, NOW, {"at": 1, "n": "x"}]
    kinds = docs["kinds"]
    await kinds.insert_many({"_id": i, "outbox": [1, 2, 3]} for i in ids)
    pulled = await kinds.update_many({}, {"$pullAll": {"outbox": [1, 3]}})
    assert pulled.modified_count == len(ids)
    assert [d["outbox"] async for d in kinds.find({})] == [[2]] * len(ids)
    # Unchanged documents are matched, not modified.
    again = await kinds.update_many({}, {"$pullAll": {"outbox": [1, 3]}})
    assert (again.matched_count, again.modified_count) == (len(ids), 0)
    # A unique index broken at the second document: the first is written, the rest are not.
    badges = docs["badges"]
    await badges.create_index("badge", unique=True)
    await badges.insert_many({"_id": f"b-{n}", "badge": f"badge-{n}"} for n in range(5))
    with pytest.raises(OperationFailure):
        await badges.update_many({}, {"$set": {"badge": "shared"}})
    assert await badges.count_documents({"badge": "shared"}) == 1
    assert await badges.count_documents({}) == 5
    # In order, the first document takes the value the second still holds: refused there, as
    # MongoDB does, although the values would be unique once every document had moved on.
    seats = docs["seats"]
    await seats.create_index("seat", unique=True)
    await seats.insert_many({"_id": f"s-{n}", "seat": n} for n in range(5))
    with pytest.raises(OperationFailure):
        await seats.update_many({}, {"$inc": {"seat": 1}})
    assert sorted([d["seat"] async for d in seats.find({})]) == [0, 1, 2, 3, 4]
