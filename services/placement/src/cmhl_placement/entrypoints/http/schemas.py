"""HTTP bodies of the placement API: what comes in, and what goes out with ages and clocks."""

import uuid
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_contracts.envelope import UtcDatetime
from cmhl_contracts.events import CountyFips, Identifier
from cmhl_contracts.placement import (
    AgeGroup,
    AttemptResult,
    ClinicalNeed,
    SecurityLevel,
    UnitType,
)
from cmhl_placement.domain.clock import hours
from cmhl_placement.domain.facility import UNIT_SERVES, Facility
from cmhl_placement.domain.ranking import Candidate
from cmhl_placement.domain.request import PlacementRequest


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UnitCount(_In):
    unit_type: UnitType
    available: int = Field(description="Free beds now; 0 to the unit's capacity")


class AvailabilityUpdate(_In):
    units: list[UnitCount] = Field(min_length=1, max_length=10)
    reported_by: Identifier | None = Field(
        default=None, description="Staff reference (an id, not a name) of who reports"
    )


class UnitPublic(BaseModel):
    unit_type: UnitType
    capacity: int
    available: int
    reported_at: datetime
    reported_by: str
    age_hours: float
    stale: bool
    patient_types: list[AgeGroup]
    involuntary_holds: bool
    security_level: SecurityLevel
    exclusions: list[ClinicalNeed]


class FacilityPublic(BaseModel):
    facility_id: str
    name: str
    county_fips: str
    county: str
    cmhc_region: str
    phone: str
    accepts: list[AgeGroup]
    involuntary_holds: bool
    medical_clearance_required: bool
    exclusions: list[ClinicalNeed]
    units: list[UnitPublic]
    stale: bool = Field(description="Some unit's number is older than the freshness limit")
    contact_email: str = Field(description="The facility's bed desk: bed-update reminders")
    version: int = Field(description="The registry record's version: send it with a change")

    @classmethod
    def of(cls, f: Facility, now: datetime, stale_after: timedelta) -> "FacilityPublic":
        units = [
            UnitPublic(
                unit_type=u.unit_type,
                capacity=u.capacity,
                available=u.available,
                reported_at=u.reported_at,
                reported_by=u.reported_by,
                age_hours=hours(u.age(now)),
                stale=u.is_stale(now, stale_after),
                patient_types=sorted(u.patient_types or {UNIT_SERVES[u.unit_type]}),
                involuntary_holds=u.involuntary_holds,
                security_level=u.security_level,
                exclusions=sorted(u.exclusions),
            )
            for u in f.units.values()
        ]
        return cls(
            facility_id=f.facility_id,
            name=f.name,
            county_fips=f.county_fips,
            county=MISSOURI_COUNTIES[f.county_fips],
            cmhc_region=f.cmhc_region,
            phone=f.phone,
            accepts=sorted(f.accepts),
            involuntary_holds=f.involuntary_holds,
            medical_clearance_required=f.medical_clearance_required,
            exclusions=sorted(f.exclusions),
            units=units,
            stale=any(u.stale for u in units),
            contact_email=f.contact_email,
            version=f.record_version,
        )


class FacilitiesPublic(BaseModel):
    data: list[FacilityPublic]
    count: int
    stale_after_hours: float


class PlacementRequestCreate(_In):
    request_id: uuid.UUID | None = Field(
        default=None, description="Give one to make retries safe; a repeat returns the first"
    )
    referral_id: uuid.UUID = Field(
        description="A referral you may see; the person is taken from it (404 otherwise)"
    )
    detention_started_at: UtcDatetime = Field(description="Start of the 96-hour detention")
    age_group: AgeGroup
    needs: list[ClinicalNeed] = Field(default_factory=list, max_length=len(ClinicalNeed))
    county_fips: CountyFips = Field(description="Where the person is held")


class AttemptCreate(_In):
    attempt_id: uuid.UUID | None = Field(
        default=None, description="Give one to make retries safe: a repeat logs the call once"
    )
    facility_id: Identifier
    result: AttemptResult
    reason_code: Identifier | None = Field(default=None, description="Required for `other`")
    attempted_at: UtcDatetime | None = None


class Completion(_In):
    outcome: Literal["placed", "failed"]
    facility_id: Identifier | None = Field(default=None, description="Where, when placed")
    failure_reason: Identifier | None = Field(default=None, description="Why, when failed")


class ClockPublic(BaseModel):
    """The 96-hour clock of RSMo 632.305, as of the answer."""

    detention_started_at: datetime
    deadline_at: datetime
    hours_elapsed: float
    hours_remaining: float
    due_soon: bool = Field(description="72 hours or more have passed")
    overdue: bool = Field(description="90 hours or more have passed")
    expired: bool = Field(description="The 96 hours are over")


class CandidatePublic(BaseModel):
    rank: int
    facility_id: str
    name: str
    phone: str
    county_fips: str
    cmhc_region: str
    tier: Literal["fresh_beds", "stale", "fresh_full"]
    beds_available: int = Field(description="Free beds in fresh numbers for the age group")
    miles: float = Field(description="Between county seats")
    oldest_report_age_hours: float
    medical_clearance_required: bool
    contacted: bool = Field(description="Already called for this request")


class AttemptPublic(BaseModel):
    attempt_id: str | None = None
    sequence: int
    facility_id: str
    attempted_at: datetime
    result: AttemptResult
    reason_code: str | None


class PlacementRequestPublic(BaseModel):
    request_id: uuid.UUID
    referral_id: uuid.UUID
    liaison_id: str
    county_fips: str
    age_group: AgeGroup
    needs: list[ClinicalNeed]
    status: Literal["open", "placed", "failed"]
    clock: ClockPublic
    attempts: list[AttemptPublic]
    facilities_contacted: int
    placed_facility_id: str | None
    completed_at: datetime | None
    failure_reason: str | None
    candidates: list[CandidatePublic] = Field(
        default_factory=list,
        description="Facilities to call, best first (open requests, single-request answers)",
    )

    @classmethod
    def of(
        cls, r: PlacementRequest, now: datetime, candidates: list[Candidate] | None = None
    ) -> "PlacementRequestPublic":
        clock = r.clock
        # A closed request's clock stops when it ended.
        at = r.completed_at or now
        contacted = {a.facility_id for a in r.attempts}
        return cls(
            request_id=r.request_id,
            referral_id=r.referral_id,
            liaison_id=r.liaison_id,
            county_fips=r.county_fips,
            age_group=r.age_group,
            needs=sorted(r.needs),
            status=r.status,
            clock=ClockPublic(
                detention_started_at=clock.detention_started_at,
                deadline_at=clock.deadline_at,
                hours_elapsed=hours(clock.elapsed(at)),
                hours_remaining=hours(clock.remaining(at)),
                due_soon="due_soon" in clock.flags(at),
                overdue="overdue" in clock.flags(at),
                expired=clock.expired(at),
            ),
            attempts=[
                AttemptPublic(
                    attempt_id=a.attempt_id,
                    sequence=a.sequence,
                    facility_id=a.facility_id,
                    attempted_at=a.attempted_at,
                    result=a.result,
                    reason_code=a.reason_code,
                )
                for a in r.attempts
            ],
            facilities_contacted=r.facilities_contacted,
            placed_facility_id=r.placed_facility_id,
            completed_at=r.completed_at,
            failure_reason=r.failure_reason,
            candidates=[
                CandidatePublic(
                    rank=index + 1,
                    facility_id=c.facility.facility_id,
                    name=c.facility.name,
                    phone=c.facility.phone,
                    county_fips=c.facility.county_fips,
                    cmhc_region=c.facility.cmhc_region,
                    tier=c.tier.name.lower(),
                    beds_available=c.beds_available,
                    miles=c.miles,
                    oldest_report_age_hours=hours(c.oldest_report_age),
                    medical_clearance_required=c.facility.medical_clearance_required,
                    contacted=c.facility.facility_id in contacted,
                )
                for index, c in enumerate(candidates or [])
            ],
        )


class PlacementRequestsPublic(BaseModel):
    data: list[PlacementRequestPublic]
    count: int
