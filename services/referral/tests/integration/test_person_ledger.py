"""The person ledger on the real database. Whether a referral is a repeat involvement depends on
when its person was referred before; the ledger answers that with `_id` operations only. A batch
of people (an import's) enters it in a few round trips however many people it holds, and gets
what entering them one by one would give."""

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_referral.adapters.mongo import (
    CLAIM_IN_FLIGHT,
    PERSON_REFERRALS,
    REFERRALS,
    MongoReferralRepository,
    ensure_indexes,
)
from cmhl_referral.application.ports import PersonRegistration
from cmhl_servicekit.crypto import FieldCipher
from cmhl_servicekit.outbox import Outbox
from cmhl_servicekit.testing import ReadRecorder

pytestmark = pytest.mark.integration

NOW = datetime(2018, 9, 30, 15, tzinfo=UTC)


def days_ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def repository_of(db: AsyncDatabase[dict[str, Any]]) -> MongoReferralRepository:
    return MongoReferralRepository(
        db, FieldCipher(os.urandom(32)), Outbox(db, lambda: None), search_key=b"k"
    )


async def ledger_of(db: AsyncDatabase[dict[str, Any]]) -> dict[str, str]:
    return {d["_id"]: d["referral_id"] async for d in db[PERSON_REFERRALS].find({})}


async def test_a_batch_gets_what_one_by_one_would(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    """A person with stored referrals gets their dates and the next slot; a new person the
    first; a slot whose referral was never stored (its write failed, over a minute ago) is
    skipped; a referral entered before (a re-run of an import) keeps its slot and takes no
    other."""
    await ensure_indexes(mongo_db)
    repository = repository_of(mongo_db)
    stored = [uuid.uuid4(), uuid.uuid4()]
    await mongo_db[REFERRALS].insert_many([{"_id": str(i)} for i in stored])
    never_stored, again = uuid.uuid4(), uuid.uuid4()
    for registration, earlier in [
        (PersonRegistration("a", stored[0], days_ago(100)), []),
        (PersonRegistration("a", stored[1], days_ago(50)), [days_ago(100)]),
        (PersonRegistration("c", never_stored, days_ago(30)), []),
        (PersonRegistration("d", again, days_ago(20)), []),
    ]:
        assert await repository.earlier_referrals_of_people([registration]) == [earlier]
    await left_by_a_failed_write(mongo_db, "c|1")
    batch = [
        PersonRegistration("a", uuid.uuid4(), days_ago(1)),
        PersonRegistration("b", uuid.uuid4(), days_ago(1)),
        PersonRegistration("c", uuid.uuid4(), days_ago(1)),
        PersonRegistration("d", again, days_ago(20)),
    ]
    assert await repository.earlier_referrals_of_people(batch) == [
        [days_ago(100), days_ago(50)],
        [],
        [],
        [],
    ]
    assert await ledger_of(mongo_db) == {
        "a|1": str(stored[0]),
        "a|2": str(stored[1]),
        "a|3": str(batch[0].referral_id),
        "b|1": str(batch[1].referral_id),
        "c|1": str(never_stored),
        "c|2": str(batch[2].referral_id),
        "d|1": str(again),
    }


async def left_by_a_failed_write(db: AsyncDatabase[dict[str, Any]], slot: str) -> None:
    claimed_at = datetime.now(UTC) - CLAIM_IN_FLIGHT - timedelta(seconds=1)
    await db[PERSON_REFERRALS].update_one({"_id": slot}, {"$set": {"claimed_at": claimed_at}})


async def test_a_referral_of_the_person_being_written_elsewhere_counts_as_earlier(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Two referrals of one person submitted at the same moment to two replicas: the one that
    claims its slot second sees the first before it is stored, so it is not mistaken for a
    first involvement. The caller's own batch is left to the caller, which counts the records
    it keeps (and not one it then refuses)."""
    await ensure_indexes(mongo_db)
    repository = repository_of(mongo_db)
    in_flight, second = uuid.uuid4(), uuid.uuid4()
    assert await repository.earlier_referrals_of_people(
        [PersonRegistration("g", in_flight, days_ago(3))]
    ) == [[]]
    # Not stored yet: the other replica is writing it.
    assert await repository.earlier_referrals_of_people(
        [PersonRegistration("g", second, days_ago(2))]
    ) == [[days_ago(3)]]
    own = uuid.uuid4()
    assert await repository.earlier_referrals_of_people(
        [PersonRegistration("h", own, days_ago(3))], counted_by_caller={own}
    ) == [[]]
    assert await repository.earlier_referrals_of_people(
        [PersonRegistration("h", uuid.uuid4(), days_ago(2))], counted_by_caller={own}
    ) == [[]]
    # Once its write failed long enough ago, an unstored referral no longer counts.
    await left_by_a_failed_write(mongo_db, "g|1")
    assert await repository.earlier_referrals_of_people(
        [PersonRegistration("g", uuid.uuid4(), days_ago(1))]
    ) == [[days_ago(2)]]


async def test_batches_racing_for_one_person_take_a_slot_each(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Two imports that hold the same person at once: a claim that finds its slot taken reads
    it and goes on to the next, so each referral gets a slot of its own."""
    await ensure_indexes(mongo_db)
    repository = repository_of(mongo_db)
    racers = [uuid.uuid4() for _ in range(4)]
    await asyncio.gather(
        *(
            repository.earlier_referrals_of_people(
                [
                    PersonRegistration("e", racer, days_ago(5)),
                    PersonRegistration(f"solo-{n}", uuid.uuid4(), days_ago(5)),
                ]
            )
            for n, racer in enumerate(racers)
        )
    )
    ledger = await ledger_of(mongo_db)
    assert sorted(v for k, v in ledger.items() if k.startswith("e|")) == sorted(map(str, racers))
    assert {k for k in ledger if k.startswith("e|")} == {"e|1", "e|2", "e|3", "e|4"}


async def test_a_batch_costs_the_same_reads_for_ten_people_or_three_hundred(
    recorded_db: tuple[AsyncDatabase[dict[str, Any]], ReadRecorder],
) -> None:
    """Each person referred once before: one read of everyone's first slots, one of their
    second, one check that the earlier referrals are stored, whatever the batch's size."""
    db, recorder = recorded_db
    await ensure_indexes(db)
    repository = repository_of(db)
    reads = []
    for size in (10, 300):
        earlier = [uuid.uuid4() for _ in range(size)]
        await db[REFERRALS].insert_many([{"_id": str(i)} for i in earlier])
        await repository.earlier_referrals_of_people(
            [PersonRegistration(f"{size}-{n}", i, days_ago(60)) for n, i in enumerate(earlier)]
        )
        recorder.reads.clear()
        found = await repository.earlier_referrals_of_people(
            [PersonRegistration(f"{size}-{n}", uuid.uuid4(), days_ago(1)) for n in range(size)]
        )
        assert found == [[days_ago(60)]] * size
        reads.append(len(recorder.reads))
    assert reads == [3, 3]


async def test_one_person_twice_in_a_call_is_refused(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Two referrals of one person in one call would race for one slot; the caller sends a
    person's referrals in order, one per call."""
    repository = repository_of(mongo_db)
    twice = [PersonRegistration("f", uuid.uuid4(), days_ago(n)) for n in (2, 1)]
    with pytest.raises(ValueError, match="once per call"):
        await repository.earlier_referrals_of_people(twice)
    assert await ledger_of(mongo_db) == {}
