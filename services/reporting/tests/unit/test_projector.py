"""The projector on in-memory views: exact under duplicates, replays, crashes and two writers."""

import random
from typing import Any

import pytest

from cmhl_contracts import TrainingCompletedV1
from cmhl_reporting.application.projector import Projector
from cmhl_reporting.domain.views import raw_statewide
from cmhl_reporting.domain.window import parse_period
from cmhl_servicekit.consuming import Delivery

from ..conftest import (
    CHICAGO,
    add_trainings,
    comparable,
    expected_raw,
    make_stream,
    with_duplicates,
)
from .fakes import Crash, InMemoryViewStore, by_topic, deliveries


def batches(items: list[Delivery[Any]], rng: random.Random) -> list[list[Delivery[Any]]]:
    """Random batch sizes per topic, as a consumer's polls hand them out: in order within a
    topic, interleaved at random across topics (each topic has its own consumer)."""
    queues = []
    for group in by_topic(items).values():
        queue, start = [], 0
        while start < len(group):
            size = rng.randrange(1, 40)
            queue.append(group[start : start + size])
            start += size
        queues.append(queue)
    out = []
    while queues:
        queue = rng.choice(queues)
        out.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return out


def view(store: InMemoryViewStore, month: str) -> dict[str, Any]:
    return comparable(raw_statewide(store.counters(), store.training_facts(), parse_period(month)))


@pytest.fixture
def stream_and_truth() -> tuple[Any, list[Delivery[Any]], dict[str, Any]]:
    stream = make_stream(referrals=120, seed=5)
    add_trainings(stream, sessions=8, seed=6)
    sent = with_duplicates(stream.events, share=0.05, seed=7)
    return stream, deliveries(sent), comparable(expected_raw(stream.events))


async def test_views_equal_the_distinct_events_with_duplicates(stream_and_truth: Any) -> None:
    stream, items, truth = stream_and_truth
    store = InMemoryViewStore()
    projector = Projector(store, zone=CHICAGO, wait_for_other_writer=0)
    for batch in batches(items, random.Random(1)):
        await projector.apply(batch)
    assert view(store, stream.month) == truth
    assert truth["referrals"]["total"] == 120


async def test_redelivery_after_a_crash_between_write_and_commit(stream_and_truth: Any) -> None:
    """Every batch is applied, then a restarted process re-reads from an older offset."""
    stream, items, truth = stream_and_truth
    store = InMemoryViewStore()
    for attempt, batch in enumerate(batches(items, random.Random(2))):
        await Projector(store, zone=CHICAGO, wait_for_other_writer=0).apply(batch)
        if attempt % 3 == 0:  # the commit was lost: a new process gets the batch again
            await Projector(store, zone=CHICAGO, wait_for_other_writer=0).apply(batch)
    assert view(store, stream.month) == truth


async def test_a_crash_after_the_claims_and_a_replay_with_other_batches(
    stream_and_truth: Any,
) -> None:
    """Killed mid-batch (claims written, no segment), then replayed in shorter batches."""
    stream, items, truth = stream_and_truth
    store = InMemoryViewStore()
    for topic, topic_items in by_topic(items).items():
        half = len(topic_items) // 2
        if topic == TrainingCompletedV1.topic():  # rosters are facts, not claims
            await Projector(store, zone=CHICAGO).apply(topic_items)
            continue
        store.crash_after_claims = True
        with pytest.raises(Crash):
            await Projector(store, zone=CHICAGO, wait_for_other_writer=0).apply(topic_items)
        store.crash_after_claims = False
        replay = Projector(store, zone=CHICAGO, wait_for_other_writer=0)
        for start in range(0, half, 7):
            await replay.apply(topic_items[start : start + 7])
        await replay.apply(topic_items[half:])
    assert view(store, stream.month) == truth


async def test_two_replicas_applying_the_same_partitions(stream_and_truth: Any) -> None:
    """A rebalance: the old owner still writes what the new owner re-reads, interleaved."""
    stream, items, truth = stream_and_truth
    store = InMemoryViewStore()
    old, new = (
        Projector(store, zone=CHICAGO, wait_for_other_writer=0),
        Projector(store, zone=CHICAGO, wait_for_other_writer=0),
    )
    rng = random.Random(3)
    for batch in batches(items, rng):
        await old.apply(batch)
        cut = rng.randrange(len(batch))
        await new.apply(batch[cut:] if rng.random() < 0.5 else batch)
    assert view(store, stream.month) == truth


async def test_a_corrected_roster_replaces_the_earlier_one_in_any_order() -> None:
    stream = make_stream(referrals=1, seed=4, lifecycle=False)
    add_trainings(stream, sessions=6, seed=8)
    trainings = [e for e in stream.events if type(e).__name__ == "TrainingCompletedV1"]
    for order in (trainings, trainings[::-1]):
        store = InMemoryViewStore()
        await Projector(store, zone=CHICAGO).apply(deliveries(order))
        got = raw_statewide(store.counters(), store.training_facts(), parse_period(stream.month))
        want = expected_raw(trainings)["trainings"]
        assert (got["trainings"]["sessions"], got["trainings"]["officers_trained"]) == (
            want["sessions"],
            want["officers_trained"],
        )
        assert any(t.revision == 2 for t in store.training_facts())
