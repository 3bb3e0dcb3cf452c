"""MongoDB adapter for follow-ups (durable timers with an embedded outbox)."""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from cmhl_contracts import FollowUpDueV1, FollowUpScheduledV1
from cmhl_servicekit.outbox import AggregateLocks, outbox_entry

Document = dict[str, Any]
FOLLOW_UPS = "follow_ups"
DUPLICATE_KEY = 11000


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[FOLLOW_UPS].create_index([("status", 1), ("due_at", 1)])
    await db[FOLLOW_UPS].create_index([("liaison_id", 1), ("due_at", 1)])
    await db[FOLLOW_UPS].create_index("outbox_pending")


class MongoFollowUpRepository:
    def __init__(self, db: AsyncDatabase[Document], locks: AggregateLocks) -> None:
        self._follow_ups = db[FOLLOW_UPS]
        self._locks = locks

    async def schedule(self, follow_ups: list[tuple[Document, FollowUpScheduledV1]]) -> int:
        documents = [
            document | {"outbox": [outbox_entry(event)], "outbox_pending": True}
            for document, event in follow_ups
        ]
        created = 0
        # One insert each: the database stops an unordered batch at its first duplicate.
        for document in documents:
            try:
                await self._follow_ups.insert_many([document])
                created += 1
            except BulkWriteError as exc:
                if any(e["code"] != DUPLICATE_KEY for e in exc.details["writeErrors"]):
                    raise
        return created

    async def due_candidates(self, now: datetime, limit: int) -> list[Document]:
        cursor = self._follow_ups.find(
            {"status": "scheduled", "due_at": {"$lte": now}}, {"outbox": 0}, limit=limit
        ).sort("due_at", 1)
        return await cursor.to_list(None)

    async def mark_due(self, follow_up_id: str, event: FollowUpDueV1) -> None:
        async with self._locks(follow_up_id):
            current = await self._follow_ups.find_one({"_id": follow_up_id}, {"outbox": 1})
            if current is None:
                return
            entry = outbox_entry(event)
            outbox = [e for e in current.get("outbox", []) if e["event_id"] != entry["event_id"]]
            await self._follow_ups.update_one(
                {"_id": follow_up_id, "status": "scheduled"},
                {
                    "$set": {
                        "status": "due",
                        "due_event_id": entry["event_id"],
                        "outbox": [*outbox, entry],
                        "outbox_pending": True,
                    }
                },
            )

    async def list_for_liaison(
        self, liaison_id: str, status: str | None, limit: int
    ) -> list[Document]:
        query: Document = {"liaison_id": liaison_id}
        if status:
            query["status"] = status
        cursor = self._follow_ups.find(query, {"outbox": 0, "correlation_id": 0}, limit=limit)
        return await cursor.sort("due_at", 1).to_list(None)
