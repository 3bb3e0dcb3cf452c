"""Thin subscriber: each referral-created event schedules that referral's follow-ups."""

from faststream.kafka import KafkaRouter

from cmhl_contracts import ReferralCreatedV1
from cmhl_followup.application.service import FollowUpService
from cmhl_servicekit.consuming import BatchProcessor, DeadLetterSink, Delivery
from cmhl_servicekit.kafka import consumer_group, subscribe_batches


def build_router(
    service: FollowUpService, dead_letter: DeadLetterSink, group_prefix: str
) -> KafkaRouter:
    router = KafkaRouter()

    async def apply(deliveries: list[Delivery[ReferralCreatedV1]]) -> None:
        await service.on_referral_created([d.event for d in deliveries])

    subscribe_batches(
        router,
        BatchProcessor(ReferralCreatedV1, apply, dead_letter),
        topic=ReferralCreatedV1.topic(),
        group_id=consumer_group(group_prefix, "followup", "scheduler"),
        handler_name="on_referral_created",
        max_records=200,
    )
    return router
