"""The embedded outbox: events are stored inside the document whose change they describe, and a
relay publishes them afterwards. No transaction is needed (the test database has none), an HTTP
answer never claims an event that is not durable, and events written while Kafka is down are
published when it returns. Event ids are deterministic, so a relay crash between publishing and
clearing only re-publishes an id that consumers already drop."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

from pymongo.asynchronous.collection import AsyncCollection

from cmhl_contracts import IntegrationEvent
from cmhl_servicekit.consuming import TRANSIENT_ERRORS, safe_reason

log = logging.getLogger(__name__)

Document = dict[str, Any]


class OutboxEntry(TypedDict):
    event_id: str
    event_type: str
    topic: str
    key: str
    payload: str
    correlation_id: str


def outbox_entry(event: IntegrationEvent) -> OutboxEntry:
    return OutboxEntry(
        event_id=str(event.event_id),
        event_type=event.event_type,
        topic=type(event).topic(),
        key=event.kafka_key().decode(),
        payload=event.model_dump_json(),
        correlation_id=event.correlation_id,
    )


class AggregateLocks:
    """Serialises every writer of one document inside this process (use cases and the relay).

    FerretDB's updates are read-modify-write without a lock, so two concurrent writers of one
    document could lose an update; striped locks keep one writer per document at a time with
    bounded memory."""

    def __init__(self, stripes: int = 256) -> None:
        self._locks = [asyncio.Lock() for _ in range(stripes)]

    def __call__(self, aggregate_id: str) -> asyncio.Lock:
        return self._locks[hash(aggregate_id) % len(self._locks)]


Publish = Callable[[OutboxEntry], Awaitable[None]]


class OutboxRelay:
    """Publishes pending outbox entries of one collection, then clears them."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        publish: Publish,
        locks: AggregateLocks,
        *,
        poll_seconds: float = 1.0,
        batch_size: int = 200,
    ) -> None:
        self._collection = collection
        self._publish = publish
        self._locks = locks
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called after a write, so events go out at once instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                while await self.relay_once() == self._batch_size:
                    pass
            except TRANSIENT_ERRORS as exc:
                log.warning(
                    "outbox relay waiting for infrastructure", extra={"reason": safe_reason(exc)}
                )
            except Exception:
                log.exception("outbox relay pass failed; will retry")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)

    async def relay_once(self) -> int:
        """One pass: returns how many documents had pending events."""
        cursor = self._collection.find(
            {"outbox_pending": True}, {"outbox": 1}, limit=self._batch_size
        )
        documents = await cursor.to_list(None)
        for document in documents:
            published = []
            for entry in document.get("outbox", []):
                await self._publish(entry)
                published.append(entry["event_id"])
            await self._clear(document["_id"], set(published))
        return len(documents)

    async def _clear(self, document_id: Any, published: set[str]) -> None:
        async with self._locks(str(document_id)):
            current = await self._collection.find_one({"_id": document_id}, {"outbox": 1})
            if current is None:
                return
            remaining = [e for e in current.get("outbox", []) if e["event_id"] not in published]
            await self._collection.update_one(
                {"_id": document_id},
                {"$set": {"outbox": remaining, "outbox_pending": bool(remaining)}},
            )


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
