"""MongoDB adapter for follow-ups: durable timers, insert-only announcements, an embedded outbox,
and the closure and assignment facts read across topics.

The hot paths are inserts and `_id` lookups; lists and the due scan are served by indexes."""

import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cmhl_contracts import FollowUpScheduledV1, IntegrationEvent
from cmhl_followup.application.ports import FollowUpQuery
from cmhl_followup.domain.policy import State
from cmhl_servicekit import timers
from cmhl_servicekit.outbox import Outbox

Document = dict[str, Any]
FOLLOW_UPS = "follow_ups"
ANNOUNCEMENTS = {"due": "follow_ups_due", "overdue": "follow_ups_overdue"}
CLOSURES = "referral_closures"
ASSIGNMENTS = "referral_assignments"


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[FOLLOW_UPS].create_index([("liaison_id", 1), ("status", 1), ("due_at", 1)])
    # A supervisor's view of the CMHC, and one referral's record on its page.
    await db[FOLLOW_UPS].create_index([("cmhc_id", 1), ("status", 1), ("due_at", 1)])
    await db[FOLLOW_UPS].create_index([("referral_id", 1), ("due_at", 1)])
    await timers.MongoTimerStore(db).ensure_indexes()


class MongoFollowUpRepository:
    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._db = db
        self._follow_ups = db[FOLLOW_UPS]
        self.timers = timers.MongoTimerStore(db)
        self._outbox = outbox

    async def schedule(
        self, follow_ups: list[tuple[Document, FollowUpScheduledV1]], now: datetime
    ) -> int:
        """Inserts each follow-up with its scheduled event, its timers first: a timer whose
        follow-up was never written is dropped by the due scan."""
        await self.timers.schedule(  # scheduled before: the follow-up exists too
            [
                timers.Timer(
                    timer_id=f"{document['_id']}|{stage}",
                    kind=stage,
                    subject_id=document["_id"],
                    fire_at=fire_at,
                    created_at=now,
                )
                for document, _ in follow_ups
                for stage, fire_at in (
                    ("due", document["due_at"]),
                    ("overdue", document["overdue_at"]),
                )
            ]
        )
        inserted = await self._outbox.insert_many(
            FOLLOW_UPS, [(document, [event]) for document, event in follow_ups]
        )
        return sum(inserted)

    async def get(self, follow_up_id: str) -> Document | None:
        return await self._follow_ups.find_one({"_id": follow_up_id}, {"outbox": 0})

    async def claim(self, stage: str, follow_up: Document, event: IntegrationEvent) -> bool:
        """An insert keyed by the follow-up: however many replicas race here, one announcement
        (and one event) is written; the others get a duplicate key."""
        claim = {
            "_id": follow_up["_id"],
            "referral_id": follow_up["referral_id"],
            "liaison_id": follow_up["liaison_id"],
            "due_at": follow_up["due_at"],
        }
        return await self._outbox.insert(ANNOUNCEMENTS[stage], claim, [event])

    async def update(
        self,
        follow_up_id: str,
        expected_version: int,
        changes: Mapping[str, Any],
        events: list[IntegrationEvent],
    ) -> bool:
        return await self._outbox.update(
            FOLLOW_UPS, follow_up_id, expected_version, changes, events
        )

    async def note_closure(self, referral_id: str, status: str, at: datetime) -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self._db[CLOSURES].insert_one({"_id": referral_id, "status": status, "at": at})

    async def closure_of(self, referral_id: str) -> Document | None:
        return await self._db[CLOSURES].find_one({"_id": referral_id})

    async def pending_of(self, referral_id: str) -> list[Document]:
        # The (referral_id, due_at) index: a referral has a handful of follow-ups.
        selector = {"referral_id": referral_id, "status": State.SCHEDULED.value}
        return await self._follow_ups.find(selector, {"kind": 1}).to_list(None)

    async def note_assignment(self, referral_id: str, liaison_id: str, sequence: int) -> None:
        # One writer per referral (its partition's consumer); a duplicate key means a same or
        # newer assignment is stored already.
        with contextlib.suppress(DuplicateKeyError):
            await self._db[ASSIGNMENTS].update_one(
                {"_id": referral_id, "sequence": {"$lt": sequence}},
                {"$set": {"liaison_id": liaison_id, "sequence": sequence}},
                upsert=True,
            )

    async def assignment_of(self, referral_id: str) -> Document | None:
        return await self._db[ASSIGNMENTS].find_one({"_id": referral_id})

    async def list_follow_ups(self, query: FollowUpQuery) -> list[Document]:
        cursor = self._follow_ups.find(
            _selector(query), {"outbox": 0, "correlation_id": 0}, limit=query.limit
        )
        return await cursor.sort("due_at", 1).to_list(None)

    async def liaisons_of(self, query: FollowUpQuery) -> list[str]:
        """Whose each selected follow-up is (up to the query's limit): the liaison ids only."""
        cursor = self._follow_ups.find(_selector(query), {"liaison_id": 1}, limit=query.limit)
        return [d["liaison_id"] for d in await cursor.to_list(None)]


def _selector(query: FollowUpQuery) -> Document:
    """One flat selector: the scope's equalities and the state's bounds on the times."""
    scope = {
        "referral_id": query.referral_id,
        "liaison_id": query.liaison_id,
        "cmhc_id": query.cmhc_id,
        "status": query.status,
    }
    selector: Document = {field: value for field, value in scope.items() if value is not None}
    bounds = {
        ("due_at", "$lte"): query.due_by,
        ("due_at", "$gt"): query.due_after,
        ("overdue_at", "$lt"): query.overdue_before,
        ("overdue_at", "$gte"): query.overdue_from,
    }
    for (field, operator), value in bounds.items():
        if value is not None:
            selector.setdefault(field, {})[operator] = value
    return selector
