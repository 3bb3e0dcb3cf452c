"""The v1 wire events of a liaison's work outside a referral's lifecycle: consultations (questions
from police and courts answered without a referral) and structural barriers to care.

Both are structured records with no free text: nothing in them names or describes a person. A
record linked to a referral carries the referral id only. Each event is keyed by the record's id
(one event per record), and its id derives from that record id, so a retried request, a relay
crash or a second replica publish the same event id and reporting counts the record once."""

import uuid
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from cmhl_contracts.envelope import BoundedDate, IntegrationEvent, UtcDatetime
from cmhl_contracts.events import CountyFips, Identifier
from cmhl_contracts.vocabulary import ReferralSource

LATE_ENTRY_DAYS = 60
"""A consultation or barrier is recorded no later than this many days after the day it happened,
and reporting publishes a fiscal year's counts only once this many days have passed since it
ended: after that no new record can land in it, so a published number never changes (a change
of 1 between two readings would give a record away)."""


class ConsultationTopic(StrEnum):
    """What an officer or a court asked about."""

    RESOURCES = "resources"
    DETENTION_PROCESS = "detention_process"
    TREATMENT_OPTIONS = "treatment_options"
    REFERRAL_STATUS = "referral_status"
    TRAINING = "training"
    OTHER = "other"


class BarrierKind(StrEnum):
    """The structural barriers to care a liaison records (DOMAIN.md)."""

    NO_BED = "no_bed"
    WAITLIST = "waitlist"
    NO_TRANSPORT = "no_transport"
    INSURANCE = "insurance"
    ELIGIBILITY = "eligibility"
    CAPACITY = "capacity"


class _ActivityEvent(IntegrationEvent):
    CONTEXT: ClassVar[str] = "referral"

    county_fips: CountyFips = Field(description="The referral's county, or the county given")
    referral_id: uuid.UUID | None = Field(default=None, description="When tied to a referral")
    occurred_on: BoundedDate = Field(description="The program's day it happened")
    recorded_by: Identifier = Field(description="Staff id of the liaison or supervisor")
    cmhc_id: Identifier | None = Field(default=None, description="The recorder's CMHC")
    recorded_at: UtcDatetime


class ConsultationRecordedV1(_ActivityEvent):
    """A liaison answered a question from police, a sheriff's office or a court without a
    referral."""

    consultation_id: uuid.UUID
    asked_by: ReferralSource
    question_topic: ConsultationTopic = Field(description="What was asked about")

    def kafka_key(self) -> bytes:
        return str(self.consultation_id).encode()


class BarrierRecordedV1(_ActivityEvent):
    """A liaison recorded a structural barrier to care, for a referral or for a county."""

    barrier_id: uuid.UUID
    kind: BarrierKind

    def kafka_key(self) -> bytes:
        return str(self.barrier_id).encode()


ACTIVITY_EVENTS: tuple[type[IntegrationEvent], ...] = (ConsultationRecordedV1, BarrierRecordedV1)
