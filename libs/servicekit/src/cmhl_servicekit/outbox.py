"""The embedded outbox: events are stored inside the document whose change they describe, and a
relay publishes them afterwards.

No transaction is needed (the test database has none): the change and its events are one
single-document write, so an HTTP answer never claims an event that is not durable, and events
written while Kafka is down go out when it returns. Event ids are deterministic, so a relay crash
between publishing and forgetting only re-publishes ids that consumers already drop.

How the relay finds work without scanning the (large) document collections: before each write, a
small marker (`collection|id|version`) goes into `outbox_markers`. The relay reads markers, loads
each document by `_id`, publishes the entries of that version and deletes the marker. A marker
whose write never happened (the process died in between) is dropped once it is older than a
minute. FerretDB scans a collection for any query that is not by `_id`, so this keeps every
hot-path operation on `_id` or on a collection that stays small.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cmhl_contracts import IntegrationEvent
from cmhl_servicekit.consuming import TRANSIENT_ERRORS, safe_reason
from cmhl_servicekit.mongo import delete_by_ids

log = logging.getLogger(__name__)

Document = dict[str, Any]
MARKERS = "outbox_markers"


class OutboxEntry(TypedDict):
    event_id: str
    event_type: str
    topic: str
    key: str
    payload: str
    correlation_id: str
    version: int


def outbox_entry(event: IntegrationEvent, version: int) -> OutboxEntry:
    return OutboxEntry(
        event_id=str(event.event_id),
        event_type=event.event_type,
        topic=type(event).topic(),
        key=event.kafka_key().decode(),
        payload=event.model_dump_json(),
        correlation_id=event.correlation_id,
        version=version,
    )


class AggregateLocks:
    """Serialises every writer of one document inside this process.

    FerretDB's updates are read-modify-write without a lock, so two concurrent writers of one
    document could lose an update; striped locks keep one writer per document at a time with
    bounded memory."""

    def __init__(self, stripes: int = 256) -> None:
        self._locks = [asyncio.Lock() for _ in range(stripes)]

    def __call__(self, aggregate_id: str) -> asyncio.Lock:
        return self._locks[hash(aggregate_id) % len(self._locks)]


class Outbox:
    """Writes a document change together with its events, and tells the relay."""

    def __init__(self, db: AsyncDatabase[Document], wake: Callable[[], None]) -> None:
        self._db = db
        self._markers = db[MARKERS]
        self._wake = wake
        self.locks = AggregateLocks()

    async def insert(
        self, collection: str, document: Document, events: list[IntegrationEvent]
    ) -> bool:
        """Insert a new document (version 1) with its events; False if its `_id` exists."""
        stored = document | {"version": 1, "outbox": [outbox_entry(e, 1) for e in events]}
        async with self.locks(str(document["_id"])):
            await self._mark(collection, document["_id"], 1)
            try:
                await self._db[collection].insert_one(stored)
            except DuplicateKeyError:
                return False
        self._wake()
        return True

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
            await self._mark(collection, document_id, version)
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

    async def _mark(self, collection: str, document_id: Any, version: int) -> None:
        marker = {
            "_id": f"{collection}|{document_id}|{version}",
            "collection": collection,
            "document_id": document_id,
            "version": version,
            "created_at": datetime.now(UTC),
        }
        with contextlib.suppress(DuplicateKeyError):  # a retried write marks once
            await self._markers.insert_one(marker)


Publish = Callable[[OutboxEntry], Awaitable[None]]


class OutboxRelay:
    """Publishes the events of marked document versions, then forgets the markers."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        publish: Publish,
        *,
        poll_seconds: float = 1.0,
        batch_size: int = 500,
        orphan_after: timedelta = timedelta(seconds=60),
    ) -> None:
        self._db = db
        self._publish = publish
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._orphan_after = orphan_after
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called after a write, so events go out at once instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await self.relay_once() == self._batch_size:
                    pass
            except TRANSIENT_ERRORS as exc:
                log.warning(
                    "outbox relay waiting for infrastructure", extra={"reason": safe_reason(exc)}
                )
            except Exception:
                log.exception("outbox relay pass failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)

    async def relay_once(self) -> int:
        """One pass over the markers; returns how many there were."""
        markers = await self._db[MARKERS].find({}, limit=self._batch_size).to_list(None)
        # Oldest first, and a document's versions in order: one aggregate's events stay ordered.
        markers.sort(key=lambda m: (m["created_at"], m["version"]))
        now = datetime.now(UTC)
        done: list[str] = []
        for marker in markers:
            document = await self._db[marker["collection"]].find_one(
                {"_id": marker["document_id"]}, {"outbox": 1, "version": 1}
            )
            if document is None or document.get("version", 0) < marker["version"]:
                if now - marker["created_at"] < self._orphan_after:
                    continue  # the write may still be landing
                log.warning(
                    "dropping an outbox marker whose write never happened",
                    extra={"reason": marker["_id"].split("|")[0]},
                )
            else:
                for entry in document.get("outbox", []):
                    if entry.get("version") == marker["version"]:
                        await self._publish(entry)
            done.append(marker["_id"])
        await delete_by_ids(self._db[MARKERS], done)
        return len(markers)


def kafka_publish(broker_publish: Callable[..., Awaitable[Any]]) -> Publish:
    """Adapts a FastStream broker's `publish` to the relay, keeping the stored bytes exactly."""

    async def publish(entry: OutboxEntry) -> None:
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
        log.info(
            "published",
            extra={
                "event_id": entry["event_id"],
                "event_type": entry["event_type"],
                "topic": entry["topic"],
            },
        )

    return publish
