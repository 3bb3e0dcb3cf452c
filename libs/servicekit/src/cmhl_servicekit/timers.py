"""Durable timers, one implementation for every service: the service supplies only what fires.

A timer is a document (`timers` collection) with the time it fires; a restart or a second
replica loses nothing, because the due scan reads the database. Firing must be idempotent (the
services write an insert-only claim keyed by the timer, carrying its event), since a timer is
dropped only after every timer of its pass has fired: a crash in between fires it again, and the
claim's duplicate key makes that harmless. The due scan is a range on `fire_at`, served by its
index, so it costs what is due, not what is pending.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase

from cmhl_servicekit.consuming import TRANSIENT_ERRORS, run_bounded, safe_reason
from cmhl_servicekit.mongo import delete_by_ids, estimated_count, insert_new

log = logging.getLogger(__name__)
# A service writes a timer before its subject, so a crash in between leaves a timer without a
# subject, never a subject without its timer. A due scan that finds no subject cannot tell a
# write that failed from one still landing (another batch, another replica): only a timer this
# old is taken for the former.
ORPHAN_TIMER_AGE = timedelta(minutes=5)

Document = dict[str, Any]
TIMERS = "timers"


@dataclass(frozen=True)
class Timer:
    """Look at `subject_id` for `kind` at `fire_at`. `sequence` is the version of the subject
    the timer was set for, where that matters (a facility's bed update, say)."""

    timer_id: str
    kind: str
    subject_id: str
    fire_at: datetime
    created_at: datetime
    sequence: int = 0


@dataclass(frozen=True)
class TimerBacklog:
    """What an operator sees of a timer store (metrics): timers scheduled, those due and not
    fired yet (counted up to DUE_COUNTED_UP_TO), and when the oldest due one was due."""

    pending: int
    due: int
    oldest_due_at: datetime | None


# A due count is bounded so that a metrics scrape costs a bounded scan, whatever the backlog.
DUE_COUNTED_UP_TO = 10_000


class TimerStore(Protocol):
    async def schedule(self, timers: Sequence[Timer]) -> None:
        """Store timers that do not exist yet (idempotent by timer id)."""

    async def due(self, now: datetime, limit: int) -> list[Timer]:
        """Timers whose time has come, earliest first."""

    async def drop(self, timer_ids: Sequence[str]) -> None: ...

    async def backlog(self, now: datetime) -> TimerBacklog: ...


Fire = Callable[[Timer, datetime], Awaitable[bool]]
"""What a timer does when its time comes; True once it is settled (the timer can go), False to
look again at the next pass (say, the write it waits for may still be landing)."""


def orphaned(timer: Timer, now: datetime) -> bool:
    """What a fire function returns when the timer's subject is not (or not yet) stored: settled
    once the timer is ORPHAN_TIMER_AGE old; until then, looked at again next pass."""
    return now - timer.created_at > ORPHAN_TIMER_AGE


async def fire_due(
    store: TimerStore, fire: Fire, now: datetime, *, limit: int, in_flight: int = 16
) -> int:
    """Fires the due timers (independent ones overlap), then drops the settled ones; returns how
    many were settled, so a caller can drain a backlog while that equals `limit`."""
    timers = [t for t in await store.due(now, limit) if t.fire_at <= now]
    settled = await run_bounded((fire(timer, now) for timer in timers), in_flight)
    done = [timer.timer_id for timer, ok in zip(timers, settled, strict=True) if ok]
    # Dropped only after every timer of the pass has fired: a crash fires them again, harmlessly.
    await store.drop(done)
    return len(done)


async def run_timers(
    fire_due_once: Callable[[int], Awaitable[int]], *, batch: int, interval_seconds: float
) -> None:
    """The background loop: drains what is due (a backlog after an outage goes at once), then
    waits `interval_seconds`; a failed pass is logged and tried again."""
    while True:
        try:
            while await fire_due_once(batch) == batch:
                pass
        except TRANSIENT_ERRORS as exc:
            log.warning("timers waiting for the database", extra={"reason": safe_reason(exc)})
        except Exception:
            log.exception("timer pass failed; will retry")
        await asyncio.sleep(interval_seconds)


class MongoTimerStore:
    def __init__(self, db: AsyncDatabase[Document], collection: str = TIMERS) -> None:
        self._timers = db[collection]

    async def ensure_indexes(self) -> None:
        await self._timers.create_index("fire_at")

    async def schedule(self, timers: Sequence[Timer]) -> None:
        await insert_new(
            self._timers,
            [
                {
                    "_id": t.timer_id,
                    "kind": t.kind,
                    "subject_id": t.subject_id,
                    "fire_at": t.fire_at,
                    "created_at": t.created_at,
                    "sequence": t.sequence,
                }
                for t in timers
            ],
        )

    async def due(self, now: datetime, limit: int) -> list[Timer]:
        cursor = self._timers.find({"fire_at": {"$lte": now}}, limit=limit).sort("fire_at", 1)
        return [
            Timer(
                timer_id=d["_id"],
                kind=d["kind"],
                subject_id=d["subject_id"],
                fire_at=d["fire_at"],
                created_at=d["created_at"],
                sequence=d.get("sequence", 0),
            )
            for d in await cursor.to_list(None)
        ]

    async def drop(self, timer_ids: Sequence[str]) -> None:
        await delete_by_ids(self._timers, timer_ids)

    async def backlog(self, now: datetime) -> TimerBacklog:
        # The estimate reads the collection's statistics, and both look-ups of the due ones are a
        # range on the `fire_at` index, limited: no scan of what is pending. (A count command
        # would read every due timer on FerretDB, which pushes a find's limit down, not a count's.)
        due_filter = {"fire_at": {"$lte": now}}
        oldest = await self._timers.find_one(due_filter, {"fire_at": 1}, sort=[("fire_at", 1)])
        due = self._timers.find(due_filter, {"_id": 1}, limit=DUE_COUNTED_UP_TO)
        return TimerBacklog(
            pending=await estimated_count(self._timers),
            due=len(await due.to_list(None)),
            oldest_due_at=oldest["fire_at"] if oldest else None,
        )


class InMemoryTimerStore:
    """The same contract in memory, for the services' unit tests."""

    def __init__(self) -> None:
        self.timers: dict[str, Timer] = {}

    async def schedule(self, timers: Sequence[Timer]) -> None:
        for timer in timers:
            self.timers.setdefault(timer.timer_id, timer)

    async def due(self, now: datetime, limit: int) -> list[Timer]:
        due = sorted((t for t in self.timers.values() if t.fire_at <= now), key=_fire_at)
        return due[:limit]

    async def drop(self, timer_ids: Sequence[str]) -> None:
        for timer_id in timer_ids:
            self.timers.pop(timer_id, None)

    async def backlog(self, now: datetime) -> TimerBacklog:
        due = await self.due(now, DUE_COUNTED_UP_TO)
        return TimerBacklog(len(self.timers), len(due), due[0].fire_at if due else None)


def _fire_at(timer: Timer) -> datetime:
    return timer.fire_at
