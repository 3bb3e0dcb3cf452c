"""Thin subscribers: new referrals, reassignments and follow-ups due become notifications;
facilities' registry records keep their contacts, and stale bed numbers remind them."""

from faststream.kafka import KafkaRouter

from cmhl_contracts import (
    BedAvailabilityStaleV1,
    FacilityRecordUpdatedV1,
    FollowUpDueV1,
    ReferralCreatedV1,
    ReferralReassignedV1,
)
from cmhl_notifications.application.service import NotificationService
from cmhl_servicekit.consuming import DeadLetterSink
from cmhl_servicekit.kafka import event_handlers_router


def build_router(
    service: NotificationService, dead_letter: DeadLetterSink, group_prefix: str
) -> KafkaRouter:
    return event_handlers_router(
        "notifications",
        [
            (ReferralCreatedV1, "new-referrals", service.on_referral_created),
            (ReferralReassignedV1, "reassignments", service.on_referral_reassigned),
            (FollowUpDueV1, "follow-ups-due", service.on_follow_up_due),
            (FacilityRecordUpdatedV1, "facility-contacts", service.on_facility_record_updated),
            (BedAvailabilityStaleV1, "bed-reminders", service.on_bed_availability_stale),
        ],
        dead_letter,
        group_prefix,
    )
