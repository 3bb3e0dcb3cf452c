"""The MongoDB client factory: one `AsyncMongoClient` per event loop, created in the lifespan."""

from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure

Document = dict[str, Any]
DUPLICATE_KEY = 11000
NAMESPACE_NOT_FOUND = 26


def make_mongo_client(uri: SecretStr, app_name: str) -> AsyncMongoClient[Document]:
    """`uri` names the service's own database user and password (ADR 0011), kept secret in
    settings and logs. tz_aware so datetimes read back are UTC-aware like the ones written."""
    return AsyncMongoClient(
        uri.get_secret_value(),
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        connect=False,
    )


def database(client: AsyncMongoClient[Document], name: str) -> AsyncDatabase[Document]:
    return client[name]


async def ping(client: AsyncMongoClient[Document]) -> None:
    await client.admin.command("ping")


# Ids per read or delete by `_id`: a relay's page, a due scan's batch or an import's batch fits
# in one.
IDS_CHUNK = 1_000


async def find_by_ids(
    collection: AsyncCollection[Document], ids: Sequence[Any], projection: Document
) -> dict[Any, Document]:
    """The documents stored under those `_id`s, by `_id`: a chunk of ids per read (`$in` on
    `_id` is one index look-up per id, on MongoDB and on the local database alike)."""
    found: dict[Any, Document] = {}
    for start in range(0, len(ids), IDS_CHUNK):
        chunk = {"_id": {"$in": list(ids[start : start + IDS_CHUNK])}}
        async for document in collection.find(chunk, projection):
            found[document["_id"]] = document
    return found


async def delete_by_ids(collection: AsyncCollection[Document], ids: Sequence[Any]) -> None:
    """Delete documents by `_id`, a chunk of ids per statement (as `find_by_ids`)."""
    for start in range(0, len(ids), IDS_CHUNK):
        await collection.delete_many({"_id": {"$in": list(ids[start : start + IDS_CHUNK])}})


async def insert_new(
    collection: AsyncCollection[Document], documents: Sequence[Document]
) -> set[Any]:
    """Insert documents in few round trips, keeping whichever of them exist already (a duplicate
    `_id` is not an error: keyed inserts are how the services stay idempotent); returns the
    `_id`s that were there before."""
    present: set[Any] = set()
    for start in range(0, len(documents), 5000):
        chunk = documents[start : start + 5000]
        try:
            await collection.insert_many(chunk, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details["writeErrors"]
            if any(e["code"] != DUPLICATE_KEY for e in errors):
                raise
            present.update(chunk[e["index"]]["_id"] for e in errors)
    return present


# Up to this many documents, a gauge's count is exact (a limited read of their ids).
COUNTED_EXACTLY_UP_TO = 1_000


async def estimated_count(collection: AsyncCollection[Document]) -> int:
    """How many documents a collection holds, without reading them all: exact up to
    COUNTED_EXACTLY_UP_TO (one limited read of ids), beyond that from its statistics. Those are
    `$collStats`' count, metadata on MongoDB and PostgreSQL's row estimate (kept by autovacuum)
    under FerretDB, whose `count` command (what `estimated_document_count` sends) reads and
    decodes every row. For gauges, probed on every scrape."""
    ids = await collection.find({}, {"_id": 1}, limit=COUNTED_EXACTLY_UP_TO).to_list(None)
    if len(ids) < COUNTED_EXACTLY_UP_TO:
        return len(ids)
    try:
        cursor = await collection.aggregate([{"$collStats": {"count": {}}}])
        shards = await cursor.to_list(None)
    except OperationFailure as exc:
        if exc.code == NAMESPACE_NOT_FOUND:
            return 0
        raise
    # One document per shard on a sharded cluster.
    return max(COUNTED_EXACTLY_UP_TO, sum(int(shard.get("count", 0)) for shard in shards))
