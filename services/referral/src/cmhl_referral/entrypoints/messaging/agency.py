"""Thin subscriber: agency systems' referral submissions become CreateReferral commands."""

from faststream.kafka import KafkaRouter

from cmhl_contracts import AgencyReferralSubmittedV1
from cmhl_referral.application.service import Actor, ReferralService
from cmhl_referral.domain.referral import InvalidReferral
from cmhl_referral.entrypoints.translate import create_command
from cmhl_servicekit.consuming import BatchProcessor, DeadLetterSink, Delivery
from cmhl_servicekit.kafka import consumer_group, subscribe_batches


class PermanentlyInvalid(Exception):
    """A well-formed message that breaks a business rule: dead-letter it, do not retry."""


def build_router(
    service: ReferralService, dead_letter: DeadLetterSink, group_prefix: str
) -> KafkaRouter:
    router = KafkaRouter()

    async def apply(deliveries: list[Delivery[AgencyReferralSubmittedV1]]) -> None:
        # One at a time and in order: each create reads the person's earlier referrals.
        for delivery in deliveries:
            event = delivery.event
            try:
                await service.create(
                    create_command(event, event.correlation_id, causation_id=str(event.event_id)),
                    Actor(None, event.agency.agency_id, None),
                )
            except InvalidReferral as exc:
                raise PermanentlyInvalid(str(exc)) from exc

    subscribe_batches(
        router,
        BatchProcessor(AgencyReferralSubmittedV1, apply, dead_letter, poison_attempts=1),
        topic=AgencyReferralSubmittedV1.topic(),
        group_id=consumer_group(group_prefix, "referral", "agency-intake"),
        handler_name="on_agency_referral_submitted",
        max_records=200,
    )
    return router
