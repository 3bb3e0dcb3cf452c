"""The placement API under /api/v1: facilities and their beds, liaisons' placement requests."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status

from cmhl_contracts.events import CountyFips, Identifier
from cmhl_placement.application.ports import ConcurrentChange, ReferralsUnavailable
from cmhl_placement.application.registry import UnknownFacility
from cmhl_placement.application.service import (
    Actor,
    NotVisible,
    OpenRequest,
    PlacementService,
    ReferralClosed,
    ReferralNotVisible,
    WrongFacility,
)
from cmhl_placement.domain.facility import InvalidAvailability
from cmhl_placement.domain.request import InvalidRequest, PlacementRequest, RequestClosed
from cmhl_placement.entrypoints.http.schemas import (
    AttemptCreate,
    AvailabilityUpdate,
    Completion,
    FacilitiesPublic,
    FacilityPublic,
    PlacementRequestCreate,
    PlacementRequestPublic,
    PlacementRequestsPublic,
)
from cmhl_servicekit.auth import (
    CurrentFacility,
    CurrentPrincipal,
    ForwardableToken,
    OptionalFacility,
    Principal,
    Role,
    VerifiedClaims,
    require_any,
)
from cmhl_servicekit.http import correlation_id

router = APIRouter(prefix="/api/v1")

Staff = Annotated[Principal, require_any(Role.LIAISON, Role.SUPERVISOR)]
Anyone = Annotated[Principal, require_any(*Role)]


def _service(request: Request) -> PlacementService:
    service: PlacementService = request.app.state.placement
    return service


Service = Annotated[PlacementService, Depends(_service)]


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal, request.client.host if request.client else None)


Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "not found (or, for a request, not yours)"}}
RULES: Responses = {422: {"description": "breaks a rule; the detail names it"}}
CLOSED: Responses = {409: {"description": "the request is already placed or failed"}}


# ---------------------------------------------------------------- facilities


@router.get("/facilities", tags=["facilities"])
async def list_facilities(
    _: Anyone,
    service: Service,
    county_fips: Annotated[CountyFips | None, Query(description="one county's only")] = None,
    cmhc_region: Annotated[Identifier | None, Query(description="one region's only")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 500,
) -> FacilitiesPublic:
    """The registered facilities in id order (optionally one county's or region's), with their
    bed numbers, each with its age and whether it is stale."""
    now = service.now()
    found = await service.facilities(county_fips, cmhc_region, limit)
    data = [FacilityPublic.of(f, now, service.stale_after) for f in found]
    return FacilitiesPublic(
        data=data, count=len(data), stale_after_hours=service.stale_after.total_seconds() / 3600
    )


@router.get(
    "/facilities/{facility_id}",
    tags=["facilities"],
    responses={**NOT_FOUND, 403: {"description": "another facility's client"}},
)
async def get_facility(
    facility_id: str, principal: CurrentPrincipal, own: OptionalFacility, service: Service
) -> FacilityPublic:
    """One facility: for staff with a role, and for the facility's own client (which reads
    the record's version here before changing it)."""
    if not principal.roles and own != facility_id:
        reason = (
            "a facility's client reads only its own" if own else "your role does not allow this"
        )
        raise HTTPException(status.HTTP_403_FORBIDDEN, reason)
    try:
        facility = await service.facility(facility_id)
    except UnknownFacility as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "facility not found") from exc
    return FacilityPublic.of(facility, service.now(), service.stale_after)


@router.put(
    "/facilities/{facility_id}/availability",
    tags=["facilities"],
    responses={
        403: {"description": "the key belongs to another facility"},
        **NOT_FOUND,
        **RULES,
        409: {"description": "changed concurrently; send again"},
    },
)
async def update_availability(
    facility_id: str,
    body: AvailabilityUpdate,
    request: Request,
    key_facility: CurrentFacility,
    claims: VerifiedClaims,
    service: Service,
) -> FacilityPublic:
    """Facility staff report free beds by unit (with a token of their facility's client);
    publishes bed-availability-updated. Units not listed keep their earlier numbers and ages."""
    counts = {u.unit_type: u.available for u in body.units}
    if len(counts) != len(body.units):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a unit is listed twice")
    # Without a name of the person who counted, the client that sent the numbers.
    reported_by = body.reported_by or str(claims.get("azp") or "unknown-client")
    try:
        facility = await service.update_availability(
            facility_id, key_facility, counts, reported_by, correlation_id(request)
        )
    except WrongFacility as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except UnknownFacility as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "facility not found") from exc
    except InvalidAvailability as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except ConcurrentChange as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "changed concurrently; send again") from exc
    return FacilityPublic.of(facility, service.now(), service.stale_after)


# ---------------------------------------------------------------- placement requests


@router.post(
    "/placement-requests",
    tags=["placement requests"],
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "this request id was opened before"}, **RULES},
)
async def open_request(
    body: PlacementRequestCreate,
    request: Request,
    response: Response,
    principal: Staff,
    service: Service,
    token: ForwardableToken,
) -> PlacementRequestPublic:
    """Open a search for an inpatient bed; answers with the facilities to call, best first.
    Publishes placement-requested; 72 and 90 hours after detention start, flags follow."""
    command = OpenRequest(
        referral_id=body.referral_id,
        credentials=token,
        detention_started_at=body.detention_started_at,
        age_group=body.age_group,
        needs=frozenset(body.needs),
        county_fips=body.county_fips,
        correlation_id=correlation_id(request),
        request_id=body.request_id,
    )
    try:
        placement, created = await service.open_request(command, _actor(request, principal))
    except PermissionError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except InvalidRequest as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except NotVisible as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "this request id is taken") from exc
    except ReferralNotVisible as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "referral not found") from exc
    except ReferralClosed as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the referral is closed; a bed search needs an open one"
        ) from exc
    except ReferralsUnavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the referral service is not answering; try again shortly",
            headers={"Retry-After": "5"},
        ) from exc
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/placement-requests/{placement.request_id}"
    return await _public(service, placement)


@router.get("/placement-requests", tags=["placement requests"])
async def list_requests(
    request: Request,
    principal: Staff,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    referral_id: Annotated[uuid.UUID | None, Query(description="one referral's only")] = None,
) -> PlacementRequestsPublic:
    """Your placement requests (a supervisor: their CMHC's), newest first."""
    found = await service.list_requests(_actor(request, principal), limit, referral_id)
    now = service.now()
    data = [PlacementRequestPublic.of(r, now) for r in found]
    return PlacementRequestsPublic(data=data, count=len(data))


@router.get("/placement-requests/{request_id}", tags=["placement requests"], responses=NOT_FOUND)
async def get_request(
    request_id: uuid.UUID, request: Request, principal: Staff, service: Service
) -> PlacementRequestPublic:
    """One request with its clock, its calls and (while open) the ranked facilities."""
    try:
        placement = await service.get_request(request_id, _actor(request, principal))
    except NotVisible as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "placement request not found") from exc
    return await _public(service, placement)


@router.post(
    "/placement-requests/{request_id}/attempts",
    tags=["placement requests"],
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, **RULES, **CLOSED},
)
async def record_attempt(
    request_id: uuid.UUID,
    body: AttemptCreate,
    request: Request,
    principal: Staff,
    service: Service,
) -> PlacementRequestPublic:
    """Log a call to a facility and its answer; publishes placement-attempted."""
    try:
        placement = await service.record_attempt(
            request_id,
            str(body.attempt_id) if body.attempt_id else None,
            body.facility_id,
            body.result,
            body.reason_code,
            body.attempted_at,
            _actor(request, principal),
            correlation_id(request),
        )
    except NotVisible as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "placement request not found") from exc
    except InvalidRequest as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except (RequestClosed, ConcurrentChange) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc) or "changed concurrently") from exc
    return await _public(service, placement)


@router.post(
    "/placement-requests/{request_id}/completion",
    tags=["placement requests"],
    responses={**NOT_FOUND, **RULES, **CLOSED},
)
async def complete_request(
    request_id: uuid.UUID,
    body: Completion,
    request: Request,
    principal: Staff,
    service: Service,
) -> PlacementRequestPublic:
    """End the search: placed (at a facility whose call was accepted) or failed (with a
    reason); publishes placement-completed."""
    if (body.outcome == "placed") != (body.facility_id is not None) or (
        body.outcome == "failed"
    ) != (body.failure_reason is not None):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "placed needs facility_id only; failed needs failure_reason only",
        )
    try:
        placement = await service.complete(
            request_id,
            body.facility_id,
            body.failure_reason,
            _actor(request, principal),
            correlation_id(request),
        )
    except NotVisible as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "placement request not found") from exc
    except InvalidRequest as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except (RequestClosed, ConcurrentChange) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc) or "changed concurrently") from exc
    return await _public(service, placement)


async def _public(service: PlacementService, placement: PlacementRequest) -> PlacementRequestPublic:
    candidates = await service.candidates(placement) if placement.status == "open" else []
    return PlacementRequestPublic.of(placement, service.now(), candidates)
