"""cmhl_contracts: the wire events every CMHL service speaks, and nothing else."""

from cmhl_contracts.envelope import IntegrationEvent, deterministic_event_id
from cmhl_contracts.events import (
    AGENCY_EVENTS,
    ALL_EVENTS,
    AgencyReferralSubmittedV1,
    FollowUpCancelledV1,
    FollowUpCompletedV1,
    FollowUpDueV1,
    FollowUpOverdueV1,
    FollowUpReassignedV1,
    FollowUpScheduledV1,
    ReferralContactAttemptedV1,
    ReferralCreatedV1,
    ReferralFeedbackV1,
    ReferralReassignedV1,
    ReferralStatusChangedV1,
    TrainingCompletedV1,
)
from cmhl_contracts.placement import (
    BedAvailabilityStaleV1,
    BedAvailabilityUpdatedV1,
    FacilityRecordUpdatedV1,
    PlacementAttemptedV1,
    PlacementCompletedV1,
    PlacementDeadlineFlaggedV1,
    PlacementRequestedV1,
)
from cmhl_contracts.registry import CmhcServiceAreaChangedV1, LiaisonChangedV1, LiaisonStatus

# isort: split
# After events.py, which gathers every module's events (activity builds on its field types).
from cmhl_contracts.activity import BarrierRecordedV1, ConsultationRecordedV1

__all__ = [
    "AGENCY_EVENTS",
    "ALL_EVENTS",
    "AgencyReferralSubmittedV1",
    "BarrierRecordedV1",
    "BedAvailabilityStaleV1",
    "BedAvailabilityUpdatedV1",
    "CmhcServiceAreaChangedV1",
    "ConsultationRecordedV1",
    "FacilityRecordUpdatedV1",
    "FollowUpCancelledV1",
    "FollowUpCompletedV1",
    "FollowUpDueV1",
    "FollowUpOverdueV1",
    "FollowUpReassignedV1",
    "FollowUpScheduledV1",
    "IntegrationEvent",
    "LiaisonChangedV1",
    "LiaisonStatus",
    "PlacementAttemptedV1",
    "PlacementCompletedV1",
    "PlacementDeadlineFlaggedV1",
    "PlacementRequestedV1",
    "ReferralContactAttemptedV1",
    "ReferralCreatedV1",
    "ReferralFeedbackV1",
    "ReferralReassignedV1",
    "ReferralStatusChangedV1",
    "TrainingCompletedV1",
    "deterministic_event_id",
]
