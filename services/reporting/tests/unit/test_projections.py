"""Pure projections: keyed facts make every count exact under redelivery."""

from typing import Any

from cmhl_contracts import ReferralCreatedV1, TrainingCompletedV1
from cmhl_reporting.application.projector import Projector
from cmhl_reporting.domain.projections import (
    REFERRALS,
    TRAINING_SESSIONS,
    FactWrite,
    project,
)
from cmhl_servicekit.consuming import Delivery

from ..conftest import add_trainings, make_stream


class InMemoryFactStore:
    """Mimics the Mongo store's rules: first write of a key wins; higher revisions replace."""

    def __init__(self) -> None:
        self.facts: dict[tuple[str, str], dict[str, Any]] = {}

    async def apply(self, writes: list[tuple[FactWrite, dict[str, Any]]]) -> None:
        for write, _ in writes:
            key = (write.collection, write.key)
            current = self.facts.get(key)
            if current is None or (
                write.revision is not None and current.get("revision", 0) < write.revision
            ):
                self.facts[key] = write.fields | {"revision": write.revision}


def test_a_referral_becomes_one_fact_keyed_by_its_id() -> None:
    stream = make_stream(referrals=3, seed=1)
    event = next(e for e in stream.events if isinstance(e, ReferralCreatedV1))
    [fact] = project(event)
    assert (fact.collection, fact.key) == (REFERRALS, str(event.referral_id))
    assert fact.fields["month"] == event.referred_at.strftime("%Y-%m")
    assert project(event) == [fact]


async def test_replaying_a_stream_twice_changes_nothing() -> None:
    stream = make_stream(referrals=50, seed=2)
    add_trainings(stream, sessions=5, seed=3)
    store = InMemoryFactStore()
    projector = Projector(store)
    deliveries = [Delivery(e, "t", 0, n) for n, e in enumerate(stream.events)]
    await projector.apply(deliveries)
    once = dict(store.facts)
    await projector.apply(deliveries[::-1])
    assert store.facts == once
    referrals = [f for (c, _), f in store.facts.items() if c == REFERRALS]
    assert len(referrals) == sum(stream.by_source.values())


async def test_a_corrected_roster_replaces_the_earlier_one_in_any_order() -> None:
    stream = make_stream(referrals=1, seed=4)
    add_trainings(stream, sessions=1, seed=5)
    original = next(e for e in stream.events if isinstance(e, TrainingCompletedV1))
    corrected = original.model_copy(
        update={
            "revision": 2,
            "officer_ids": original.officer_ids[:4],
            "officer_agency_ids": original.officer_agency_ids[:4],
        }
    )
    for order in ([original, corrected], [corrected, original]):
        store = InMemoryFactStore()
        await Projector(store).apply([Delivery(e, "t", 0, n) for n, e in enumerate(order)])
        fact = store.facts[(TRAINING_SESSIONS, str(original.session_id))]
        assert fact["officer_ids"] == original.officer_ids[:4]
