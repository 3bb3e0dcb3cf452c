"""MongoDB adapters: generations of views (claims, segment chains, training facts) and readers.

Every hot write is an insert keyed by `_id` (FerretDB scans a collection for any update, and
has no atomic read-modify-write); only the pointer naming the serving generation and training
rosters (one small document per session) are ever replaced."""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cmhl_reporting.application.projector import Segment
from cmhl_reporting.application.queries import Snapshot
from cmhl_reporting.domain.projections import PersonSeen, TrainingFact
from cmhl_reporting.domain.views import Counters
from cmhl_servicekit.mongo import find_by_ids, insert_new

log = logging.getLogger(__name__)

Document = dict[str, Any]
GENERATIONS = "generations"
SERVING = "serving"
KINDS = ("claims", "segments", "intents", "chains", "training_sessions")
# The document among a generation's training sessions whose value changes with every write.
TRAININGS_CHANGED = "~changed"


def collection_name(gen: int, kind: str) -> str:
    return f"g{gen}_{kind}"


def _chain(topic: str, partition: int) -> str:
    return f"{topic}|{partition}"


def _people_anchors_marker(gen: int) -> str:
    return f"people_anchors|{gen}"


async def _set_marker(db: AsyncDatabase[Document], marker: str) -> None:
    """A marker document in `generations`: present or absent, set again harmlessly."""
    with contextlib.suppress(DuplicateKeyError):
        await db[GENERATIONS].insert_one({"_id": marker})


async def mark_people_anchored(db: AsyncDatabase[Document], gen: int) -> None:
    """Marks a generation this version creates, before anything is written to it, as one whose
    unique people are counted through anchors (ADR 0003)."""
    await _set_marker(db, _people_anchors_marker(gen))


def _rebuilding_marker(gen: int) -> str:
    return f"rebuilding|{gen}"


async def mark_rebuilding(db: AsyncDatabase[Document], gen: int) -> None:
    """Marks a generation a rebuild is still filling: a live writer whose batch starts past the
    end of a chain in it waits for the rebuild instead of covering offsets it never saw."""
    await _set_marker(db, _rebuilding_marker(gen))


async def mark_rebuilt(db: AsyncDatabase[Document], gen: int) -> None:
    """The rebuild has covered everything the live writers committed: a gap a live batch finds
    from now on is records the consumer dead-lettered, which the chain covers as before."""
    await db[GENERATIONS].delete_one({"_id": _rebuilding_marker(gen)})


async def read_serving_generation(db: AsyncDatabase[Document]) -> int:
    """The pointer document; the first service to start creates it (generation 1)."""
    doc = await db[GENERATIONS].find_one({"_id": SERVING})
    if doc is None:
        # A new store: generation 1 is this version's. One an earlier version created (its
        # pointer already there) stays unmarked.
        await mark_people_anchored(db, 1)
        with contextlib.suppress(DuplicateKeyError):
            await db[GENERATIONS].insert_one({"_id": SERVING, "gen": 1})
        doc = await db[GENERATIONS].find_one({"_id": SERVING})
    assert doc is not None
    return int(doc["gen"])


async def switch_generation(db: AsyncDatabase[Document], gen: int) -> None:
    """One single-document write: readers and writers see the old or the new generation."""
    await db[GENERATIONS].replace_one({"_id": SERVING}, {"gen": gen}, upsert=True)


async def drop_generation(db: AsyncDatabase[Document], gen: int) -> None:
    for kind in KINDS:
        await db.drop_collection(collection_name(gen, kind))
    await db[GENERATIONS].delete_one({"_id": _people_anchors_marker(gen)})
    await mark_rebuilt(db, gen)


class MongoViewStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db
        self._anchored: dict[int, bool] = {}

    def _c(self, gen: int, kind: str) -> Any:
        return self._db[collection_name(gen, kind)]

    async def serving_generation(self) -> int:
        return await read_serving_generation(self._db)

    async def chain_start(self, gen: int, topic: str, partition: int, first: int) -> int:
        """Registers a partition's chain at the first offset ever applied (the registry is what
        readers list; it stays small: one document per partition)."""
        key = _chain(topic, partition)
        with contextlib.suppress(DuplicateKeyError):
            await self._c(gen, "chains").insert_one({"_id": key, "start": first})
        doc = await self._c(gen, "chains").find_one({"_id": key})
        assert doc is not None
        return int(doc["start"])

    async def segment(self, gen: int, topic: str, partition: int, first: int) -> Segment | None:
        doc = await self._c(gen, "segments").find_one(
            {"_id": f"{_chain(topic, partition)}|{first}"}
        )
        return None if doc is None else _segment(topic, partition, doc)

    async def begin(
        self, gen: int, topic: str, partition: int, first: int, last: int
    ) -> int | None:
        key = f"{_chain(topic, partition)}|{first}"
        try:
            await self._c(gen, "intents").insert_one({"_id": key, "last": last})
        except DuplicateKeyError:
            doc = await self._c(gen, "intents").find_one({"_id": key})
            return int(doc["last"]) if doc else last
        return None

    async def claim(
        self,
        gen: int,
        claims: dict[str, str],
        verify: bool,
        anchors: Mapping[str, PersonSeen] | None = None,
    ) -> set[str]:
        collection = self._c(gen, "claims")
        anchors = anchors or {}
        documents: list[dict[str, Any]] = []
        for key, owner in claims.items():
            document: dict[str, Any] = {"_id": key, "o": owner}
            if (seen := anchors.get(key)) is not None:
                document |= {"day": seen.day, "traits": list(seen.traits)}
            documents.append(document)
        lost = await insert_new(collection, documents)
        won = set(claims) - lost
        if verify:
            # Lost to an earlier attempt of the same record? Then the claim is ours.
            for key in lost:
                doc = await collection.find_one({"_id": key})
                if doc is not None and doc["o"] == claims[key]:
                    won.add(key)
        return won

    async def people_anchored(self, gen: int) -> bool:
        # A generation's mark is written before its first claim and never changes.
        if gen not in self._anchored:
            marker = {"_id": _people_anchors_marker(gen)}
            self._anchored[gen] = await self._db[GENERATIONS].find_one(marker) is not None
        return self._anchored[gen]

    async def rebuilding(self, gen: int) -> bool:
        # Read each time (not cached): the mark goes when the rebuild finishes. Asked only when a
        # batch starts past its chain's end, which is rare.
        return await self._db[GENERATIONS].find_one({"_id": _rebuilding_marker(gen)}) is not None

    async def people_seen(
        self, gen: int, anchors: Iterable[str]
    ) -> dict[str, tuple[str, tuple[str, ...]]]:
        found = await find_by_ids(self._c(gen, "claims"), sorted(anchors), {"day": 1, "traits": 1})
        return {
            key: (doc["day"], tuple(doc["traits"])) for key, doc in found.items() if "day" in doc
        }

    async def append(self, gen: int, segment: Segment) -> bool:
        doc = {
            "_id": f"{_chain(segment.topic, segment.partition)}|{segment.first}",
            "last": segment.last,
            "verify_to": segment.verify_to,
            # FerretDB stores no nested arrays: one "metric<TAB>day<TAB>count" string per row.
            "counts": [f"{m}\t{d}\t{n}" for m, d, n in segment.counts],
        }
        try:
            await self._c(gen, "segments").insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def save_trainings(self, gen: int, facts: list[TrainingFact]) -> None:
        """A higher revision replaces a lower one; an equal or older one changes nothing, so
        any order and any number of deliveries leave the latest roster."""
        collection = self._c(gen, "training_sessions")
        for fact in facts:
            # A duplicate key: a same-or-newer revision is stored already.
            with contextlib.suppress(DuplicateKeyError):
                await collection.update_one(
                    {"_id": fact.session_id, "revision": {"$lt": fact.revision}},
                    {"$set": _training_doc(fact)},
                    upsert=True,
                )
        if facts:
            # After the sessions: a reader that sees this change reads them again. A new value
            # each time, so that two writers at once cannot leave a value a reader has seen.
            await collection.update_one(
                {"_id": TRAININGS_CHANGED}, {"$set": {"change": uuid.uuid4().hex}}, upsert=True
            )


def _training_doc(fact: TrainingFact) -> Document:
    doc = asdict(fact)
    doc.pop("session_id")
    doc["officer_ids"] = list(fact.officer_ids)
    doc["officer_agency_ids"] = list(fact.officer_agency_ids)
    doc["officer_person_ids"] = list(fact.officer_person_ids)
    return doc


def _segment(topic: str, partition: int, doc: Document) -> Segment:
    first = int(str(doc["_id"]).rsplit("|", 1)[1])
    return Segment(
        topic,
        partition,
        first,
        int(doc["last"]),
        int(doc["verify_to"]),
        _rows(doc["counts"]),
    )


def _rows(counts: list[str]) -> list[tuple[str, str, int]]:
    rows = []
    for row in counts:
        metric, day, count = row.split("\t")
        rows.append((metric, day, int(count)))
    return rows


async def _follow(
    lookup: Callable[[str], Awaitable[Document | None]], key: str, head: int
) -> list[Document]:
    """The segments of one chain from `head` on, in order."""
    docs = []
    while (doc := await lookup(f"{key}|{head}")) is not None:
        docs.append(doc)
        head = int(doc["last"]) + 1
    return docs


class MongoViewReader:
    """Keeps the serving generation's counters in memory and follows its chains forward.

    A refresh reads the pointer, the chain registry (one document per partition) and, per
    chain, the segments after the last one read: a few `_id` lookups, never a scan of claims."""

    def __init__(self, db: AsyncDatabase[Document], min_interval: float = 0.5) -> None:
        self._db = db
        self._min_interval = min_interval
        self._lock = asyncio.Lock()
        self._gen: int | None = None
        self._counters = Counters()
        self._heads: dict[str, int] = {}
        self._trainings: list[TrainingFact] = []
        self._trainings_change: str | None = None
        self._refreshed_at = float("-inf")
        self._read_at = datetime.now(UTC)
        self._task: asyncio.Task[None] | None = None
        self.segments_read = 0

    async def current(self) -> Snapshot:
        """The views as last read. Only the very first call waits for a read; later ones answer
        at once from memory and start a refresh in the background when the views are older than
        `min_interval`, so a slow database never makes a request slow."""
        if self._gen is None:
            async with self._lock:
                if self._gen is None:
                    await self._refresh_now()
        elif self._stale() and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._refresh_now())
        assert self._gen is not None
        return Snapshot(self._gen, self._counters, self._trainings, self._read_at)

    def _stale(self) -> bool:
        return asyncio.get_running_loop().time() - self._refreshed_at >= self._min_interval

    async def _refresh_now(self) -> None:
        started = asyncio.get_running_loop().time()
        read_at = datetime.now(UTC)
        try:
            await self._refresh()
        except Exception as exc:
            if self._gen is None:
                raise
            # A background refresh: the next request tries again; this one keeps the last view.
            log.warning("views not refreshed", extra={"reason": type(exc).__name__})
            return
        self._refreshed_at, self._read_at = started, read_at

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _refresh(self) -> None:
        gen = await read_serving_generation(self._db)
        # A new generation is read whole before it replaces the old one in memory.
        fresh = gen != self._gen
        counters, heads = (Counters(), {}) if fresh else (self._counters, self._heads)
        chains = self._db[collection_name(gen, "chains")]
        segments = self._db[collection_name(gen, "segments")]
        starts = {str(c["_id"]): int(c["start"]) async for c in chains.find({})}
        for key, start in starts.items():
            heads.setdefault(key, start)
        if fresh:
            # A whole generation: one read of every segment beats thousands of lookups.
            stored = {str(doc["_id"]): doc async for doc in segments.find({})}

            async def lookup(segment_id: str) -> Document | None:
                return stored.get(segment_id)

        else:
            # Only what was appended since the last read: `_id` lookups along each chain, the
            # chains side by side. (Reading every segment again costs as much as the history.)
            async def lookup(segment_id: str) -> Document | None:
                return await segments.find_one({"_id": segment_id})

        walks = await asyncio.gather(*(_follow(lookup, key, head) for key, head in heads.items()))
        new = dict(zip(heads, walks, strict=True))
        for key, docs in new.items():
            for doc in docs:
                counters.add(_rows(doc["counts"]))
                heads[key] = int(doc["last"]) + 1
            self.segments_read += len(docs)
        sessions = self._db[collection_name(gen, "training_sessions")]
        # The sessions are read again only when they changed (the marker is read first): every
        # session ever held, read twice a second under traffic, would cost as the history grows.
        marker = await sessions.find_one({"_id": TRAININGS_CHANGED})
        change = None if marker is None else str(marker["change"])
        if not fresh and change == self._trainings_change:
            self._gen, self._counters, self._heads = gen, counters, heads
            return
        trainings = [
            TrainingFact(
                str(doc["_id"]),
                int(doc["revision"]),
                str(doc["course_id"]),
                str(doc["county_fips"]),
                str(doc["host_agency_id"]),
                str(doc["held_on"]),
                tuple(doc["officer_ids"]),
                tuple(doc["officer_agency_ids"]),
                tuple(doc.get("officer_person_ids", ())),
            )
            async for doc in sessions.find({"_id": {"$ne": TRAININGS_CHANGED}})
        ]
        self._gen, self._counters, self._heads, self._trainings = gen, counters, heads, trainings
        self._trainings_change = change

    def heads(self) -> dict[str, int]:
        """Per partition, the next offset the views have not applied yet."""
        return dict(self._heads)
