"""The embedded outbox: events are stored inside the document whose change they describe, and a
relay publishes them afterwards.

No transaction is needed (the test database has none): the change and its events are one
single-document write, so an HTTP answer never claims an event that is not durable, and events
written while Kafka is down go out when it returns. Event ids are deterministic, so a relay crash
between publishing and forgetting only re-publishes ids that consumers already drop.

How the relay finds work without scanning the (large) document collections: before each write, a
small marker (`collection|id|version`) goes into `outbox_markers` (a write without events needs
none). A marker only says "this document has events to send": the relay reads a page of markers,
then the marked documents (one `_id` list per collection), publishes *every* entry still in each
document's outbox in version order (a document once per pass, under one Kafka key), pulls
exactly those entries out of it, and deletes the markers up to the version it read.
So one aggregate's events leave in order however large the backlog and whichever page a marker
lands in, and a document's outbox holds only what is not sent yet. A writer that moves the
document on meanwhile keeps its own entries (only the sent ones are pulled), and its marker
brings them out in the next pass. A crash between publishing and pulling leaves the entries in
place: they go again, with the same event ids, which consumers drop. A marker whose write never
happened (the process died in between) is dropped once it is older than a minute.
"""

import asyncio
import contextlib
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from datetime import UTC, datetime, timedelta
from typing import Any, NotRequired, TypedDict

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cmhl_contracts import IntegrationEvent
from cmhl_servicekit import tracing
from cmhl_servicekit.consuming import TRANSIENT_ERRORS, run_bounded, safe_reason
from cmhl_servicekit.mongo import delete_by_ids, find_by_ids, insert_new

log = logging.getLogger(__name__)

Document = dict[str, Any]
MARKERS = "outbox_markers"
# Kafka keys whose documents a relay pass sends at once.
KEYS_IN_FLIGHT = 32
# Documents whose sent entries one update pulls (their locks are held meanwhile), and how many
# bytes of entries at most: after a long outage a document's outbox can be large, and the update
# must stay far below the database's 16 MB for a command (one document alone always fits).
PULL_CHUNK = 32
PULL_BYTES = 4 * 1024 * 1024
# An entry's bytes besides its payload (ids, names, the traceparent), generously.
ENTRY_OVERHEAD = 512


class OutboxEntry(TypedDict):
    event_id: str
    event_type: str
    topic: str
    key: str
    payload: str
    correlation_id: str
    version: int
    # The W3C traceparent of the request that wrote the entry (tracing.py), so the publish
    # continues its trace; absent when traces are off, and in entries written before.
    traceparent: NotRequired[str]


def outbox_entry(event: IntegrationEvent, version: int) -> OutboxEntry:
    entry = OutboxEntry(
        event_id=str(event.event_id),
        event_type=event.event_type,
        topic=event.destination(),
        key=event.kafka_key().decode(),
        payload=event.model_dump_json(),
        correlation_id=event.correlation_id,
        version=version,
    )
    if traceparent := tracing.current_traceparent():
        entry["traceparent"] = traceparent
    return entry


class AggregateLocks:
    """Serialises every writer of one document inside this process.

    FerretDB's updates are read-modify-write without a lock, so two concurrent writers of one
    document could lose an update; striped locks keep one writer per document at a time with
    bounded memory."""

    def __init__(self, stripes: int = 256) -> None:
        self._locks = [asyncio.Lock() for _ in range(stripes)]

    def __call__(self, aggregate_id: str) -> asyncio.Lock:
        return self._locks[self._stripe(aggregate_id)]

    def _stripe(self, aggregate_id: str) -> int:
        return hash(aggregate_id) % len(self._locks)

    @contextlib.asynccontextmanager
    async def all_of(self, aggregate_ids: Iterable[str]) -> AsyncIterator[None]:
        """Holds the locks of several documents at once. Stripes are taken once each, in
        ascending order, and every other holder takes one stripe at a time, so no two holders
        can wait for each other."""
        async with contextlib.AsyncExitStack() as held:
            for stripe in sorted({self._stripe(a) for a in aggregate_ids}):
                await held.enter_async_context(self._locks[stripe])
            yield


class Outbox:
    """Writes a document change together with its events, and tells the relay."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        wake: Callable[[], None],
        locks: AggregateLocks | None = None,
    ) -> None:
        self._db = db
        self._markers = db[MARKERS]
        self._wake = wake
        self.locks = locks or AggregateLocks()

    async def insert(
        self, collection: str, document: Document, events: list[IntegrationEvent]
    ) -> bool:
        """Insert a new document (version 1) with its events; False if its `_id` exists."""
        stored = document | {"version": 1, "outbox": [outbox_entry(e, 1) for e in events]}
        async with self.locks(str(document["_id"])):
            await self._mark(collection, document["_id"], 1, events)
            try:
                await self._db[collection].insert_one(stored)
            except DuplicateKeyError:
                return False
        self._wake()
        return True

    async def insert_many(
        self, collection: str, writes: Sequence[tuple[Document, list[IntegrationEvent]]]
    ) -> list[bool]:
        """Insert new documents (version 1), each with its events, in two round trips (the
        markers, then the documents) however many there are; returns, in order, whether each was
        stored (False if its `_id` existed, or came earlier in `writes`).

        No per-document lock: an insert only creates, so no other writer's change can be lost
        to it, and a relay that reads a marker before its document lands leaves the marker for
        the pass this write wakes."""
        # A redelivered message writes the same document twice: the first write is the one.
        first: dict[Any, tuple[Document, list[IntegrationEvent]]] = {}
        for document, events in writes:
            first.setdefault(document["_id"], (document, events))
        if not first:
            return []
        await insert_new(
            self._markers,
            [self._marker(collection, i, 1, events) for i, (_, events) in first.items() if events],
        )
        existed = await insert_new(
            self._db[collection],
            [
                document | {"version": 1, "outbox": [outbox_entry(e, 1) for e in events]}
                for document, events in first.values()
            ],
        )
        self._wake()
        stored = []
        for document, _ in writes:
            stored.append(document["_id"] in first and document["_id"] not in existed)
            first.pop(document["_id"], None)  # a later write of the same `_id` stored nothing
        return stored

    async def update(
        self,
        collection: str,
        document_id: Any,
        expected_version: int,
        changes: Mapping[str, Any],
        events: list[IntegrationEvent],
    ) -> bool:
        """Apply `$set` changes and append events if the document is still at
        `expected_version`; False if it moved on (the caller reads again)."""
        version = expected_version + 1
        async with self.locks(str(document_id)):
            await self._mark(collection, document_id, version, events)
            result = await self._db[collection].update_one(
                {"_id": document_id, "version": expected_version},
                {
                    "$set": {**changes, "version": version},
                    "$push": {"outbox": {"$each": [outbox_entry(e, version) for e in events]}},
                },
            )
        if result.matched_count != 1:
            return False
        self._wake()
        return True

    async def _mark(
        self, collection: str, document_id: Any, version: int, events: list[IntegrationEvent]
    ) -> None:
        if not events:
            return  # nothing to send: the relay need not look at this write
        with contextlib.suppress(DuplicateKeyError):  # a retried write marks once
            await self._markers.insert_one(self._marker(collection, document_id, version, events))

    @staticmethod
    def _marker(
        collection: str, document_id: Any, version: int, events: list[IntegrationEvent]
    ) -> Document:
        return {
            "_id": f"{collection}|{document_id}|{version}",
            "collection": collection,
            "document_id": document_id,
            "version": version,
            # The Kafka key of the write's events (an aggregate's events share it): the relay
            # keeps documents of one key in order and sends different keys side by side.
            "key": events[0].kafka_key().decode() if events else None,
            "created_at": datetime.now(UTC),
        }


Publish = Callable[[OutboxEntry], Awaitable[None]]
# The least time between the starts of two relay passes. A pass costs four round trips (read the
# markers, read their documents, pull what was sent, delete the markers) whatever it carries, and
# a pass per write was one per referral at 25 referrals/s. A tenth of a second is what an event
# may wait at most for a pass under load (docs/benchmarks.md measures it).
PASS_INTERVAL_SECONDS = 0.1


class OutboxRelay:
    """Publishes marked documents' pending events in version order, pulls what it sent out of
    their outboxes (one update per PULL_CHUNK documents), forgets the markers."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        publish: Publish,
        *,
        poll_seconds: float = 1.0,
        pass_interval_seconds: float = PASS_INTERVAL_SECONDS,
        batch_size: int = 500,
        orphan_after: timedelta = timedelta(seconds=60),
    ) -> None:
        self._db = db
        self._publish = publish
        self._poll_seconds = poll_seconds
        self._pass_interval_seconds = pass_interval_seconds
        self._batch_size = batch_size
        self._orphan_after = orphan_after
        self._wake = asyncio.Event()
        # Shared with the outbox this relay serves: the trim is a write to the same document.
        self.locks = AggregateLocks()

    def outbox(self) -> Outbox:
        """The outbox whose writes wake this relay and share its per-document locks."""
        return Outbox(self._db, self.wake, self.locks)

    def wake(self) -> None:
        """Called after a write, so its events go out with the next pass instead of at the next
        poll."""
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # A pass starts no sooner than the interval after one that carried events: writes
            # that land meanwhile go out together. After a quiet spell (empty polls) a write's
            # pass starts at once.
            started = loop.time()
            self._wake.clear()
            carried = 0
            try:
                while (carried := await self.relay_once()) == self._batch_size:
                    pass
            except TRANSIENT_ERRORS as exc:
                log.warning(
                    "outbox relay waiting for infrastructure", extra={"reason": safe_reason(exc)}
                )
            except Exception:
                log.exception("outbox relay pass failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            if carried:
                await asyncio.sleep(max(0.0, started + self._pass_interval_seconds - loop.time()))

    async def relay_once(self) -> int:
        """One pass over a page of markers; returns how many there were.

        Documents whose events share a Kafka key go one after another, in the page's order;
        different keys go side by side (Kafka acknowledgements and database round trips
        overlap), which is what lets the relay keep up with intake."""
        markers = await self._db[MARKERS].find({}, limit=self._batch_size).to_list(None)
        by_document: dict[tuple[str, str], list[Document]] = {}
        for marker in markers:
            document = (marker["collection"], str(marker["document_id"]))
            by_document.setdefault(document, []).append(marker)
        # A document goes under one key whatever its markers say (a write without events, or
        # from an earlier release, has none), so one pass sends its entries once.
        by_key: dict[str, dict[tuple[str, str], list[Document]]] = {}
        for document, marks in by_document.items():
            key = next((m["key"] for m in marks if m.get("key")), "|".join(document))
            by_key.setdefault(key, {})[document] = marks
        now = datetime.now(UTC)
        pending = await self._pending_of(markers)
        sent: dict[str, list[tuple[Any, list[OutboxEntry]]]] = {}

        async def relay_key(documents: dict[tuple[str, str], list[Document]]) -> list[str]:
            done: list[str] = []
            for marks in documents.values():
                collection, document_id = marks[0]["collection"], marks[0]["document_id"]
                document = pending.get((collection, document_id))
                published: list[OutboxEntry] = []  # filled as each entry is acknowledged
                sent.setdefault(collection, []).append((document_id, published))
                await self._publish_pending(document, published)
                sent_up_to = int(document.get("version", 0)) if document else 0
                done += self._settled(marks, sent_up_to, now)
            return done

        try:
            settled = await run_bounded(map(relay_key, by_key.values()), KEYS_IN_FLIGHT)
        except Exception:
            # A publish failed (every other key has finished): what did go out is pulled, so
            # the next pass does not send it again. The publish's error is the one to report; if
            # the pull fails too, those entries only go again, with their ids.
            with contextlib.suppress(Exception):
                await self._pull_sent(sent)
            raise
        await self._pull_sent(sent)
        await delete_by_ids(self._db[MARKERS], [m for done in settled for m in done])
        if markers:
            log.info("outbox pass", extra={"count": len(markers)})
        return len(markers)

    def _settled(self, marks: list[Document], sent_up_to: int, now: datetime) -> list[str]:
        """The markers a pass is done with: those its document's send covered, and orphans."""
        done = []
        for marker in marks:
            if marker["version"] <= sent_up_to:
                done.append(marker["_id"])
            elif now - marker["created_at"] >= self._orphan_after:
                log.warning(
                    "dropping an outbox marker whose write never happened",
                    extra={"reason": marker["_id"].split("|")[0]},
                )
                done.append(marker["_id"])
            # else: the write may still be landing; the marker waits for the next pass
        return done

    async def _pending_of(self, markers: list[Document]) -> dict[tuple[str, Any], Document]:
        """The marked documents' versions and outboxes: one `_id` list read per collection."""
        ids_by_collection: dict[str, dict[Any, None]] = {}
        for marker in markers:
            ids_by_collection.setdefault(marker["collection"], {})[marker["document_id"]] = None
        found: dict[tuple[str, Any], Document] = {}
        for collection, ids in ids_by_collection.items():
            documents = await find_by_ids(
                self._db[collection], list(ids), {"outbox": 1, "version": 1}
            )
            found.update(((collection, i), document) for i, document in documents.items())
        return found

    async def _publish_pending(
        self, document: Document | None, published: list[OutboxEntry]
    ) -> None:
        """Publishes the document's pending entries (as read at the start of the pass) in
        version order, appending each to `published` once acknowledged."""
        if document is None:
            return
        for entry in sorted(document.get("outbox", []), key=lambda e: int(e["version"])):
            await self._publish(entry)
            published.append(entry)

    async def _pull_sent(self, sent: Mapping[str, list[tuple[Any, list[OutboxEntry]]]]) -> None:
        """Pulls exactly the entries a pass sent out of their documents, one update of
        PULL_CHUNK documents at a time. A writer that moved a document on since the pass
        read it keeps its own entries, which its marker brings out next pass.

        The chunk's documents' locks are held meanwhile, because FerretDB's updates are
        read-modify-write (a writer of this process must not land between the read and the
        write of a pull). A chunk, not the whole page: 500 documents would cover most of the
        256 stripes, and every writer of the process would wait for the page's pulls."""
        for collection, pulls in sent.items():
            for chunk in pull_chunks(pulls):
                # One update of the chunk's documents, not one per document: a database that
                # reads before it writes (FerretDB) reads them all at once. Every entry names its
                # own event id, so another document's entries are pulled from none but their own.
                async with self.locks.all_of(str(document_id) for document_id, _ in chunk):
                    await self._db[collection].update_many(
                        {"_id": {"$in": [document_id for document_id, _ in chunk]}},
                        {"$pullAll": {"outbox": [entry for _, sent in chunk for entry in sent]}},
                    )


def pull_chunks(
    pulls: Iterable[tuple[Any, list[OutboxEntry]]],
) -> Iterator[list[tuple[Any, list[OutboxEntry]]]]:
    """The documents that sent something, PULL_CHUNK at a time and PULL_BYTES of entries at most
    (a document over that alone)."""
    chunk: list[tuple[Any, list[OutboxEntry]]] = []
    size = 0
    for document_id, entries in pulls:
        if not entries:
            continue
        weight = sum(len(entry["payload"]) + ENTRY_OVERHEAD for entry in entries)
        if chunk and (len(chunk) == PULL_CHUNK or size + weight > PULL_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append((document_id, entries))
        size += weight
    if chunk:
        yield chunk


def kafka_publish(broker_publish: Callable[..., Awaitable[Any]]) -> Publish:
    """Adapts a FastStream broker's `publish` to the relay, keeping the stored bytes exactly."""

    async def publish(entry: OutboxEntry) -> None:
        with tracing.continued(entry.get("traceparent")):
            await broker_publish(
                entry["payload"].encode(),
                topic=entry["topic"],
                key=entry["key"].encode(),
                headers={
                    "content-type": "application/json",
                    "event-type": entry["event_type"],
                    "event-id": entry["event_id"],
                },
                correlation_id=entry["correlation_id"],
            )
        # Debug: at intake rates an info line per event costs more than the publish itself; the
        # relay logs one line per pass.
        log.debug(
            "published",
            extra={
                "event_id": entry["event_id"],
                "event_type": entry["event_type"],
                "topic": entry["topic"],
            },
        )

    return publish
