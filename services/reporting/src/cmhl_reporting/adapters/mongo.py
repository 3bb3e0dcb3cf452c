"""MongoDB adapters: the fact store projections write to, and the aggregate queries on it."""

import contextlib
from collections import defaultdict
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from cmhl_reporting.domain.projections import (
    FACT_COLLECTIONS,
    FOLLOW_UPS_COMPLETED,
    FOLLOW_UPS_DUE,
    FOLLOW_UPS_SCHEDULED,
    REFERRALS,
    TRAINING_SESSIONS,
    FactWrite,
)

Document = dict[str, Any]


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[REFERRALS].create_index("referred_at")
    await db[TRAINING_SESSIONS].create_index("held_at")


class MongoFactStore:
    """Writes facts with upserts keyed by natural id: idempotent under any redelivery."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def apply(self, writes: list[tuple[FactWrite, Document]]) -> None:
        """`writes` pairs each fact with where its event was read (topic, partition, offset)."""
        by_collection: dict[str, list[UpdateOne]] = defaultdict(list)
        revised: list[tuple[FactWrite, Document]] = []
        for write, source in writes:
            if write.revision is not None:
                revised.append((write, source))
                continue
            # $setOnInsert: the first application wins and later ones change nothing.
            by_collection[write.collection].append(
                UpdateOne(
                    {"_id": write.key},
                    {"$setOnInsert": write.fields | {"_source": source}},
                    upsert=True,
                )
            )
        for collection, operations in by_collection.items():
            await self._bulk(collection, operations)
        for write, source in revised:
            await self._apply_revision(write, source)

    async def _bulk(self, collection: str, operations: list[UpdateOne]) -> None:
        try:
            await self._db[collection].bulk_write(operations, ordered=True)
        except BulkWriteError as exc:
            # Two writers upserting one new key (a rebalance) give a duplicate-key error for the
            # loser; everything it wrote is identical, so apply the rest again.
            if any(e["code"] != 11000 for e in exc.details["writeErrors"]):
                raise
            for operation in operations:
                try:
                    await self._db[collection].bulk_write([operation])
                except BulkWriteError as single:
                    if any(e["code"] != 11000 for e in single.details["writeErrors"]):
                        raise

    async def _apply_revision(self, write: FactWrite, source: Document) -> None:
        """A higher revision replaces a lower one; an equal or older one changes nothing."""
        # A duplicate key means a same-or-newer revision is stored already.
        with contextlib.suppress(DuplicateKeyError):
            await self._db[write.collection].update_one(
                {"_id": write.key, "revision": {"$lt": write.revision}},
                {"$set": write.fields | {"revision": write.revision, "_source": source}},
                upsert=True,
            )


class MongoMetricsQueries:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def count(self, collection: str, match: Document | None = None) -> int:
        return await self._db[collection].count_documents(match or {})

    async def count_by(
        self,
        collection: str,
        field: str,
        match: Document | None = None,
    ) -> dict[str, int]:
        pipeline: list[Document] = [
            {"$match": match or {}},
            {"$group": {"_id": f"${field}", "n": {"$sum": 1}}},
        ]
        cursor = await self._db[collection].aggregate(pipeline)
        return {str(row["_id"]): int(row["n"]) async for row in cursor}

    async def count_distinct(
        self, collection: str, field: str, match: Document | None = None, unwind: bool = False
    ) -> int:
        pipeline: list[Document] = [{"$match": match or {}}]
        if unwind:
            pipeline.append({"$unwind": f"${field}"})
        pipeline += [{"$group": {"_id": f"${field}"}}, {"$count": "n"}]
        cursor = await self._db[collection].aggregate(pipeline)
        rows = await cursor.to_list(None)
        return int(rows[0]["n"]) if rows else 0

    async def statewide(self, start: datetime | None, end: datetime | None) -> Document:
        """Referrals and their follow-ups received in [start, end); trainings held in it."""
        bounds: Document = {**({"$gte": start} if start else {}), **({"$lt": end} if end else {})}
        referred = {"referred_at": bounds} if bounds else {}
        held = {"held_at": bounds} if bounds else {}
        return {
            "referrals": {
                "total": await self.count(REFERRALS, referred),
                "people": await self.count_distinct(REFERRALS, "person_id", referred),
                "repeat_involvement": await self.count(
                    REFERRALS, referred | {"repeat_involvement": True}
                ),
                "by_source": await self.count_by(REFERRALS, "source", referred),
                "by_presenting_need": await self.count_by(REFERRALS, "primary_need", referred),
            },
            "follow_ups": {
                "scheduled": await self.count(FOLLOW_UPS_SCHEDULED, referred),
                "due": await self.count(FOLLOW_UPS_DUE, referred),
                "completed": await self.count(FOLLOW_UPS_COMPLETED, referred),
            },
            "trainings": {
                "sessions": await self.count(TRAINING_SESSIONS, held),
                "officers_trained": await self.count_distinct(
                    TRAINING_SESSIONS, "officer_ids", held, unwind=True
                ),
            },
        }


async def drop_facts(db: AsyncDatabase[Document]) -> None:
    for collection in FACT_COLLECTIONS:
        await db[collection].drop()
