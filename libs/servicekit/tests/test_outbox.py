"""The embedded outbox and its relay on the real database: order per aggregate after a backlog
larger than a page, trimming, and the crash and conflict paths."""

import asyncio
import contextlib
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_contracts import FollowUpDueV1, IntegrationEvent
from cmhl_servicekit.outbox import (
    MARKERS,
    PULL_BYTES,
    PULL_CHUNK,
    OutboxEntry,
    OutboxRelay,
    pull_chunks,
)
from cmhl_servicekit.testing import eventually

pytestmark = pytest.mark.integration

COLLECTION = "things"


def event(aggregate: str, n: int) -> IntegrationEvent:
    now = datetime.now(UTC)
    return FollowUpDueV1.create(
        about=(aggregate, str(n)),
        producer="test",
        correlation_id=f"{aggregate}/{n}",
        follow_up_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{aggregate}/{n}"),
        referral_id=uuid.uuid5(uuid.NAMESPACE_URL, aggregate),
        liaison_id="l",
        due_at=now,
        referred_at=now,
    )


class Published:
    """A publisher that keeps what it sent and can fail on chosen calls."""

    def __init__(self) -> None:
        self.sent: list[OutboxEntry] = []
        self.fail_on: set[int] = set()
        self.calls = 0

    async def __call__(self, entry: OutboxEntry) -> None:
        self.calls += 1
        if self.calls in self.fail_on:
            raise ConnectionError("broker went away")
        self.sent.append(entry)

    def versions(self) -> dict[str, list[int]]:
        by_aggregate: dict[str, list[int]] = defaultdict(list)
        for entry in self.sent:
            by_aggregate[entry["correlation_id"].split("/")[0]].append(entry["version"])
        return by_aggregate


async def write_history(relay: OutboxRelay, aggregates: list[str], changes: int) -> None:
    """Each aggregate created, then changed `changes` times, interleaved across aggregates."""
    outbox = relay.outbox()
    for name in aggregates:
        assert await outbox.insert(COLLECTION, {"_id": name}, [event(name, 1)])
    for version in range(1, changes + 1):
        for name in aggregates:
            saved = await outbox.update(
                COLLECTION, name, version, {"n": version}, [event(name, version + 1)]
            )
            assert saved


def first_sends_in_order(versions: list[int]) -> list[int]:
    """The versions in the order they were first sent (a re-send is a duplicate id)."""
    seen: list[int] = []
    for version in versions:
        if version not in seen:
            seen.append(version)
    return seen


async def drain(relay: OutboxRelay) -> None:
    for _ in range(1_000):
        if await relay.relay_once() == 0:
            return
    raise AssertionError("the relay never ran out of markers")


async def test_a_backlog_larger_than_a_page_leaves_in_order_and_is_trimmed(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    published = Published()
    relay = OutboxRelay(mongo_db, published, batch_size=7)
    aggregates = ["a", "b", "c"]
    await write_history(relay, aggregates, changes=20)  # 63 markers, 9 pages
    await drain(relay)
    for name in aggregates:
        assert published.versions()[name] == list(range(1, 22)), name
        stored = await mongo_db[COLLECTION].find_one({"_id": name})
        assert stored is not None
        assert stored["outbox"] == []
        assert stored["version"] == 21
    assert await mongo_db[MARKERS].count_documents({}) == 0


async def test_a_crash_while_publishing_sends_again_in_order(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    published = Published()
    published.fail_on = {3, 9}
    relay = OutboxRelay(mongo_db, published, batch_size=5)
    await write_history(relay, ["a", "b"], changes=6)
    for _ in range(50):
        try:
            if await relay.relay_once() == 0:
                break
        except ConnectionError:
            continue
    for name, versions in published.versions().items():
        assert first_sends_in_order(versions) == list(range(1, 8)), name
    assert await mongo_db[MARKERS].count_documents({}) == 0


async def test_a_writer_between_publish_and_trim_keeps_its_events(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """The document moves on while its entries are being sent: only the entries sent are pulled,
    so the new version's event stays and goes out after the earlier ones."""
    relay = OutboxRelay(mongo_db, lambda entry: asyncio.sleep(0), batch_size=50)
    outbox = relay.outbox()
    published = Published()

    async def publish_then_write(entry: OutboxEntry) -> None:
        await published(entry)
        if entry["version"] == 1 and len(published.sent) == 1:
            # Not under the relay's lock: another process's writer (a second replica).
            other = OutboxRelay(mongo_db, published).outbox()
            assert await other.update(COLLECTION, "a", 1, {"n": 1}, [event("a", 2)])

    relay._publish = publish_then_write
    assert await outbox.insert(COLLECTION, {"_id": "a"}, [event("a", 1)])
    await drain(relay)
    assert published.versions()["a"] == [1, 2]
    stored = await mongo_db[COLLECTION].find_one({"_id": "a"})
    assert stored is not None
    assert stored["outbox"] == []


async def test_a_marker_whose_write_never_happened_is_dropped_after_a_while(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    published = Published()
    relay = OutboxRelay(mongo_db, published, orphan_after=timedelta(seconds=0))
    await mongo_db[MARKERS].insert_one(
        {
            "_id": f"{COLLECTION}|ghost|1",
            "collection": COLLECTION,
            "document_id": "ghost",
            "version": 1,
            "created_at": datetime.now(UTC) - timedelta(seconds=1),
        }
    )
    assert await relay.relay_once() == 1
    assert await mongo_db[MARKERS].count_documents({}) == 0
    assert published.sent == []


async def test_many_inserts_in_one_go_store_each_new_document_once(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Markers then documents, two round trips: a document that exists keeps its own events,
    and each new one's event goes out once, its outbox trimmed."""
    published = Published()
    relay = OutboxRelay(mongo_db, published, batch_size=50)
    outbox = relay.outbox()
    assert await outbox.insert(COLLECTION, {"_id": "b"}, [event("b", 1)])
    writes: list[tuple[dict[str, Any], list[IntegrationEvent]]] = [
        ({"_id": name, "n": 0}, [event(name, 7)]) for name in ("a", "b", "c")
    ]
    # A redelivered message writes "c" twice in one go: it is stored once, by the first.
    twice = [*writes, ({"_id": "c", "n": 1}, [event("c", 8)])]
    assert await outbox.insert_many(COLLECTION, twice) == [True, False, True, False]
    assert await outbox.insert_many(COLLECTION, []) == []
    await drain(relay)
    sent = sorted((entry["correlation_id"], entry["version"]) for entry in published.sent)
    assert sent == [("a/7", 1), ("b/1", 1), ("c/7", 1)]
    async for stored in mongo_db[COLLECTION].find({}):
        assert stored["outbox"] == [], stored["_id"]
        assert stored["version"] == 1
    assert await mongo_db[MARKERS].count_documents({}) == 0


async def test_a_writer_after_the_page_was_read_keeps_its_events_in_order(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """A pass reads its page's documents at its start; one of them moves on (a writer of this
    process, a task that may land before, while or after its turn comes, but not during the
    pass's pull, whose lock it shares). Its new entry stays (only what was sent is pulled) and
    goes out after the first, each once."""
    published = Published()
    relay = OutboxRelay(mongo_db, published, batch_size=50)
    outbox = relay.outbox()
    for name in ("a", "b"):
        assert await outbox.insert(COLLECTION, {"_id": name}, [event(name, 1)])
    writes: list[asyncio.Task[bool]] = []

    async def publish_then_write_the_other(entry: OutboxEntry) -> None:
        await published(entry)
        name = entry["correlation_id"].split("/")[0]
        other = "b" if name == "a" else "a"
        if len(published.sent) == 1:
            # A task: the writer lands whenever the relay yields, as a request's would.
            change = outbox.update(COLLECTION, other, 1, {"n": 1}, [event(other, 2)])
            writes.append(asyncio.create_task(change))

    relay._publish = publish_then_write_the_other
    await relay.relay_once()
    assert await writes[0]
    await drain(relay)
    first = published.sent[0]["correlation_id"].split("/")[0]
    moved = "b" if first == "a" else "a"
    assert published.versions()[first] == [1]
    assert published.versions()[moved] == [1, 2]
    for name in ("a", "b"):
        stored = await mongo_db[COLLECTION].find_one({"_id": name})
        assert stored is not None
        assert stored["outbox"] == []
    assert await mongo_db[MARKERS].count_documents({}) == 0


async def test_a_publish_that_fails_mid_pass_does_not_send_again_what_went_out(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Documents of different keys go side by side and are pulled together at the end of the
    pass; when one key's publish fails, the others' sent entries are still pulled, so the next
    pass sends only what failed."""
    published = Published()
    published.fail_on = {1}
    relay = OutboxRelay(mongo_db, published, batch_size=50)
    outbox = relay.outbox()
    aggregates = [f"agg-{n}" for n in range(6)]
    for name in aggregates:
        assert await outbox.insert(COLLECTION, {"_id": name}, [event(name, 1)])
    with pytest.raises(ConnectionError):
        await relay.relay_once()
    assert len(published.sent) == 5
    await drain(relay)
    assert {name: versions for name, versions in published.versions().items()} == {
        name: [1] for name in aggregates
    }
    async for stored in mongo_db[COLLECTION].find({}):
        assert stored["outbox"] == [], stored["_id"]
    assert await mongo_db[MARKERS].count_documents({}) == 0


async def test_a_document_whose_markers_name_different_keys_is_sent_once_per_pass(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Markers of one document in one page went under each marker's key, so the document was
    relayed once per key, its entries sent twice (a training session created without events,
    then completed, did this). A document goes under one key now."""
    published = Published()
    relay = OutboxRelay(mongo_db, published, batch_size=50)
    outbox = relay.outbox()
    assert await outbox.insert(COLLECTION, {"_id": "a"}, [event("a", 1)])
    # A later write whose event has another key (or a marker of an earlier release, with none).
    assert await outbox.update(COLLECTION, "a", 1, {"n": 1}, [event("other", 2)])
    await mongo_db[MARKERS].insert_one(
        {
            "_id": f"{COLLECTION}|a|0",
            "collection": COLLECTION,
            "document_id": "a",
            "version": 0,
            "key": None,
            "created_at": datetime.now(UTC),
        }
    )
    assert await relay.relay_once() == 3
    assert sorted(e["correlation_id"] for e in published.sent) == ["a/1", "other/2"]
    await drain(relay)
    assert len(published.sent) == 2


async def test_a_write_without_events_leaves_no_marker(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    relay = OutboxRelay(mongo_db, Published())
    outbox = relay.outbox()
    assert await outbox.insert(COLLECTION, {"_id": "quiet"}, [])
    assert await outbox.update(COLLECTION, "quiet", 1, {"n": 1}, [])
    assert await outbox.insert_many(COLLECTION, [({"_id": "quiet-2"}, [])]) == [True]
    assert await mongo_db[MARKERS].count_documents({}) == 0


async def test_a_document_cut_off_mid_publish_sends_only_its_rest_next_pass(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Its first entry was acknowledged, the second failed: the first is pulled with the pass,
    so the next pass sends the second alone, each once and in order."""
    published = Published()
    published.fail_on = {2}
    relay = OutboxRelay(mongo_db, published, batch_size=50)
    await write_history(relay, ["a"], changes=2)  # versions 1..3, one page
    with pytest.raises(ConnectionError):
        await relay.relay_once()
    stored = await mongo_db[COLLECTION].find_one({"_id": "a"})
    assert stored is not None
    assert [entry["version"] for entry in stored["outbox"]] == [2, 3]
    await drain(relay)
    assert published.versions()["a"] == [1, 2, 3]


class UpdateCounter(monitoring.CommandListener):
    """Counts the update commands a client sends, and the statements in each."""

    def __init__(self) -> None:
        self.updates: list[int] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "update":
            self.updates.append(len(event.command["updates"]))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_the_trim_is_one_update_per_chunk_and_pulls_only_each_documents_own_entries(
    mongo_uri: str,
) -> None:
    """40 documents sent in one pass are trimmed by two update statements (chunks of 32), not
    40; each loses exactly the entries sent from it, and an entry written after the pass read
    the document stays for the next pass."""
    counter = UpdateCounter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_uri, tz_aware=True, event_listeners=[counter]
    )
    db = client[f"test_{uuid.uuid4().hex[:12]}"]
    try:
        published = Published()
        late_writer_done = asyncio.Event()

        async def publish_then_write(entry: OutboxEntry) -> None:
            await published(entry)
            if entry["correlation_id"] == "doc-07/2" and not late_writer_done.is_set():
                late_writer_done.set()
                # Another writer moves doc-07 on while the pass is still sending.
                assert await outbox.update(COLLECTION, "doc-07", 1, {"n": 1}, [event("doc-07", 3)])

        relay = OutboxRelay(db, publish_then_write)
        outbox = relay.outbox()
        names = [f"doc-{n:02}" for n in range(40)]
        assert all(
            await outbox.insert_many(
                COLLECTION, [({"_id": name}, [event(name, 1), event(name, 2)]) for name in names]
            )
        )
        counter.updates.clear()
        assert await relay.relay_once() == 40
        trims = counter.updates[1:]  # the racing writer's own update comes first
        assert trims == [1, 1]
        for name in names:
            stored = await db[COLLECTION].find_one({"_id": name})
            assert stored is not None
            pending = [e["correlation_id"] for e in stored["outbox"]]
            assert pending == (["doc-07/3"] if name == "doc-07" else []), name
        await drain(relay)
        assert len(published.sent) == 81
        assert len({e["event_id"] for e in published.sent}) == 81
    finally:
        await client.drop_database(db.name)
        await client.close()


def test_a_trim_stays_far_below_a_commands_size_limit_whatever_the_backlog() -> None:
    """After a long outage documents can hold many entries: an update carries at most
    PULL_CHUNK documents and PULL_BYTES of entries, a document over that goes alone, and a
    document that sent nothing is not updated."""

    def entries(count: int, payload_bytes: int) -> list[OutboxEntry]:
        entry = OutboxEntry(
            event_id="e",
            event_type="t",
            topic="t",
            key="k",
            payload="x" * payload_bytes,
            correlation_id="c",
            version=1,
        )
        return [entry] * count

    small = [(f"s{n}", entries(2, 1_000)) for n in range(70)]
    assert [len(chunk) for chunk in pull_chunks(small)] == [PULL_CHUNK, PULL_CHUNK, 6]

    busy = [(f"b{n}", entries(400, 3_000)) for n in range(10)]  # about 1.4 MB each
    chunks = list(pull_chunks([("idle", []), *busy, ("huge", entries(2_000, 3_000))]))
    assert [[document for document, _ in chunk] for chunk in chunks][-1] == ["huge"]
    assert sum(len(chunk) for chunk in chunks) == 11
    for chunk in chunks[:-1]:
        assert sum(len(e["payload"]) for _, sent in chunk for e in sent) <= PULL_BYTES
    assert all(document != "idle" for chunk in chunks for document, _ in chunk)


async def test_writes_under_load_share_a_pass_and_a_lone_write_goes_at_once(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """A pass costs four round trips whatever it carries: the relay's passes are spaced by its
    interval, so a burst of writes goes out in a few passes, not one per write; after a quiet
    spell a write's pass starts at once."""
    loop = asyncio.get_running_loop()
    interval = 1.0
    published = Published()
    relay = OutboxRelay(mongo_db, published, pass_interval_seconds=interval)
    passes: list[float] = []
    relay_once = relay.relay_once

    async def counted() -> int:
        passes.append(loop.time())
        return await relay_once()

    relay.relay_once = counted  # type: ignore[method-assign]
    outbox = relay.outbox()
    running = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(interval * 1.2)  # the relay's first pass is an interval behind
        quiet = len(passes)
        written = loop.time()
        assert await outbox.insert(COLLECTION, {"_id": "lone"}, [event("lone", 1)])

        async def sent(count: int) -> bool:
            return len(published.sent) == count

        await eventually(lambda: sent(1), timeout=10, interval=0.01)
        assert passes[quiet] - written < interval / 2

        burst_started, before = loop.time(), len(passes)
        for n in range(20):
            assert await outbox.insert(COLLECTION, {"_id": f"b{n}"}, [event(f"b{n}", 1)])
            await asyncio.sleep(0.02)
        burst = loop.time() - burst_started
        await eventually(lambda: sent(21), timeout=10, interval=0.01)
        # One pass per interval while the writes land, and one for the last of them.
        assert len(passes) - before <= burst / interval + 2, (len(passes) - before, burst)

        async def markers_forgotten() -> bool:
            return await mongo_db[MARKERS].count_documents({}) == 0

        await eventually(markers_forgotten, timeout=10, interval=0.05)
        assert len(published.sent) == 21  # nothing sent twice
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
