"""Thin subscribers: the referral's events (created, status changed, reassigned) adjust its
follow-ups. One consumer group per topic, so a backlog on one never holds up the others."""

from faststream.kafka import KafkaRouter

from cmhl_contracts import ReferralCreatedV1, ReferralReassignedV1, ReferralStatusChangedV1
from cmhl_followup.application.service import FollowUpService
from cmhl_servicekit.consuming import DeadLetterSink
from cmhl_servicekit.kafka import event_handlers_router


def build_router(
    service: FollowUpService, dead_letter: DeadLetterSink, group_prefix: str
) -> KafkaRouter:
    return event_handlers_router(
        "followup",
        [
            (ReferralCreatedV1, "scheduler", service.on_referral_created),
            (ReferralStatusChangedV1, "status", service.on_status_changed),
            (ReferralReassignedV1, "assignment", service.on_referral_reassigned),
        ],
        dead_letter,
        group_prefix,
    )
