"""The workspace's pages for what a liaison does beyond a referral's lifecycle: finding a
treatment or support service in the directory and connecting a person to it, recording the
structural barriers that stood in the way, and the questions police and courts asked."""

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from cmhl_contracts.activity import BarrierKind, ConsultationTopic
from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_contracts.directory import ServiceType
from cmhl_contracts.vocabulary import ReferralSource
from cmhl_workspace.adapters.api import ApiRefused
from cmhl_workspace.application.sessions import Session
from cmhl_workspace.entrypoints.http.context import (
    CurrentSession,
    call,
    checked_form,
    form_key,
    program_day,
    render,
    require,
)
from cmhl_workspace.entrypoints.http.pages import COUNTIES, STAFF, act, text_of

router = APIRouter(include_in_schema=False)
DIRECTORY_PAGE = 20
LISTED = 25


def _county(value: str) -> str:
    if value and value not in MISSOURI_COUNTIES:
        raise ApiRefused(422, "there is no such county; pick one from the list")
    return value


# ------------------------------------------------------------------------------ directory


@router.get("/directory", response_class=HTMLResponse)
async def directory(
    request: Request,
    session: CurrentSession,
    county_fips: Annotated[str, Query(max_length=5)] = "",
    service_type: Annotated[str, Query(max_length=40)] = "",
    referral_id: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """Services by county and type. Opened from a referral's page it offers to record the
    connection; the directory holds services, never people, so a search reads no record."""
    require(session, *STAFF)
    _county(county_fips)
    if service_type and service_type not in ServiceType._value2member_map_:
        raise ApiRefused(422, f"there is no service type {service_type!r}; pick one from the list")
    page: dict[str, Any] = {"items": [], "next_cursor": None}
    if county_fips:
        page = await call(
            request,
            session,
            "GET",
            "referral",
            "/api/v1/directory/services",
            params={
                "county_fips": county_fips,
                "service_type": service_type or None,
                "limit": DIRECTORY_PAGE,
                "cursor": cursor,
            },
        )
    return await render(
        request,
        session,
        "directory.html",
        nav="directory",
        services=page["items"],
        next_cursor=page.get("next_cursor"),
        county_fips=county_fips,
        county_name=MISSOURI_COUNTIES.get(county_fips, ""),
        service_type=service_type,
        referral_id=str(referral_id) if referral_id else "",
        counties=COUNTIES,
        service_types=list(ServiceType),
    )


@router.post("/referrals/{referral_id}/connections")
async def connect(request: Request, referral_id: uuid.UUID, session: CurrentSession) -> Response:
    require(session, *STAFF)
    form = await checked_form(request, session)
    here = f"/referrals/{referral_id}"
    return await act(
        request,
        session,
        what="connection",
        back=here,
        body={"service_id": text_of(form, "service_id")},
        call_=("POST", "referral", f"/api/v1{here}/connections"),
        success="Connection to the service recorded.",
    )


# ------------------------------------------------------------------------------ barriers


@router.post("/referrals/{referral_id}/barriers")
async def referral_barrier(
    request: Request, referral_id: uuid.UUID, session: CurrentSession
) -> Response:
    """A barrier met while working one referral: its county is the referral's."""
    link = {"referral_id": str(referral_id)}
    return await _record_barrier(request, session, f"/referrals/{referral_id}", lambda _: link)


@router.post("/activity/barriers")
async def county_barrier(request: Request, session: CurrentSession) -> Response:
    """A barrier in a county, met outside any one referral (a unit closed, no transport)."""
    return await _record_barrier(
        request,
        session,
        "/activity",
        lambda form: {"county_fips": _county(text_of(form, "county_fips"))},
    )


async def _record_barrier(
    request: Request, session: Session, back: str, link: Callable[[FormData], dict[str, str]]
) -> Response:
    require(session, *STAFF)
    form = await checked_form(request, session)
    return await act(
        request,
        session,
        what="barrier",
        back=back,
        body={
            "kind": text_of(form, "kind"),
            "occurred_on": text_of(form, "occurred_on") or program_day(request).isoformat(),
            **link(form),
        },
        call_=("POST", "referral", "/api/v1/barriers"),
        success="Barrier recorded.",
        idempotency_key=form_key(form),
    )


# ------------------------------------------------------------------------------ consultations


@router.post("/activity/consultations")
async def consultation(request: Request, session: CurrentSession) -> Response:
    require(session, *STAFF)
    form = await checked_form(request, session)
    return await act(
        request,
        session,
        what="consultation",
        back="/activity",
        body={
            "county_fips": _county(text_of(form, "county_fips")),
            "occurred_on": text_of(form, "occurred_on") or program_day(request).isoformat(),
            "asked_by": text_of(form, "asked_by"),
            "topic": text_of(form, "topic"),
        },
        call_=("POST", "referral", "/api/v1/consultations"),
        success="Consultation recorded.",
        idempotency_key=form_key(form),
    )


@router.get("/activity", response_class=HTMLResponse)
async def activity(
    request: Request,
    session: CurrentSession,
    county_fips: Annotated[str, Query(max_length=5)] = "",
) -> HTMLResponse:
    """The forms, and the latest consultations and county barriers the user may see."""
    require(session, *STAFF)
    _county(county_fips)
    params = {"county_fips": county_fips or None, "limit": LISTED}
    consultations = await call(
        request, session, "GET", "referral", "/api/v1/consultations", params=params
    )
    barriers: dict[str, Any] = {"items": []}
    if county_fips:
        barriers = await call(
            request, session, "GET", "referral", "/api/v1/barriers", params=params
        )
    return await render(
        request,
        session,
        "activity.html",
        nav="activity",
        consultations=consultations["items"],
        barriers=barriers["items"],
        county_fips=county_fips,
        county_names=MISSOURI_COUNTIES,
        counties=COUNTIES,
        kinds=list(BarrierKind),
        topics=list(ConsultationTopic),
        askers=list(ReferralSource),
        today=program_day(request).isoformat(),
    )
