"""MongoDB adapter for training sessions (with an embedded outbox)."""

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from cmhl_contracts import TrainingCompletedV1
from cmhl_servicekit.outbox import Outbox

Document = dict[str, Any]
SESSIONS = "training_sessions"


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[SESSIONS].create_index([("trainer_liaison_id", 1), ("held_on", -1)])


class MongoSessionRepository:
    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._sessions = db[SESSIONS]
        self._outbox = outbox

    async def add(self, document: Document, event: TrainingCompletedV1) -> bool:
        return await self._outbox.insert(SESSIONS, document, [event])

    async def get(self, session_id: str) -> Document | None:
        return await self._sessions.find_one({"_id": session_id}, {"outbox": 0})
