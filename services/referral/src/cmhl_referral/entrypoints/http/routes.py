"""The liaisons' referral API under /api/v1."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse

from cmhl_contracts.envelope import UtcDatetime
from cmhl_contracts.events import CountyFips, Identifier, PersonName
from cmhl_contracts.vocabulary import ReferralStatus
from cmhl_referral.application.ports import CaseloadQuery, ConcurrentChange
from cmhl_referral.application.service import (
    Actor,
    NotAllowed,
    NotVisible,
    ReferralService,
    ResubmissionNotVisible,
)
from cmhl_referral.domain.consent import InvalidConsent
from cmhl_referral.domain.lifecycle import IllegalTransition
from cmhl_referral.domain.referral import InvalidReferral, ReferralClosed, UnknownConsent
from cmhl_referral.entrypoints.http.cursor import decode_cursor, encode_cursor
from cmhl_referral.entrypoints.http.directory import connections_public
from cmhl_referral.entrypoints.http.schemas import (
    AccountingPublic,
    AccountingRequest,
    CaseloadOverview,
    ConflictDetail,
    ConsentIn,
    ConsentPublic,
    ContactAttempt,
    Disclosure,
    Reassignment,
    ReferralCreate,
    ReferralPublic,
    ReferralsPublic,
    ReferralSummary,
    StatusChange,
    SummariesRequest,
)
from cmhl_referral.entrypoints.translate import create_command
from cmhl_servicekit.auth import Principal, Role, require_any
from cmhl_servicekit.http import correlation_id

router = APIRouter(prefix="/api/v1", tags=["referrals"])

Staff = Annotated[Principal, require_any(Role.LIAISON, Role.SUPERVISOR)]


def _service(request: Request) -> ReferralService:
    service: ReferralService = request.app.state.referrals
    return service


Service = Annotated[ReferralService, Depends(_service)]


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal, None, request.client.host if request.client else None)


@router.post(
    "/referrals",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "this agency reference was submitted before: the stored referral"},
        409: {"description": "this agency reference was submitted before, not to your caseload"},
    },
)
async def create_referral(
    body: ReferralCreate, request: Request, response: Response, principal: Staff, service: Service
) -> ReferralPublic:
    """Record a referral from law enforcement or a court. Answers after it is durable."""
    consent = body.part2_consent
    command = create_command(
        body,
        correlation_id(request),
        consent=consent.terms() if consent else None,
    )
    try:
        result = await service.create(command, _actor(request, principal))
    except (InvalidReferral, InvalidConsent) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except ResubmissionNotVisible as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    if not result.created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/referrals/{result.referral.referral_id}"
    return ReferralPublic.of(result.referral)


@router.get("/referrals/overview")
async def caseload_overview(
    request: Request,
    principal: Staff,
    service: Service,
    cap: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CaseloadOverview:
    """How many referrals wait to be acted on, per liaison (yours, or your CMHC's), and when the
    newest arrived: counts and a time only, for pages that show them without the records."""
    async with _change_errors():
        overview = await service.overview(_actor(request, principal), cap)
    return CaseloadOverview(
        waiting_by_liaison=overview.waiting_by_liaison,
        cap=cap,
        newest_received_at=overview.newest_received_at,
    )


@router.get("/referrals/{referral_id}", responses={404: {"description": "not found or not yours"}})
async def get_referral(
    referral_id: uuid.UUID, request: Request, principal: Staff, service: Service
) -> ReferralPublic:
    """One referral, if it is in your caseload (liaison) or your CMHC (supervisor)."""
    try:
        referral = await service.get(referral_id, _actor(request, principal))
    except NotVisible as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "referral not found") from exc
    public = ReferralPublic.of(referral)
    public.connections = await connections_public(request, referral_id)
    return public


Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "not found or not in your caseload"}}
CONFLICT: Responses = {
    409: {"model": ConflictDetail, "description": "not allowed from the current status"}
}
SUPERVISORS: Responses = {403: {"description": "supervisors only"}}


@asynccontextmanager
async def _change_errors() -> AsyncIterator[None]:
    """Maps the domain's refusals to HTTP answers that name the rule."""
    try:
        yield
    except NotVisible as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "referral not found") from exc
    except NotAllowed as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except (InvalidReferral, InvalidConsent) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except UnknownConsent as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "consent not found") from exc
    except ReferralClosed as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except ConcurrentChange as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the referral changed meanwhile; read it and retry"
        ) from exc


@router.post("/referrals/{referral_id}/status", responses=NOT_FOUND | CONFLICT, response_model=None)
async def change_status(
    referral_id: uuid.UUID,
    body: StatusChange,
    request: Request,
    principal: Staff,
    service: Service,
) -> ReferralPublic | JSONResponse:
    """Accept, decline (with a reason), schedule, record no-show or attendance, close."""
    try:
        async with _change_errors():
            referral = await service.change_status(
                referral_id,
                body.status,
                body.reason,
                body.appointment_at,
                _actor(request, principal),
                correlation_id(request),
            )
    except IllegalTransition as exc:
        return JSONResponse(
            ConflictDetail(
                detail=str(exc), current_status=exc.current, allowed=exc.allowed
            ).model_dump(mode="json"),
            status.HTTP_409_CONFLICT,
        )
    return ReferralPublic.of(referral)


@router.post("/referrals/{referral_id}/contacts", responses=NOT_FOUND | CONFLICT)
async def record_contact(
    referral_id: uuid.UUID,
    body: ContactAttempt,
    request: Request,
    principal: Staff,
    service: Service,
) -> ReferralPublic:
    """Record an attempt to reach the person, where and whether it succeeded."""
    async with _change_errors():
        referral = await service.record_contact(
            referral_id,
            body.place,
            body.reached,
            body.attempted_at,
            _actor(request, principal),
            correlation_id(request),
        )
    return ReferralPublic.of(referral)


@router.post(
    "/referrals/{referral_id}/consents",
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND | {200: {"description": "this consent was recorded before"}},
)
async def record_consent(
    referral_id: uuid.UUID,
    body: ConsentIn,
    request: Request,
    response: Response,
    principal: Staff,
    service: Service,
) -> ConsentPublic:
    """Record a 42 CFR Part 2 consent the person signed. It must name its recipient, purpose,
    scope and expiry, be signed by today and not have expired; the same consent sent again is
    recorded once."""
    async with _change_errors():
        consent, created = await service.record_consent(
            referral_id, body.terms(), _actor(request, principal), correlation_id(request)
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/referrals/{referral_id}/consents/{consent.consent_id}"
    return ConsentPublic.of(consent)


@router.delete("/referrals/{referral_id}/consents/{consent_id}", responses=NOT_FOUND)
async def revoke_consent(
    referral_id: uuid.UUID,
    consent_id: uuid.UUID,
    request: Request,
    principal: Staff,
    service: Service,
) -> ConsentPublic:
    """The person revoked this consent: from now on it allows no disclosure. Revoking it again
    changes nothing."""
    async with _change_errors():
        referral = await service.revoke_consent(
            referral_id, consent_id, _actor(request, principal), correlation_id(request)
        )
    return ConsentPublic.of(next(c for c in referral.consents if c.consent_id == consent_id))


@router.post(
    "/referrals/{referral_id}/assignment",
    responses=NOT_FOUND | CONFLICT | SUPERVISORS,
)
async def reassign(
    referral_id: uuid.UUID,
    body: Reassignment,
    request: Request,
    principal: Staff,
    service: Service,
) -> ReferralPublic:
    """Hand the referral to another liaison of the same CMHC (supervisors)."""
    async with _change_errors():
        referral = await service.reassign(
            referral_id, body.liaison_id, _actor(request, principal), correlation_id(request)
        )
    return ReferralPublic.of(referral)


@router.get("/referrals", responses={400: {"description": "bad cursor"}})
async def list_caseload(
    request: Request,
    principal: Staff,
    service: Service,
    status_: Annotated[ReferralStatus | None, Query(alias="status")] = None,
    county_fips: Annotated[CountyFips | None, Query()] = None,
    agency_id: Annotated[Identifier | None, Query()] = None,
    liaison_id: Annotated[Identifier | None, Query(description="supervisors only")] = None,
    received_from: Annotated[UtcDatetime | None, Query()] = None,
    received_to: Annotated[UtcDatetime | None, Query()] = None,
    repeat_involvement: Annotated[bool | None, Query()] = None,
    family_name: Annotated[
        PersonName | None,
        Query(description="Exact family name, any case or spacing (a keyed hash is searched)"),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReferralsPublic:
    """Your caseload (liaison) or your CMHC's (supervisor), newest first, page by page."""
    after = decode_cursor(cursor) if cursor else None
    query = CaseloadQuery(
        liaison_id=liaison_id,
        cmhc_id=None,
        status=status_.value if status_ else None,
        county_fips=county_fips,
        agency_id=agency_id,
        received_from=received_from,
        received_to=received_to,
        repeat_involvement=repeat_involvement,
        family_name=family_name,
        after=after,
        limit=limit,
    )
    async with _change_errors():
        referrals = await service.caseload(query, _actor(request, principal))
    last = referrals[-1] if len(referrals) == limit else None
    return ReferralsPublic(
        data=[ReferralSummary.of(r) for r in referrals],
        next_cursor=encode_cursor(last.received_at, str(last.referral_id)) if last else None,
    )


@router.post("/referrals/summaries")
async def referral_summaries(
    body: SummariesRequest, request: Request, principal: Staff, service: Service
) -> list[ReferralSummary]:
    """Summaries (whose referral, its status) of up to 100 referrals by id, for a page that lists
    other services' records; those not yours are left out, as if they did not exist."""
    async with _change_errors():
        found = await service.summaries(body.referral_ids, _actor(request, principal))
    return [ReferralSummary.of(r) for r in found]


PrivacyOfficer = Annotated[Principal, require_any(Role.PRIVACY_OFFICER)]


@router.post("/privacy/accounting", tags=["privacy"])
async def accounting_of_disclosures(
    body: AccountingRequest, request: Request, principal: PrivacyOfficer, service: Service
) -> AccountingPublic:
    """Every recorded read or change of one person's records in every service (referrals,
    follow-ups, placement requests): who, what, when, from where, outcome."""
    person_id = service.person_id_of(body.family_name, body.given_name, body.birth_date)
    async with _change_errors():
        entries = await service.accounting(person_id, _actor(request, principal))
    return AccountingPublic(
        person_id=person_id,
        disclosures=[
            Disclosure(
                service=e.service,
                actor=e.actor,
                actor_roles=list(e.actor_roles),
                action=e.action,
                record=e.record,
                referral_id=e.referral_id,
                at=e.at,
                source_address=e.source_address,
                outcome=e.outcome,
            )
            for e in entries
        ],
    )
