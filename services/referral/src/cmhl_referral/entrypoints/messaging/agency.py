"""Thin subscriber: agency systems' referral submissions become CreateReferral commands."""

from collections import defaultdict
from collections.abc import Iterable

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


def sent_by_the_agency_it_names(delivery: Delivery[AgencyReferralSubmittedV1]) -> str | None:
    """On an agency's own topic (which only its principal may write, ADR 0010) a submission
    must name that agency: another's would be a submission in its name."""
    sender = AgencyReferralSubmittedV1.sender_of(delivery.topic)
    named = delivery.event.agency.agency_id
    if sender is None or sender == named:
        return None
    return f"agency_mismatch: a submission on {sender}'s own topic names agency {named}"


def build_router(
    service: ReferralService,
    dead_letter: DeadLetterSink,
    group_prefix: str,
    kafka_agencies: Iterable[str] = (),
) -> KafkaRouter:
    """The shared intake topic and the own topic of each agency on Kafka."""
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
        BatchProcessor(
            AgencyReferralSubmittedV1,
            apply,
            dead_letter,
            poison_attempts=1,
            admit=sent_by_the_agency_it_names,
        ),
        topics=[
            AgencyReferralSubmittedV1.topic(),
            *(AgencyReferralSubmittedV1.agency_topic(a) for a in sorted(kafka_agencies)),
        ],
        group_id=consumer_group(group_prefix, "referral", "agency-intake"),
        handler_name="on_agency_referral_submitted",
        max_records=200,
    )
    return router
