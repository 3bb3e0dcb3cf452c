"""Thin subscriber: agency systems' referral submissions become CreateReferral commands."""

from collections.abc import Iterable

from faststream.kafka import KafkaRouter

from cmhl_contracts import AgencyReferralSubmittedV1
from cmhl_referral.application.commands import CreateReferral
from cmhl_referral.application.service import Actor, ReferralService, Rejected
from cmhl_referral.entrypoints.translate import create_command
from cmhl_servicekit.consuming import BatchProcessor, DeadLetterSink, Delivery, RecordsRefused
from cmhl_servicekit.correlation import correlation_id_from
from cmhl_servicekit.kafka import consumer_group, subscribe_batches


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
        # The batch is created together (one existence check, the ledgers, one write, one
        # audit write), each person's submissions in the order read, since whether one is a
        # repeat involvement depends on the person's referrals before it.
        submissions: list[tuple[CreateReferral, Actor]] = []
        for delivery in deliveries:
            event = delivery.event
            command = create_command(
                event, correlation_id_from(event.correlation_id), causation_id=str(event.event_id)
            )
            submissions.append((command, Actor(None, command.agency_id, None)))
        outcomes = await service.create_many(submissions)
        # A submission that breaks a rule (a referral date in the future, say) is dead-lettered
        # with it. A resubmission's referral id derives from the agency's own id, so an agency
        # sees its own; were that ever broken, the message is refused too, never retried.
        refused = [
            (delivery, str(outcome))
            for delivery, outcome in zip(deliveries, outcomes, strict=True)
            if isinstance(outcome, Rejected)
        ]
        if refused:
            raise RecordsRefused(refused)

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
