"""The liaisons' referral API under /api/v1."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from cmhl_referral.application.commands import CreateReferral
from cmhl_referral.application.service import Actor, NotVisible, ReferralService
from cmhl_referral.domain.referral import InvalidReferral, Part2Consent, Person
from cmhl_referral.entrypoints.http.schemas import ReferralCreate, ReferralPublic
from cmhl_servicekit.auth import Principal, Role, require_any

router = APIRouter(prefix="/api/v1", tags=["referrals"])

Staff = Annotated[Principal, require_any(Role.LIAISON, Role.SUPERVISOR)]


def _service(request: Request) -> ReferralService:
    service: ReferralService = request.app.state.referrals
    return service


Service = Annotated[ReferralService, Depends(_service)]


def _correlation_id(request: Request) -> str:
    given = request.headers.get("x-correlation-id", "")
    return given if 0 < len(given) <= 128 and given.isprintable() else str(uuid.uuid4())


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal, None, request.client.host if request.client else None)


@router.post(
    "/referrals",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "this agency reference was submitted before"}},
)
async def create_referral(
    body: ReferralCreate, request: Request, response: Response, principal: Staff, service: Service
) -> ReferralPublic:
    """Record a referral from law enforcement or a court. Answers after it is durable."""
    command = CreateReferral(
        agency_id=body.agency.agency_id,
        source=body.agency.source,
        court_type=body.agency.court_type,
        agency_reference=body.agency_reference,
        officer_reference=body.officer_reference,
        county_fips=body.county_fips,
        primary_need=body.primary_need,
        other_needs=body.other_needs,
        person_location=body.person_location,
        person=Person(
            body.person.given_name,
            body.person.family_name,
            body.person.birth_date,
            body.person.agency_person_ref,
        ),
        narrative=body.narrative,
        part2_consent=(
            Part2Consent(body.part2_consent.recipient, body.part2_consent.expires_on)
            if body.part2_consent
            else None
        ),
        referred_at=body.referred_at,
        correlation_id=_correlation_id(request),
    )
    try:
        result = await service.create(command, _actor(request, principal))
    except InvalidReferral as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if not result.created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/referrals/{result.referral.referral_id}"
    return ReferralPublic.of(result.referral)


@router.get("/referrals/{referral_id}", responses={404: {"description": "not found or not yours"}})
async def get_referral(
    referral_id: uuid.UUID, request: Request, principal: Staff, service: Service
) -> ReferralPublic:
    """One referral, if it is in your caseload (liaison) or your CMHC (supervisor)."""
    try:
        referral = await service.get(referral_id, _actor(request, principal))
    except NotVisible as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "referral not found") from exc
    return ReferralPublic.of(referral)
