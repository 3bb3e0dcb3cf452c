"""Follow-up service on the real stack: scheduling from referral-created, due events on time."""

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from cmhl_contracts import FollowUpDueV1, FollowUpScheduledV1, ReferralCreatedV1
from cmhl_followup.bootstrap import build
from cmhl_followup.config import FollowUpSettings
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.testing import KafkaProbe, eventually, infra_settings, running_app

from ..conftest import referral_created as make_referral_created

pytestmark = pytest.mark.integration

# The tests read the referral topic from its start, so it holds other tests' referrals too;
# a day in 2010 that no other test uses keeps every due count here about this test's referrals.
REFERRED_AT = datetime(2010, 1, 1, 9, 30, tzinfo=UTC) + timedelta(days=random.randrange(300))


def referral_created(referral_id: uuid.UUID) -> ReferralCreatedV1:
    return make_referral_created(referral_id, REFERRED_AT)


def for_referral(referral_id: uuid.UUID) -> Any:
    return lambda record: record.key == str(referral_id).encode()


@pytest.fixture
def settings(kafka_bootstrap: str, mongo_uri: str) -> FollowUpSettings:
    # A long scan interval: the test drives the due scan itself with a simulated clock.
    return FollowUpSettings(**infra_settings(kafka_bootstrap, mongo_uri), due_scan_seconds=3600)


async def test_referral_schedules_three_follow_ups_and_each_comes_due_once(
    settings: FollowUpSettings, kafka_probe: KafkaProbe, mongo_uri: str
) -> None:
    referral_id = uuid.uuid4()
    clock = AdjustableClock(REFERRED_AT + timedelta(hours=1))
    event = referral_created(referral_id)
    app = build(settings, clock=clock)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    follow_ups = mongo[settings.mongo_database]["follow_ups"]
    claims = mongo[settings.mongo_database]["follow_ups_due"]
    try:
        async with running_app(app, from_now=True):
            for _ in range(2):  # a redelivered referral schedules nothing more
                await kafka_probe.send(
                    ReferralCreatedV1.topic(),
                    event.model_dump_json().encode(),
                    key=event.kafka_key(),
                )

            async def scheduled() -> bool:
                return await follow_ups.count_documents({"referral_id": str(referral_id)}) == 3

            await eventually(scheduled, timeout=60)
            service = app.state.followups

            async def due_after_scan() -> int:
                await service.emit_due()
                return await claims.count_documents({"referral_id": str(referral_id)})

            assert await due_after_scan() == 0  # nothing is due on the referral day
            clock.advance(timedelta(days=7) - timedelta(hours=1, seconds=1))
            assert await due_after_scan() == 0  # one second early is still early
            clock.advance(timedelta(seconds=1))
            assert await due_after_scan() == 1  # day 7
            clock.advance(timedelta(days=90))
            assert await due_after_scan() == 3  # days 30 and 90

            due = await kafka_probe.collect(
                [FollowUpDueV1.topic()], for_referral(referral_id), expect=3, timeout=30, settle=2.0
            )
            planned = await kafka_probe.collect(
                [FollowUpScheduledV1.topic()], for_referral(referral_id), expect=3, settle=1.0
            )
    finally:
        await mongo.close()

    due_events = [FollowUpDueV1.model_validate_json(r.value) for r in due]
    assert len({e.event_id for e in due_events}) == 3
    assert sorted(e.due_at - REFERRED_AT for e in due_events) == [
        timedelta(days=7),
        timedelta(days=30),
        timedelta(days=90),
    ]
    assert all(e.liaison_id == "liaison-11" for e in due_events)
    assert len({FollowUpScheduledV1.model_validate_json(r.value).event_id for r in planned}) == 3


async def test_due_follow_ups_survive_a_restart_and_two_replicas_emit_each_once(
    settings: FollowUpSettings, kafka_probe: KafkaProbe, mongo_uri: str
) -> None:
    referral_ids = [uuid.uuid4() for _ in range(5)]
    clock = AdjustableClock(REFERRED_AT)
    first = build(settings, clock=clock)
    async with running_app(first, from_now=True):
        for referral_id in referral_ids:
            event = referral_created(referral_id)
            await kafka_probe.send(
                ReferralCreatedV1.topic(), event.model_dump_json().encode(), key=event.kafka_key()
            )
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
        try:

            async def all_scheduled() -> bool:
                count = await mongo[settings.mongo_database]["follow_ups"].count_documents(
                    {"referral_id": {"$in": [str(r) for r in referral_ids]}}
                )
                return count == 15

            await eventually(all_scheduled, timeout=60)
        finally:
            await mongo.close()
    # The service was stopped while every follow-up came due; two replicas now start at once.
    clock.advance(timedelta(days=100))
    replica_a, replica_b = build(settings, clock=clock), build(settings, clock=clock)
    async with running_app(replica_a), running_app(replica_b):
        await asyncio.gather(
            replica_a.state.followups.emit_due(), replica_b.state.followups.emit_due()
        )
        await asyncio.gather(
            replica_a.state.followups.emit_due(), replica_b.state.followups.emit_due()
        )
        keys = {str(r).encode() for r in referral_ids}
        due = await kafka_probe.collect(
            [FollowUpDueV1.topic()],
            lambda r: r.key in keys,
            expect=15,
            timeout=60,
            settle=2.0,
            distinct=lambda r: dict(r.headers).get("event-id"),  # two replicas may repeat one
        )
    distinct = {FollowUpDueV1.model_validate_json(r.value).event_id for r in due}
    assert len(distinct) == 15  # none missed; any duplicate record repeats an event id
