"""The facility registry under /api/v1/facilities: program admins register facilities and
change any; a facility's own client changes its own. Bodies, and the routes that take them."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from cmhl_contracts.events import CountyFips, Identifier
from cmhl_contracts.placement import AgeGroup, ClinicalNeed, SecurityLevel, UnitType
from cmhl_placement.application.ports import ConcurrentChange
from cmhl_placement.application.registry import (
    FacilityExists,
    FacilityRegistry,
    NotYourFacility,
    StaleVersion,
    UnknownFacility,
)
from cmhl_placement.application.service import PlacementService
from cmhl_placement.domain.registry import EMAIL, PHONE, FacilityRecord, InvalidRecord, UnitSpec
from cmhl_placement.entrypoints.http.schemas import FacilityPublic
from cmhl_servicekit.auth import CurrentPrincipal, OptionalFacility, Principal, Role, require_any
from cmhl_servicekit.http import correlation_id

router = APIRouter(prefix="/api/v1/facilities", tags=["facilities"])

Admin = Annotated[Principal, require_any(Role.PROGRAM_ADMIN)]


def _registry(request: Request) -> FacilityRegistry:
    registry: FacilityRegistry = request.app.state.registry
    return registry


def _placement(request: Request) -> PlacementService:
    service: PlacementService = request.app.state.placement
    return service


Registry = Annotated[FacilityRegistry, Depends(_registry)]
Placement = Annotated[PlacementService, Depends(_placement)]
Responses = dict[int | str, dict[str, Any]]
RULES: Responses = {422: {"description": "a contradictory setting; the detail names the rule"}}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UnitSettingsIn(_In):
    unit_type: UnitType
    capacity: int = Field(ge=0, le=1000, description="Licensed beds of the unit")
    available: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="Free beds now; on a change, leave it out to keep the last reported number",
    )
    patient_types: list[AgeGroup] = Field(min_length=1, max_length=len(AgeGroup))
    involuntary_holds: bool = Field(description="Takes patients under a 96-hour detention")
    security_level: SecurityLevel
    exclusions: list[ClinicalNeed] = Field(default_factory=list, max_length=len(ClinicalNeed))

    def spec(self) -> UnitSpec:
        return UnitSpec(
            self.unit_type,
            self.capacity,
            frozenset(self.patient_types),
            self.involuntary_holds,
            self.security_level,
            frozenset(self.exclusions),
            self.available,
        )


class _FacilityIn(_In):
    name: str = Field(min_length=1, max_length=200, description="The facility's name")
    county_fips: CountyFips
    phone: str = Field(pattern=PHONE.pattern, description="The facility's admissions line")
    contact_email: str = Field(
        pattern=EMAIL.pattern,
        max_length=254,
        description="The facility's bed desk (not a person's, not a patient's): where"
        " bed-update reminders go",
    )
    medical_clearance_required: bool = False
    units: list[UnitSettingsIn] = Field(min_length=1, max_length=len(UnitType))

    def record(self, facility_id: str) -> FacilityRecord:
        return FacilityRecord(
            facility_id,
            self.name,
            self.county_fips,
            self.phone,
            self.contact_email,
            self.medical_clearance_required,
            tuple(u.spec() for u in self.units),
        )


class FacilityCreate(_FacilityIn):
    facility_id: Identifier = Field(
        description="Chosen by the admin (e.g. fac-<county>-<name>): a retried POST is safe"
    )


class FacilityUpdate(_FacilityIn):
    version: int = Field(ge=1, description="The record version this change was made on")


def _source(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "registered before with these settings"},
        409: {"description": "the id is registered with other settings"},
        **RULES,
    },
)
async def register_facility(
    body: FacilityCreate,
    request: Request,
    response: Response,
    principal: Admin,
    registry: Registry,
    placement: Placement,
) -> FacilityPublic:
    """Register a facility and its units (program admin). Publishes facility-record-updated
    and its first bed-availability-updated; its numbers go stale like any other's."""
    try:
        facility, created = await registry.register(
            body.record(body.facility_id), principal, _source(request), correlation_id(request)
        )
    except InvalidRecord as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except FacilityExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except PermissionError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/facilities/{facility.facility_id}"
    return FacilityPublic.of(facility, placement.now(), placement.stale_after)


@router.put(
    "/{facility_id}",
    responses={
        403: {"description": "not a program admin, nor this facility's own client"},
        404: {"description": "no such facility"},
        409: {"description": "made on an older version of the record: read it again"},
        **RULES,
    },
)
async def change_facility(
    facility_id: Identifier,
    body: FacilityUpdate,
    request: Request,
    principal: CurrentPrincipal,
    own_facility: OptionalFacility,
    registry: Registry,
    placement: Placement,
) -> FacilityPublic:
    """Change a facility's record: a program admin any facility, a facility's client its own.
    Send the whole record with the `version` you read; publishes facility-record-updated (and
    bed-availability-updated when beds changed)."""
    try:
        facility = await registry.change(
            facility_id,
            body.record(facility_id),
            body.version,
            principal,
            own_facility,
            _source(request),
            correlation_id(request),
        )
    except NotYourFacility as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except PermissionError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except UnknownFacility as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "facility not found") from exc
    except InvalidRecord as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except (StaleVersion, ConcurrentChange) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc) or "changed concurrently") from exc
    return FacilityPublic.of(facility, placement.now(), placement.stale_after)
