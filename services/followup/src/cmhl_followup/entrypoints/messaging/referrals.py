"""Thin subscribers: the referral's events (created, status changed, reassigned) adjust its
follow-ups. One consumer group per topic, so a backlog on one never holds up the others."""

from collections.abc import Awaitable, Callable
from typing import Any

from faststream.kafka import KafkaRouter

from cmhl_contracts import (
    IntegrationEvent,
    ReferralCreatedV1,
    ReferralReassignedV1,
    ReferralStatusChangedV1,
)
from cmhl_followup.application.service import FollowUpService
from cmhl_servicekit.consuming import BatchProcessor, DeadLetterSink, Delivery
from cmhl_servicekit.kafka import consumer_group, subscribe_batches


def build_router(
    service: FollowUpService, dead_letter: DeadLetterSink, group_prefix: str
) -> KafkaRouter:
    router = KafkaRouter()
    handlers: list[tuple[type[IntegrationEvent], str, Callable[[list[Any]], Awaitable[Any]]]] = [
        (ReferralCreatedV1, "scheduler", service.on_referral_created),
        (ReferralStatusChangedV1, "status", service.on_status_changed),
        (ReferralReassignedV1, "assignment", service.on_referral_reassigned),
    ]
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
            group_id=consumer_group(group_prefix, "followup", purpose),
            handler_name=f"on_{event_type.event_name().replace('-', '_')}",
            max_records=200,
        )
    return router
