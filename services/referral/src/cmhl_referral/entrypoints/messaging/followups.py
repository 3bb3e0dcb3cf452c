"""Thin subscriber: follow-up outcomes, published by the follow-up service, move the referral's
lifecycle (the services share events, never code or a database)."""

from faststream.kafka import KafkaRouter

from cmhl_contracts import FollowUpCompletedV1
from cmhl_referral.application.service import ReferralService
from cmhl_servicekit.consuming import BatchProcessor, DeadLetterSink, Delivery
from cmhl_servicekit.kafka import consumer_group, subscribe_batches


def build_router(
    service: ReferralService, dead_letter: DeadLetterSink, group_prefix: str
) -> KafkaRouter:
    router = KafkaRouter()

    async def apply(deliveries: list[Delivery[FollowUpCompletedV1]]) -> None:
        # In the order read: the topic is keyed by follow-up, and each outcome is noted once
        # per follow-up whatever the order.
        for delivery in deliveries:
            await service.apply_follow_up_outcome(delivery.event)

    subscribe_batches(
        router,
        BatchProcessor(FollowUpCompletedV1, apply, dead_letter),
        topics=[FollowUpCompletedV1.topic()],
        group_id=consumer_group(group_prefix, "referral", "follow-up-outcomes"),
        handler_name="on_follow_up_completed",
        max_records=200,
    )
    return router
