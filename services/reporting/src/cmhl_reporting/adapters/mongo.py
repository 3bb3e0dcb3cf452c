"""MongoDB adapters: the fact store projections write to, and the aggregate queries on it."""

import contextlib
from collections import defaultdict
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from cmhl_reporting.domain.projections import (
    FOLLOW_UPS_COMPLETED,
    FOLLOW_UPS_DUE,
    FOLLOW_UPS_SCHEDULED,
    REFERRALS,
    TRAINING_SESSIONS,
    FactWrite,
)

Document = dict[str, Any]
DUPLICATE_KEY = 11000


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[REFERRALS].create_index("referred_at")
    await db[TRAINING_SESSIONS].create_index("held_at")


class MongoFactStore:
    """Writes facts as inserts keyed by natural id: a key written before is a duplicate event.

    Inserts, not upserts: FerretDB scans the collection for every update, so upserts slow down
    as the views grow, while an insert with a duplicate key is refused by the unique `_id`
    index at once, whichever replica or retry sends it."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def apply(self, writes: list[tuple[FactWrite, Document]]) -> None:
        """`writes` pairs each fact with where its event was read (topic, partition, offset)."""
        by_collection: dict[str, list[Document]] = defaultdict(list)
        revised: list[tuple[FactWrite, Document]] = []
        for write, source in writes:
            if write.revision is not None:
                revised.append((write, source))
            else:
                by_collection[write.collection].append(
                    write.fields | {"_id": write.key, "_source": source}
                )
        for collection, documents in by_collection.items():
            await self._insert_new(collection, documents)
        for write, source in revised:
            await self._apply_revision(write, source)

    async def _insert_new(self, collection: str, documents: list[Document]) -> None:
        try:
            await self._db[collection].insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            if any(e["code"] != DUPLICATE_KEY for e in exc.details["writeErrors"]):
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
