"""A poison message, valid on the wire but failing its handler every time: dead-lettered after
bounded retries while its partition keeps moving, and counted once when re-driven after a fix
(twice, even). Runs the consumer exactly as the services build theirs, on a topic of its own."""

import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaRouter

from cmhl_contracts import ReferralCreatedV1
from cmhl_servicekit.consuming import BatchProcessor, Delivery
from cmhl_servicekit.dlq import read_dead_letters, redrive
from cmhl_servicekit.kafka import dead_letter_sink, make_broker, subscribe_batches
from cmhl_servicekit.testing import KafkaProbe, eventually, kafka_test_access

from .checker import referral_created

pytestmark = pytest.mark.integration

POISON_ATTEMPTS = 3


class Handler:
    """Counts each event once by id (idempotent, like every consumer), and fails on the poison
    event until it is 'fixed'."""

    def __init__(self, poison: uuid.UUID) -> None:
        self.poison = poison
        self.fixed = False
        self.applied: set[uuid.UUID] = set()
        self.calls: Counter[uuid.UUID] = Counter()

    async def apply(self, deliveries: list[Delivery[ReferralCreatedV1]]) -> None:
        for delivery in deliveries:
            self.calls[delivery.event.event_id] += 1
            if delivery.event.event_id == self.poison and not self.fixed:
                raise ValueError("a handler bug this event triggers")
        self.applied.update(d.event.event_id for d in deliveries)


async def test_poison_is_dead_lettered_the_partition_moves_and_a_redrive_counts_once(
    kafka_bootstrap: str, kafka_probe: KafkaProbe
) -> None:
    topic = f"test.poison.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**kafka_test_access(kafka_bootstrap).client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 1, 1) for t in (topic, f"{topic}.dlq")])
    finally:
        await admin.close()
    events = [referral_created(uuid.uuid4(), datetime(2018, 1, 1, tzinfo=UTC)) for _ in range(11)]
    poison = events[5]
    handler = Handler(poison.event_id)
    broker = make_broker(kafka_test_access(kafka_bootstrap), "poison-test")
    router = KafkaRouter()
    subscribe_batches(
        router,
        BatchProcessor(
            ReferralCreatedV1,
            handler.apply,
            dead_letter_sink(broker),
            poison_attempts=POISON_ATTEMPTS,
        ),
        topics=[topic],
        group_id=f"test-poison-{uuid.uuid4().hex[:8]}",
        handler_name="on_test_event",
    )
    broker.include_router(router)
    await broker.start()
    try:
        for event in events:  # one key: one partition, in this order
            await kafka_probe.send(topic, event.model_dump_json().encode(), key=b"same")

        good = {e.event_id for e in events} - {poison.event_id}
        await eventually(lambda: _done(handler.applied >= good), timeout=60)
        letters = await eventually(
            lambda: read_dead_letters(kafka_test_access(kafka_bootstrap), topic), timeout=30
        )
        [letter] = letters
        assert letter.headers["dlq-reason"] == (
            f"handler failed {POISON_ATTEMPTS} times: ValueError"
        )
        assert letter.headers["dlq-original-offset"] == "5"
        # Tried with its batch, then alone a bounded number of times: never in a loop.
        assert handler.calls[poison.event_id] <= 1 + POISON_ATTEMPTS
        assert poison.event_id not in handler.applied

        handler.fixed = True
        for _ in range(2):  # re-driven twice by mistake: still counted once
            await redrive(
                kafka_test_access(kafka_bootstrap), topic, {(letter.partition, letter.offset)}
            )
        await eventually(lambda: _done(poison.event_id in handler.applied), timeout=60)
        await eventually(lambda: _done(handler.calls[poison.event_id] >= 6), timeout=60)
    finally:
        await broker.stop()
    assert handler.applied == {e.event_id for e in events}
    assert len(await read_dead_letters(kafka_test_access(kafka_bootstrap), topic)) == 1


async def _done(value: bool) -> bool:
    return value
