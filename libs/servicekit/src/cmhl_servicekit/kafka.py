"""Kafka broker factory with the delivery settings our guarantees depend on."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from cmhl_contracts import IntegrationEvent
from cmhl_servicekit.consuming import (
    BatchProcessor,
    DeadLetterSink,
    Delivery,
    dead_letter_headers,
)

# Producer: acks=all and idempotence, so an acknowledged event is on every in-sync replica and a
# producer retry cannot write it twice. Consumers: offsets are committed only after the handler
# returned (NACK_ON_ERROR rewinds the batch on a transient error; poison records never raise,
# they are dead-lettered first). Topics are declared in deploy/, never auto-created.
PRODUCER_ACKS = "all"
ACK_POLICY = AckPolicy.NACK_ON_ERROR


def make_broker(bootstrap: str, client_id: str) -> KafkaBroker:
    """`bootstrap` is `host:port[,host:port...]`: every broker of a cluster may be named."""
    return KafkaBroker(
        [server.strip() for server in bootstrap.split(",")],
        client_id=client_id,
        acks=PRODUCER_ACKS,
        enable_idempotence=True,
        ack_policy=ACK_POLICY,
        allow_auto_create_topics=False,
        logger=logging.getLogger(f"{client_id}.broker"),
        log_level=logging.DEBUG,
    )


def consumer_group(prefix: str, service: str, purpose: str) -> str:
    """`cmhl.<service>.<purpose>` in production."""
    return f"{prefix}.{service}.{purpose}"


async def ping(broker: KafkaBroker) -> bool:
    return await broker.ping(timeout=2.0)


def dead_letter_sink(broker: KafkaBroker) -> DeadLetterSink:
    """Sends a record's original bytes to `<topic>.dlq` with the reason in its headers."""

    async def send(record: "ConsumerRecord[Any, Any]", reason: str) -> None:
        await broker.publish(
            record.value or b"",
            topic=f"{record.topic}.dlq",
            key=record.key,
            headers=dead_letter_headers(record, reason),
        )

    return send


def subscribe_batches(
    router: KafkaRouter,
    processor: BatchProcessor[Any],
    *,
    topic: str,
    group_id: str,
    handler_name: str,
    max_records: int = 500,
) -> None:
    """Registers a batch subscriber with the delivery settings every consumer must have.

    The ack policy is set on the subscriber itself: FastStream 0.7.8 decides `enable_auto_commit`
    when a router's subscriber is created, before the broker's policy is known, so a policy set
    only on the broker leaves router subscribers auto-committing (at-most-once)."""

    async def handler(message: KafkaMessage) -> None:
        records = message.raw_message
        await processor.process(records if isinstance(records, tuple) else (records,))

    handler.__name__ = handler_name
    router.subscriber(
        topic,
        group_id=group_id,
        auto_offset_reset="earliest",
        batch=True,
        max_records=max_records,
        ack_policy=ACK_POLICY,
    )(handler)


EventHandler = tuple[type[IntegrationEvent], str, Callable[[list[Any]], Awaitable[Any]]]
"""An event type, the purpose its consumer group is named by, and what takes a batch of them."""


def event_handlers_router(
    service: str,
    handlers: list[EventHandler],
    dead_letter: DeadLetterSink,
    group_prefix: str,
    *,
    max_records: int = 200,
) -> KafkaRouter:
    """A router with one consumer group per handled topic (a backlog on one never holds up the
    others), each handler given the decoded events of a batch."""
    router = KafkaRouter()
    for event_type, purpose, handle in handlers:

        async def apply(
            deliveries: list[Delivery[Any]],
            handle: Callable[[list[Any]], Awaitable[Any]] = handle,
        ) -> None:
            await handle([d.event for d in deliveries])

        subscribe_batches(
            router,
            BatchProcessor(event_type, apply, dead_letter),
            topic=event_type.topic(),
            group_id=consumer_group(group_prefix, service, purpose),
            handler_name=f"on_{event_type.event_name().replace('-', '_')}",
            max_records=max_records,
        )
    return router
