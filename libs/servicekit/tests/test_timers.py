"""Durable timers: what fires, what is dropped, and what a crash in the middle leaves."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_servicekit.timers import (
    ORPHAN_TIMER_AGE,
    InMemoryTimerStore,
    MongoTimerStore,
    Timer,
    TimerStore,
    fire_due,
    orphaned,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def timer(n: int, minutes: int) -> Timer:
    return Timer(f"t{n}", "due", f"s{n}", NOW + timedelta(minutes=minutes), NOW)


async def contract(store: TimerStore) -> None:
    await store.schedule([timer(1, -5), timer(2, -10), timer(3, 5)])
    await store.schedule([Timer("t1", "due", "changed", NOW, NOW)])  # scheduled before: kept
    due = await store.due(NOW, limit=10)
    assert [t.timer_id for t in due] == ["t2", "t1"]
    assert due[1].subject_id == "s1"
    assert [t.timer_id for t in await store.due(NOW, limit=1)] == ["t2"]
    fired: list[str] = []

    async def fire(t: Timer, now: datetime) -> bool:
        fired.append(t.timer_id)
        return t.timer_id != "t1"  # t1 waits for something: looked at again next pass

    assert await fire_due(store, fire, NOW, limit=10) == 1
    assert [t.timer_id for t in await store.due(NOW, limit=10)] == ["t1"]
    assert sorted(fired) == ["t1", "t2"]
    assert await fire_due(store, fire, NOW + timedelta(minutes=10), limit=10) == 1
    assert [t.timer_id for t in await store.due(NOW + timedelta(days=1), limit=10)] == ["t1"]


async def test_the_in_memory_store_keeps_the_contract() -> None:
    await contract(InMemoryTimerStore())


@pytest.mark.integration
async def test_the_mongo_store_keeps_the_contract(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    store = MongoTimerStore(mongo_db)
    await store.ensure_indexes()
    await contract(store)


async def test_a_pass_that_fails_drops_nothing_and_fires_again() -> None:
    store = InMemoryTimerStore()
    await store.schedule([timer(1, -1), timer(2, -1)])
    fired: list[str] = []

    async def crash_on_t2(t: Timer, now: datetime) -> bool:
        fired.append(t.timer_id)
        if t.timer_id == "t2":
            raise ConnectionError("database went away")
        return True

    with pytest.raises(ConnectionError):
        await fire_due(store, crash_on_t2, NOW, limit=10)
    # Nothing dropped: t1 fires again (its claim makes that harmless), then both go.
    assert len(await store.due(NOW, limit=10)) == 2

    async def fine(t: Timer, now: datetime) -> bool:
        fired.append(t.timer_id)
        return True

    assert await fire_due(store, fine, NOW, limit=10) == 2
    assert fired.count("t1") == 2
    assert await store.due(NOW, limit=10) == []


def test_a_timer_without_its_subject_is_settled_only_once_it_is_old() -> None:
    """A subject may still be landing (written after its timer): looked at again until the
    timer is ORPHAN_TIMER_AGE old, then taken for a write that failed."""
    written = datetime(2026, 12, 3, 2, tzinfo=UTC)
    timer = Timer("t", "k", "s", fire_at=written, created_at=written)
    assert not orphaned(timer, written)
    assert not orphaned(timer, written + ORPHAN_TIMER_AGE)
    assert orphaned(timer, written + ORPHAN_TIMER_AGE + timedelta(milliseconds=1))
