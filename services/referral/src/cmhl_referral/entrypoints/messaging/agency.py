"""Thin subscriber: agency systems' referral submissions become CreateReferral commands."""

from collections import defaultdict

from faststream.kafka import KafkaRouter

from cmhl_contracts import AgencyReferralSubmittedV1
from cmhl_referral.application.commands import CreateReferral
from cmhl_referral.application.service import Actor, ReferralService, ResubmissionNotVisible
from cmhl_referral.domain.referral import InvalidReferral
from cmhl_referral.entrypoints.translate import create_command
from cmhl_servicekit.consuming import BatchProcessor, DeadLetterSink, Delivery, run_bounded
from cmhl_servicekit.correlation import correlation_id_from
from cmhl_servicekit.kafka import consumer_group, subscribe_batches

# Creates in flight at once: enough to keep the database busy, few enough to stay well inside
# the client's connection pool and the database's lock wait.
INTAKE_CONCURRENCY = 16


class PermanentlyInvalid(Exception):
    """A well-formed message that breaks a business rule: dead-letter it, do not retry."""


def build_router(
    service: ReferralService, dead_letter: DeadLetterSink, group_prefix: str
) -> KafkaRouter:
    router = KafkaRouter()

    async def apply(deliveries: list[Delivery[AgencyReferralSubmittedV1]]) -> None:
        # Different people's submissions are created concurrently: a create is a chain of
        # database round trips, so one at a time leaves the process waiting. One person's stay
        # in order, since each create reads the person's earlier referrals.
        by_person: dict[str, list[CreateReferral]] = defaultdict(list)
        for delivery in deliveries:
            event = delivery.event
            command = create_command(
                event, correlation_id_from(event.correlation_id), causation_id=str(event.event_id)
            )
            by_person[service.person_id(command)].append(command)

        async def create_in_order(commands: list[CreateReferral]) -> None:
            for command in commands:
                await service.create(command, Actor(None, command.agency_id, None))

        try:
            await run_bounded(map(create_in_order, by_person.values()), INTAKE_CONCURRENCY)
        except (InvalidReferral, ResubmissionNotVisible) as exc:
            # A resubmission's referral id derives from the agency's own id, so an agency sees
            # its own; were that ever broken, the message is refused, never applied or retried.
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
