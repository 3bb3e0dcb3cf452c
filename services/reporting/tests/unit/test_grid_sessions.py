"""The publication grid as the public API serves it: one plan until the counters change, and
training sessions (not on the grid) current even when no referral has come since they were."""

from datetime import UTC, datetime
from typing import Any

from cmhl_reporting.application.grid import PublicationGrid
from cmhl_reporting.application.projector import Projector
from cmhl_reporting.application.queries import Snapshot
from cmhl_reporting.domain.projections import TrainingFact
from cmhl_reporting.domain.views import Counters
from cmhl_servicekit.consuming import Delivery

from ..conftest import CHICAGO, Stream, add_trainings, make_stream
from .fakes import InMemoryViewStore, by_topic, deliveries


class StoreReader:
    """What the service's reader hands out: the live counters and the sessions as last read."""

    def __init__(self, store: InMemoryViewStore) -> None:
        self.counters = Counters()
        self.trainings: list[TrainingFact] = []
        self._store = store
        self._applied: set[tuple[str, int, int]] = set()

    def read(self) -> None:
        for key, segment in self._store.segments.items():
            if key[1:] not in self._applied:  # (topic, partition, first offset)
                self._applied.add(key[1:])
                self.counters.add(segment.counts)
        # A new list when the sessions changed, as the MongoDB reader does.
        facts = self._store.training_facts()
        if facts != self.trainings:
            self.trainings = facts

    async def current(self) -> Snapshot:
        return Snapshot(1, self.counters, self.trainings, datetime.now(UTC))


async def _project(projector: Projector, items: list[Delivery[Any]]) -> None:
    for of_topic in by_topic(items).values():
        await projector.apply(of_topic)


async def test_a_session_reported_after_the_last_referral_is_served_at_once() -> None:
    store = InMemoryViewStore()
    projector = Projector(store, zone=CHICAGO, wait_for_other_writer=0)
    referrals = make_stream(referrals=60, seed=11, lifecycle=False)
    await _project(projector, deliveries(referrals.events))
    reader = StoreReader(store)
    reader.read()
    # Five minutes between plans, as in production.
    grid = PublicationGrid(reader, CHICAGO, refresh_seconds=300)
    before = await grid.statewide("all", None, None)
    plan = (await grid.published()).plan
    assert before["referrals"]["total"] == 60
    assert before["trainings"]["sessions"] == 0

    sessions = Stream(referrals.month)
    add_trainings(sessions, sessions=5, seed=4, revise=False)
    await _project(projector, deliveries(sessions.events))
    reader.read()

    after = await grid.statewide("all", None, None)
    assert after["trainings"]["sessions"] == 5
    assert after["referrals"] == before["referrals"]
    # The counters did not move: the same plan serves the answer, nothing was rebuilt.
    assert (await grid.published()).plan is plan


async def test_a_referral_waits_for_the_next_plan_and_its_sessions_with_it() -> None:
    store = InMemoryViewStore()
    projector = Projector(store, zone=CHICAGO, wait_for_other_writer=0)
    first = make_stream(referrals=40, seed=12, lifecycle=False)
    later = make_stream(referrals=30, seed=13, lifecycle=False)
    add_trainings(later, sessions=3, seed=5, revise=False)
    # One stream of deliveries (offsets go on), applied in two steps.
    every = deliveries(first.events + later.events)
    await _project(projector, every[: len(first.events)])
    reader = StoreReader(store)
    reader.read()
    grid = PublicationGrid(reader, CHICAGO, refresh_seconds=300)
    assert (await grid.statewide("all", None, None))["referrals"]["total"] == 40

    # New referrals and new sessions: the plan is not due yet, so the answer stays one read's
    # (40 referrals, no sessions) rather than new sessions beside old referrals.
    await _project(projector, every[len(first.events) :])
    reader.read()
    held = await grid.statewide("all", None, None)
    assert held["referrals"]["total"] == 40
    assert held["trainings"]["sessions"] == 0
