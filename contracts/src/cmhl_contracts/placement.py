"""The v1 wire events of inpatient placement: bed availability and placement requests.

Facility events are keyed by the facility id, placement events by the request id, so one
facility's (or one request's) events stay in order on one partition. No event names a person:
a request carries the referral id and, when the liaison gives it, the pseudonymous person id."""

import uuid
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from cmhl_contracts.envelope import IntegrationEvent, UtcDatetime
from cmhl_contracts.events import CountyFips, Identifier, PseudonymousId


class AgeGroup(StrEnum):
    ADULT = "adult"
    YOUTH = "youth"
    GERIATRIC = "geriatric"


class UnitType(StrEnum):
    """The kinds of inpatient unit a facility reports beds for."""

    ADULT_ACUTE = "adult_acute"
    YOUTH_ACUTE = "youth_acute"
    GERIATRIC = "geriatric"
    CO_OCCURRING = "co_occurring"


class ClinicalNeed(StrEnum):
    """Needs of the person that some facilities exclude (and state as exclusions)."""

    AGGRESSION = "aggression"
    INTELLECTUAL_DISABILITY = "intellectual_disability"
    MEDICAL_INSTABILITY = "medical_instability"
    SUBSTANCE_WITHDRAWAL = "substance_withdrawal"
    SEX_OFFENSE_HISTORY = "sex_offense_history"
    PREGNANCY = "pregnancy"


class SecurityLevel(StrEnum):
    """How securely a unit can hold a patient, as state bed registries record it."""

    OPEN = "open"
    """Unlocked: voluntary patients only."""
    LOCKED = "locked"
    """A locked unit: can hold a patient under an involuntary detention."""
    SECURE = "secure"
    """Locked with enhanced security (forensic, high acuity)."""


class AttemptResult(StrEnum):
    """What a call to a facility gave; `other` needs a reason code."""

    ACCEPTED = "accepted"
    NO_CAPACITY = "no_capacity"
    CLINICAL_EXCLUSION = "clinical_exclusion"
    NO_ANSWER = "no_answer"
    OTHER = "other"


class UnitBeds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    unit_type: UnitType
    capacity: int = Field(ge=0)
    available: int = Field(ge=0)
    reported_at: UtcDatetime = Field(description="When this unit's number was last reported")


class _FacilityEvent(IntegrationEvent):
    CONTEXT: ClassVar[str] = "placement"

    facility_id: Identifier
    county_fips: CountyFips
    cmhc_region: Identifier

    def kafka_key(self) -> bytes:
        return self.facility_id.encode()


class BedAvailabilityUpdatedV1(_FacilityEvent):
    """A facility reported how many beds it has free, by unit (or was first listed)."""

    sequence: int = Field(ge=1, description="Position of this update in the facility's history")
    updated_units: list[UnitType] = Field(description="The units whose numbers this update set")
    units: list[UnitBeds] = Field(description="Every unit of the facility after the update")
    updated_at: UtcDatetime
    updated_by: Identifier = Field(description="Staff reference or key fingerprint of the reporter")


class BedAvailabilityStaleV1(_FacilityEvent):
    """A facility's bed numbers grew older than the freshness limit: staff are reminded."""

    sequence: int = Field(ge=1, description="The update whose numbers went stale")
    stale_units: list[UnitType]
    last_updated_at: UtcDatetime
    stale_after_hours: float = Field(gt=0)
    flagged_at: UtcDatetime


class _PlacementEvent(IntegrationEvent):
    CONTEXT: ClassVar[str] = "placement"

    request_id: uuid.UUID
    referral_id: uuid.UUID
    detention_started_at: UtcDatetime = Field(
        description="Start of the 96-hour detention (RSMo 632.305)"
    )

    def kafka_key(self) -> bytes:
        return str(self.request_id).encode()


class PlacementRequestedV1(_PlacementEvent):
    """A liaison started looking for an inpatient bed for a detained person."""

    person_id: PseudonymousId | None = None
    liaison_id: Identifier
    cmhc_id: Identifier | None = None
    county_fips: CountyFips
    cmhc_region: Identifier = Field(description="Region of the person's county")
    age_group: AgeGroup
    needs: list[ClinicalNeed] = Field(default_factory=list)
    requested_at: UtcDatetime
    deadline_at: UtcDatetime = Field(description="detention_started_at + 96 hours")


class PlacementAttemptedV1(_PlacementEvent):
    """A facility was called for a placement request, with the answer."""

    sequence: int = Field(ge=1, description="Position of this attempt in the request")
    facility_id: Identifier
    facility_county_fips: CountyFips
    facility_cmhc_region: Identifier
    attempted_at: UtcDatetime
    result: AttemptResult
    reason_code: Identifier | None = None


class PlacementCompletedV1(_PlacementEvent):
    """A placement request ended: the person was placed, or the search failed."""

    outcome: Literal["placed", "failed"]
    completed_at: UtcDatetime
    hours_from_detention: float = Field(ge=0)
    county_fips: CountyFips
    cmhc_region: Identifier = Field(description="Region of the person's county")
    facility_id: Identifier | None = None
    facility_cmhc_region: Identifier | None = None
    out_of_region: bool | None = Field(
        default=None, description="Placed in a facility outside the person's region"
    )
    attempts: int = Field(ge=0)
    facilities_contacted: int = Field(ge=0, description="Distinct facilities called")
    failure_reason: Identifier | None = None


class PlacementDeadlineFlaggedV1(_PlacementEvent):
    """An open placement request reached a point on the 96-hour clock (72 h due soon, 90 h
    overdue)."""

    liaison_id: Identifier
    flag: Literal["due_soon", "overdue"]
    threshold_hours: int = Field(gt=0, lt=96)
    deadline_at: UtcDatetime
    flagged_at: UtcDatetime


class UnitSettings(BaseModel):
    """What a state bed registry records of one unit: whom it takes and on what terms."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    unit_type: UnitType
    capacity: int = Field(ge=0)
    patient_types: list[AgeGroup]
    involuntary_holds: bool = Field(description="Takes patients under an involuntary detention")
    security_level: SecurityLevel
    exclusions: list[ClinicalNeed] = Field(default_factory=list)


class FacilityRecordUpdatedV1(_FacilityEvent):
    """A facility's registry record was created (version 1) or changed: the whole record."""

    record_version: int = Field(ge=1, description="Version of the registry record")
    title: str = Field(
        min_length=1,
        max_length=200,
        description="What the facility is called: an institution's title, never a person's",
    )
    phone: str = Field(description="The facility's admissions line (not a person's)")
    contact_email: str = Field(
        description="The facility's bed-desk address, where bed-update reminders go"
    )
    medical_clearance_required: bool
    units: list[UnitSettings]
    changed_at: UtcDatetime
    changed_by: Identifier = Field(description="Staff reference or client id of the editor")


PLACEMENT_EVENTS: tuple[type[IntegrationEvent], ...] = (
    BedAvailabilityUpdatedV1,
    BedAvailabilityStaleV1,
    PlacementRequestedV1,
    PlacementAttemptedV1,
    PlacementCompletedV1,
    PlacementDeadlineFlaggedV1,
    FacilityRecordUpdatedV1,
)
