"""MongoDB adapter for training sessions (with an embedded outbox)."""

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cmhl_contracts import TrainingCompletedV1
from cmhl_servicekit.outbox import AggregateLocks, outbox_entry

Document = dict[str, Any]
SESSIONS = "training_sessions"


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[SESSIONS].create_index("outbox_pending")
    await db[SESSIONS].create_index([("trainer_liaison_id", 1), ("held_on", -1)])


class MongoSessionRepository:
    def __init__(self, db: AsyncDatabase[Document], locks: AggregateLocks) -> None:
        self._sessions = db[SESSIONS]
        self._locks = locks

    async def add(self, document: Document, event: TrainingCompletedV1) -> bool:
        stored = document | {"outbox": [outbox_entry(event)], "outbox_pending": True}
        async with self._locks(document["_id"]):
            try:
                await self._sessions.insert_one(stored)
            except DuplicateKeyError:
                return False
        return True

    async def get(self, session_id: str) -> Document | None:
        return await self._sessions.find_one({"_id": session_id}, {"outbox": 0})
