"""The local stack's FerretDB serves `_id` lookups from its index, as MongoDB does
(deploy/local/ferretdb/patches.toml): the services' guarded updates (`{"_id": x, "version": n}`)
and deletes by id would otherwise scan whole collections, and every figure in
docs/benchmarks.md would measure that scan."""

from typing import Any

import pytest
from pymongo import DeleteOne
from pymongo.asynchronous.database import AsyncDatabase

pytestmark = pytest.mark.integration


async def plan(db: AsyncDatabase[dict[str, Any]], command: dict[str, Any]) -> str:
    explained = await db.command("explain", command)
    if "ferretdbVersion" not in explained.get("serverInfo", {}):
        pytest.skip("the patches concern FerretDB; MongoDB plans `_id` lookups by itself")
    return " ".join(explained["queryPlanner"]["Plan"])


@pytest.mark.parametrize(
    "filter_",
    [{"_id": "doc-7"}, {"_id": "doc-7", "version": 7}],
    ids=["_id alone", "_id with a guard"],
)
async def test_lookups_by_id_use_the_index(
    mongo_db: AsyncDatabase[dict[str, Any]], filter_: dict[str, Any]
) -> None:
    docs = mongo_db["docs"]
    await docs.insert_many([{"_id": f"doc-{n}", "version": n} for n in range(20)])
    # FerretDB explains only reads; its update and delete run the same query first.
    for command in (
        {"find": "docs", "filter": filter_},
        {"aggregate": "docs", "pipeline": [{"$match": filter_}], "cursor": {}},
    ):
        assert "USING INDEX docs_" in await plan(mongo_db, command), command
    # The guard still decides: a stale version matches nothing.
    stale = await docs.update_one({"_id": "doc-7", "version": 6}, {"$set": {"seen": True}})
    assert stale.matched_count == 0
    fresh = await docs.update_one(filter_, {"$set": {"seen": True}})
    assert fresh.matched_count == 1
    await docs.bulk_write([DeleteOne({"_id": "doc-7"}), DeleteOne({"_id": "doc-8"})])
    assert await docs.count_documents({}) == 18
