"""Thin subscribers: new referrals, reassignments and follow-ups due become notifications. One
consumer group per topic, so a backlog on one never holds up the others."""

from collections.abc import Awaitable, Callable
from typing import Any

from faststream.kafka import KafkaRouter

from cmhl_contracts import FollowUpDueV1, IntegrationEvent, ReferralCreatedV1, ReferralReassignedV1
from cmhl_notifications.application.service import NotificationService
from cmhl_servicekit.consuming import BatchProcessor, DeadLetterSink, Delivery
from cmhl_servicekit.kafka import consumer_group, subscribe_batches


def build_router(
    service: NotificationService, dead_letter: DeadLetterSink, group_prefix: str
) -> KafkaRouter:
    router = KafkaRouter()
    handlers: list[tuple[type[IntegrationEvent], str, Callable[[list[Any]], Awaitable[Any]]]] = [
        (ReferralCreatedV1, "new-referrals", service.on_referral_created),
        (ReferralReassignedV1, "reassignments", service.on_referral_reassigned),
        (FollowUpDueV1, "follow-ups-due", service.on_follow_up_due),
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
            group_id=consumer_group(group_prefix, "notifications", purpose),
            handler_name=f"on_{event_type.event_name().replace('-', '_')}",
            max_records=200,
        )
    return router
