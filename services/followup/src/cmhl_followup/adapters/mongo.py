"""MongoDB adapter for follow-ups (durable timers with an embedded outbox)."""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from cmhl_contracts import FollowUpDueV1, FollowUpScheduledV1
from cmhl_servicekit.outbox import Outbox

Document = dict[str, Any]
FOLLOW_UPS = "follow_ups"


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[FOLLOW_UPS].create_index([("status", 1), ("due_at", 1)])
    await db[FOLLOW_UPS].create_index([("liaison_id", 1), ("due_at", 1)])


class MongoFollowUpRepository:
    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._follow_ups = db[FOLLOW_UPS]
        self._outbox = outbox

    async def schedule(self, follow_ups: list[tuple[Document, FollowUpScheduledV1]]) -> int:
        """Inserts each follow-up with its scheduled event; an existing id is left alone."""
        created = 0
        for document, event in follow_ups:
            created += await self._outbox.insert(FOLLOW_UPS, document, [event])
        return created

    async def due_candidates(self, now: datetime, limit: int) -> list[Document]:
        cursor = self._follow_ups.find(
            {"status": "scheduled", "due_at": {"$lte": now}}, {"outbox": 0}, limit=limit
        ).sort("due_at", 1)
        return await cursor.to_list(None)

    async def mark_due(self, document: Document, event: FollowUpDueV1) -> None:
        # A version conflict means another replica marked it first: its event has the same id.
        await self._outbox.update(
            FOLLOW_UPS,
            document["_id"],
            document["version"],
            {"status": "due", "due_event_id": str(event.event_id)},
            [event],
        )

    async def list_for_liaison(
        self, liaison_id: str, status: str | None, limit: int
    ) -> list[Document]:
        query: Document = {"liaison_id": liaison_id}
        if status:
            query["status"] = status
        cursor = self._follow_ups.find(query, {"outbox": 0, "correlation_id": 0}, limit=limit)
        return await cursor.sort("due_at", 1).to_list(None)
