"""Translation of placement facts into contract events; ids derive from what they are about."""

from datetime import datetime

from cmhl_contracts import (
    BedAvailabilityStaleV1,
    BedAvailabilityUpdatedV1,
    FacilityRecordUpdatedV1,
    PlacementAttemptedV1,
    PlacementCompletedV1,
    PlacementDeadlineFlaggedV1,
    PlacementRequestedV1,
)
from cmhl_contracts.placement import UnitBeds, UnitSettings, UnitType
from cmhl_placement.domain.clock import FLAG_HOURS, Flag, hours
from cmhl_placement.domain.facility import Facility
from cmhl_placement.domain.geography import region_of
from cmhl_placement.domain.request import Attempt, PlacementRequest

PRODUCER = "cmhl-placement"


def availability_updated(
    facility: Facility, updated: list[UnitType], at: datetime, by: str, correlation_id: str
) -> BedAvailabilityUpdatedV1:
    return BedAvailabilityUpdatedV1.create(
        about=(facility.facility_id, str(facility.sequence)),
        producer=PRODUCER,
        correlation_id=correlation_id,
        occurred_at=at,
        facility_id=facility.facility_id,
        county_fips=facility.county_fips,
        cmhc_region=facility.cmhc_region,
        sequence=facility.sequence,
        updated_units=sorted(updated),
        units=[
            UnitBeds(
                unit_type=u.unit_type,
                capacity=u.capacity,
                available=u.available,
                reported_at=u.reported_at,
            )
            for u in facility.units.values()
        ],
        updated_at=at,
        updated_by=by,
    )


def record_updated(
    facility: Facility, at: datetime, by: str, correlation_id: str
) -> FacilityRecordUpdatedV1:
    """The whole registry record as of its version: a consumer keeps the highest version."""
    return FacilityRecordUpdatedV1.create(
        about=(facility.facility_id, str(facility.record_version)),
        producer=PRODUCER,
        correlation_id=correlation_id,
        occurred_at=at,
        facility_id=facility.facility_id,
        county_fips=facility.county_fips,
        cmhc_region=facility.cmhc_region,
        record_version=facility.record_version,
        title=facility.name,
        phone=facility.phone,
        contact_email=facility.contact_email,
        medical_clearance_required=facility.medical_clearance_required,
        units=[
            UnitSettings(
                unit_type=u.unit_type,
                capacity=u.capacity,
                patient_types=sorted(u.patient_types),
                involuntary_holds=u.involuntary_holds,
                security_level=u.security_level,
                exclusions=sorted(u.exclusions),
            )
            for u in facility.units.values()
        ],
        changed_at=at,
        changed_by=by,
    )


def availability_stale(
    facility: Facility,
    sequence: int,
    stale: list[UnitType],
    last_updated_at: datetime,
    stale_after_hours: float,
    now: datetime,
) -> BedAvailabilityStaleV1:
    return BedAvailabilityStaleV1.create(
        about=(facility.facility_id, str(sequence)),
        producer=PRODUCER,
        correlation_id=f"stale-{facility.facility_id}-{sequence}",
        occurred_at=now,
        facility_id=facility.facility_id,
        county_fips=facility.county_fips,
        cmhc_region=facility.cmhc_region,
        sequence=sequence,
        stale_units=sorted(stale),
        last_updated_at=last_updated_at,
        stale_after_hours=stale_after_hours,
        flagged_at=now,
    )


def requested(request: PlacementRequest, correlation_id: str) -> PlacementRequestedV1:
    return PlacementRequestedV1.create(
        about=(str(request.request_id),),
        producer=PRODUCER,
        correlation_id=correlation_id,
        occurred_at=request.requested_at,
        request_id=request.request_id,
        referral_id=request.referral_id,
        detention_started_at=request.detention_started_at,
        person_id=request.person_id,
        liaison_id=request.liaison_id,
        cmhc_id=request.cmhc_id,
        county_fips=request.county_fips,
        cmhc_region=region_of(request.county_fips),
        age_group=request.age_group,
        needs=sorted(request.needs),
        requested_at=request.requested_at,
        deadline_at=request.clock.deadline_at,
    )


def attempted(
    request: PlacementRequest, attempt: Attempt, facility: Facility, correlation_id: str
) -> PlacementAttemptedV1:
    return PlacementAttemptedV1.create(
        about=(str(request.request_id), str(attempt.sequence)),
        producer=PRODUCER,
        correlation_id=correlation_id,
        occurred_at=attempt.attempted_at,
        request_id=request.request_id,
        referral_id=request.referral_id,
        detention_started_at=request.detention_started_at,
        sequence=attempt.sequence,
        facility_id=facility.facility_id,
        facility_county_fips=facility.county_fips,
        facility_cmhc_region=facility.cmhc_region,
        attempted_at=attempt.attempted_at,
        result=attempt.result,
        reason_code=attempt.reason_code,
    )


def completed(
    request: PlacementRequest, facility: Facility | None, correlation_id: str
) -> PlacementCompletedV1:
    assert request.completed_at is not None
    region = region_of(request.county_fips)
    return PlacementCompletedV1.create(
        about=(str(request.request_id),),
        producer=PRODUCER,
        correlation_id=correlation_id,
        occurred_at=request.completed_at,
        request_id=request.request_id,
        referral_id=request.referral_id,
        detention_started_at=request.detention_started_at,
        outcome=request.status,
        completed_at=request.completed_at,
        hours_from_detention=hours(request.clock.elapsed(request.completed_at)),
        county_fips=request.county_fips,
        cmhc_region=region,
        facility_id=facility.facility_id if facility else None,
        facility_cmhc_region=facility.cmhc_region if facility else None,
        out_of_region=(facility.cmhc_region != region) if facility else None,
        attempts=len(request.attempts),
        facilities_contacted=request.facilities_contacted,
        failure_reason=request.failure_reason,
    )


def deadline_flagged(
    request: PlacementRequest, flag: Flag, now: datetime
) -> PlacementDeadlineFlaggedV1:
    return PlacementDeadlineFlaggedV1.create(
        about=(str(request.request_id), flag),
        producer=PRODUCER,
        correlation_id=f"deadline-{request.request_id}",
        occurred_at=now,
        request_id=request.request_id,
        referral_id=request.referral_id,
        detention_started_at=request.detention_started_at,
        liaison_id=request.liaison_id,
        flag=flag,
        threshold_hours=FLAG_HOURS[flag],
        deadline_at=request.clock.deadline_at,
        flagged_at=now,
    )
