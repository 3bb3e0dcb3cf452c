"""cmhl_contracts: the wire events every CMHL service speaks, and nothing else."""

from cmhl_contracts.envelope import IntegrationEvent, deterministic_event_id
from cmhl_contracts.events import (
    ALL_EVENTS,
    AgencyReferralSubmittedV1,
    FollowUpCancelledV1,
    FollowUpCompletedV1,
    FollowUpDueV1,
    FollowUpOverdueV1,
    FollowUpScheduledV1,
    ReferralContactAttemptedV1,
    ReferralCreatedV1,
    ReferralReassignedV1,
    ReferralStatusChangedV1,
    TrainingCompletedV1,
)

__all__ = [
    "ALL_EVENTS",
    "AgencyReferralSubmittedV1",
    "FollowUpCancelledV1",
    "FollowUpCompletedV1",
    "FollowUpDueV1",
    "FollowUpOverdueV1",
    "FollowUpScheduledV1",
    "IntegrationEvent",
    "ReferralContactAttemptedV1",
    "ReferralCreatedV1",
    "ReferralReassignedV1",
    "ReferralStatusChangedV1",
    "TrainingCompletedV1",
    "deterministic_event_id",
]
