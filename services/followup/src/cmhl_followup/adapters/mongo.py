"""MongoDB adapter for follow-ups: durable timers, insert-only due claims, an embedded outbox.

FerretDB answers only `_id` lookups without scanning, and an update scans its collection, so the
hot paths here are inserts, `_id` lookups and deletes, plus one scan of `timers`, which holds
only the follow-ups not yet due and so stays small."""

import contextlib
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cmhl_contracts import FollowUpDueV1, FollowUpScheduledV1
from cmhl_servicekit.outbox import Outbox

Document = dict[str, Any]
FOLLOW_UPS = "follow_ups"
TIMERS = "timers"
DUE = "follow_ups_due"


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[FOLLOW_UPS].create_index([("liaison_id", 1), ("due_at", 1)])
    await db[TIMERS].create_index("due_at")


class MongoFollowUpRepository:
    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._follow_ups = db[FOLLOW_UPS]
        self._timers = db[TIMERS]
        self._due = db[DUE]
        self._outbox = outbox

    async def schedule(self, follow_ups: list[tuple[Document, FollowUpScheduledV1]]) -> int:
        """Inserts each follow-up with its scheduled event, its timer first: a timer whose
        follow-up was never written is dropped by the due scan."""
        created = 0
        for document, event in follow_ups:
            # Scheduled before: the insert below then finds the follow-up too.
            with contextlib.suppress(DuplicateKeyError):
                await self._timers.insert_one(
                    {
                        "_id": document["_id"],
                        "due_at": document["due_at"],
                        "created_at": event.occurred_at,
                    }
                )
            created += await self._outbox.insert(FOLLOW_UPS, document, [event])
        return created

    async def due_timers(self, now: datetime, limit: int) -> list[Document]:
        cursor = self._timers.find({"due_at": {"$lte": now}}, limit=limit).sort("due_at", 1)
        return await cursor.to_list(None)

    async def get(self, follow_up_id: str) -> Document | None:
        return await self._follow_ups.find_one({"_id": follow_up_id}, {"outbox": 0})

    async def claim_due(self, follow_up: Document, event: FollowUpDueV1) -> bool:
        """The due claim is an insert keyed by the follow-up: however many replicas race here,
        one claim (and one due event) is written; the others get a duplicate key."""
        claim = {
            "_id": follow_up["_id"],
            "referral_id": follow_up["referral_id"],
            "liaison_id": follow_up["liaison_id"],
            "due_at": follow_up["due_at"],
        }
        return await self._outbox.insert(DUE, claim, [event])

    async def drop_timers(self, follow_up_ids: list[str]) -> None:
        """One delete for many: each delete scans the timers."""
        if follow_up_ids:
            await self._timers.delete_many({"_id": {"$in": follow_up_ids}})

    async def is_due(self, follow_up_id: str) -> bool:
        return await self._due.find_one({"_id": follow_up_id}, {"_id": 1}) is not None

    async def list_for_liaison(self, liaison_id: str, limit: int) -> list[Document]:
        cursor = self._follow_ups.find(
            {"liaison_id": liaison_id}, {"outbox": 0, "correlation_id": 0}, limit=limit
        )
        return await cursor.sort("due_at", 1).to_list(None)
