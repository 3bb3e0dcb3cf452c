"""The workspace's pages: caseload, referral, follow-ups, bed search, trainings, the
supervisor's team and the intake form. Each page asks the services as the signed-in user."""

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from cmhl_contracts.activity import BarrierKind
from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_contracts.placement import AgeGroup, AttemptResult, ClinicalNeed
from cmhl_contracts.vocabulary import (
    ContactPlace,
    FollowUpOutcome,
    PersonLocation,
    PresentingNeed,
    ReferralSource,
    ReferralStatus,
)
from cmhl_servicekit.auth import Role
from cmhl_workspace.adapters.api import ApiRefused
from cmhl_workspace.application.sessions import Session
from cmhl_workspace.domain.views import (
    CLOSED,
    DECLINE_REASONS,
    ELSEWHERE_REASONS,
    PLACEMENT_FAILURES,
    RosterError,
    consent_states,
    parse_roster,
    timeline,
)
from cmhl_workspace.entrypoints.http.context import (
    CurrentSession,
    QuietSession,
    call,
    checked_form,
    done,
    program_day,
    render,
    require,
    workspace_of,
)

router = APIRouter(include_in_schema=False)
PAGE = 25
# The follow-ups page: the most pressing first, this many of each list (the totals are counted).
LISTED = (("due", 50), ("overdue", 25), ("scheduled", 10))
# The referral service's batch lookup takes this many ids at once.
SUMMARY_BATCH = 100
STAFF = (Role.LIAISON, Role.SUPERVISOR)
COUNTIES = sorted(MISSOURI_COUNTIES.items(), key=lambda item: item[1])


def text_of(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _moment(request: Request, value: str) -> str | None:
    """A date-and-time field as ISO 8601: with the offset the page's script adds, or without
    scripts as typed, in the program's time zone."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiRefused(422, "a date and time field was not understood; pick it again") from None
    zone = workspace_of(request).zone
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).isoformat()


def _whole_number(value: str) -> int:
    if not value:
        return 0
    if not value.isdigit():
        raise ApiRefused(422, "seats must be a whole number")
    return int(value)


@router.get("/")
async def home(session: CurrentSession) -> RedirectResponse:
    return RedirectResponse("/team" if not session.has(Role.LIAISON) else "/caseload", 303)


# ------------------------------------------------------------------------------ caseload


@dataclass(frozen=True)
class CaseloadFilters:
    """What narrows a caseload. The family name is only ever posted (never in a URL, so never
    in an access log, a browser history or a sign-in's way back)."""

    status: str = ""
    county_fips: str = ""
    agency_id: str = ""
    repeat: str = ""
    liaison: str = ""
    name: str = ""

    def checked(self) -> "CaseloadFilters":
        # A filter form sends every field, the unused ones empty: empty means any.
        if self.status and self.status not in ReferralStatus._value2member_map_:
            raise ApiRefused(422, f"there is no status {self.status!r}; pick one from the list")
        if self.repeat not in ("", "yes", "no"):
            raise ApiRefused(422, "repeat involvement is yes, no or any")
        return self

    def params(self, session: Session) -> dict[str, Any]:
        return {
            "status": self.status or None,
            "county_fips": self.county_fips or None,
            "agency_id": self.agency_id or None,
            "repeat_involvement": {"yes": "true", "no": "false"}.get(self.repeat),
            "family_name": self.name or None,
            "liaison_id": self.liaison if session.has(Role.SUPERVISOR) and self.liaison else None,
        }


@router.get("/caseload", response_class=HTMLResponse)
async def caseload(
    request: Request,
    session: CurrentSession,
    status: Annotated[str, Query(max_length=40)] = "",
    county_fips: Annotated[str, Query(max_length=5)] = "",
    agency_id: Annotated[str, Query(max_length=64)] = "",
    repeat: Annotated[str, Query(max_length=3)] = "",
    liaison: Annotated[str, Query(max_length=64)] = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    filters = CaseloadFilters(status, county_fips, agency_id, repeat, liaison)
    return await _caseload(request, session, filters.checked(), cursor)


@router.post("/caseload", response_class=HTMLResponse)
async def search_caseload(request: Request, session: CurrentSession) -> HTMLResponse:
    """The filter form, posted: with a family name the answer is this page itself, not a
    redirect to a URL holding the name."""
    form = await checked_form(request, session)
    fields = {name: text_of(form, name) for name in CaseloadFilters.__dataclass_fields__}
    if len(fields["name"]) > 100:
        raise ApiRefused(422, "a family name has at most 100 characters")
    cursor = text_of(form, "cursor") or None
    return await _caseload(request, session, CaseloadFilters(**fields).checked(), cursor)


async def _caseload(
    request: Request, session: Session, filters: CaseloadFilters, cursor: str | None
) -> HTMLResponse:
    require(session, *STAFF)
    page, overview = await asyncio.gather(
        call(
            request,
            session,
            "GET",
            "referral",
            "/api/v1/referrals",
            params={**filters.params(session), "cursor": cursor, "limit": PAGE},
        ),
        call(request, session, "GET", "referral", "/api/v1/referrals/overview"),
    )
    counts = overview["waiting_by_liaison"]
    waiting = counts.get(filters.liaison, 0) if filters.liaison else sum(counts.values())
    return await render(
        request,
        session,
        "caseload.html",
        nav="caseload",
        rows=page["data"],
        next_cursor=page["next_cursor"],
        waiting=waiting,
        waiting_more=any(n >= overview["cap"] for n in counts.values()),
        filters=filters,
        statuses=list(ReferralStatus),
        counties=COUNTIES,
        drawn_at=workspace_of(request).clock.now().isoformat(),
    )


@router.get("/caseload/newest")
async def caseload_newest(request: Request, session: QuietSession) -> JSONResponse:
    """When the newest referral of the caseload arrived: the page's script compares it with
    when it was drawn and offers a refresh. A time only: no record is read, and the check is
    not activity (an unattended screen still signs out)."""
    require(session, *STAFF)
    overview = await call(request, session, "GET", "referral", "/api/v1/referrals/overview")
    return JSONResponse({"newest": overview["newest_received_at"] or ""})


# ------------------------------------------------------------------------------ referral


async def _referral_page(request: Request, session: Session, referral_id: uuid.UUID) -> Any:
    path = f"/api/v1/referrals/{referral_id}"
    referral, follow_ups, placements, barriers = await asyncio.gather(
        call(request, session, "GET", "referral", path),
        call(
            request,
            session,
            "GET",
            "followup",
            "/api/v1/follow-ups",
            params={"referral_id": str(referral_id), "limit": 50},
        ),
        call(
            request,
            session,
            "GET",
            "placement",
            "/api/v1/placement-requests",
            params={"referral_id": str(referral_id), "limit": 50},
        ),
        call(
            request,
            session,
            "GET",
            "referral",
            "/api/v1/barriers",
            params={"referral_id": str(referral_id), "limit": 50},
        ),
    )
    return referral, follow_ups["data"], placements["data"], barriers["items"]


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
async def referral_page(
    request: Request, referral_id: uuid.UUID, session: CurrentSession
) -> HTMLResponse:
    require(session, *STAFF)
    referral, follow_ups, placements, barriers = await _referral_page(request, session, referral_id)
    today = program_day(request)
    consents = consent_states(referral.get("consents", []), today)
    # An older referral service (during a rollout) names no transitions: no status actions.
    allowed = referral.get("allowed_transitions", [])
    return await render(
        request,
        session,
        "referral.html",
        nav="caseload",
        r=referral,
        county=MISSOURI_COUNTIES.get(referral["county_fips"], referral["county_fips"]),
        timeline=timeline(referral["history"], follow_ups, placements),
        placements=placements,
        can_accept="accepted" in allowed,
        can_decline="declined" in allowed,
        can_schedule="appointment_scheduled" in allowed,
        other_transitions=[
            s for s in allowed if s not in {"accepted", "declined", "appointment_scheduled"}
        ],
        closed=not allowed,
        decline_reasons=DECLINE_REASONS,
        elsewhere_reasons=ELSEWHERE_REASONS,
        places=list(ContactPlace),
        consents=consents,
        agency_sees_status=any(
            c.state == "in force"
            and c.recipient == referral["agency"]["agency_id"]
            and "referral_status" in c.scope
            for c in consents
        ),
        barriers=barriers,
        barrier_kinds=list(BarrierKind),
        connections=referral.get("connections", []),
        today=today.isoformat(),
        consent_until=(today + timedelta(days=365)).isoformat(),
    )


@router.post("/referrals/{referral_id}/status")
async def change_status(
    request: Request, referral_id: uuid.UUID, session: CurrentSession
) -> Response:
    require(session, *STAFF)
    form = await checked_form(request, session)
    to = text_of(form, "status")
    body: dict[str, Any] = {"status": to}
    if reason := text_of(form, "reason"):
        body["reason"] = reason
    if appointment := text_of(form, "appointment_at"):
        body["appointment_at"] = _moment(request, appointment)
    here = f"/referrals/{referral_id}"
    return await act(
        request,
        session,
        what="status",
        back=here,
        body=body,
        call_=("POST", "referral", f"/api/v1{here}/status"),
        success=f"Status changed to {to.replace('_', ' ')}.",
    )


@router.post("/referrals/{referral_id}/contacts")
async def record_contact(
    request: Request, referral_id: uuid.UUID, session: CurrentSession
) -> Response:
    require(session, *STAFF)
    form = await checked_form(request, session)
    body: dict[str, Any] = {
        "place": text_of(form, "place"),
        "reached": text_of(form, "reached") == "yes",
    }
    if attempted := text_of(form, "attempted_at"):
        body["attempted_at"] = _moment(request, attempted)
    here = f"/referrals/{referral_id}"
    return await act(
        request,
        session,
        what="contact",
        back=here,
        body=body,
        call_=("POST", "referral", f"/api/v1{here}/contacts"),
        success="Contact recorded.",
    )


@router.post("/referrals/{referral_id}/consents")
async def record_consent(
    request: Request, referral_id: uuid.UUID, session: CurrentSession
) -> Response:
    require(session, *STAFF)
    form = await checked_form(request, session)
    here = f"/referrals/{referral_id}"
    body = {
        "recipient": text_of(form, "recipient"),
        "purpose": text_of(form, "purpose"),
        "scope": [str(s) for s in form.getlist("scope")],
        "signed_on": text_of(form, "signed_on"),
        "expires_on": text_of(form, "expires_on"),
    }
    return await act(
        request,
        session,
        what="consent",
        back=here,
        body=body,
        call_=("POST", "referral", f"/api/v1{here}/consents"),
        success="Consent recorded.",
    )


@router.post("/referrals/{referral_id}/consents/{consent_id}/revoke")
async def revoke_consent(
    request: Request, referral_id: uuid.UUID, consent_id: uuid.UUID, session: CurrentSession
) -> Response:
    require(session, *STAFF)
    await checked_form(request, session)
    here = f"/referrals/{referral_id}"
    return await act(
        request,
        session,
        what="revocation",
        back=here,
        call_=("DELETE", "referral", f"/api/v1{here}/consents/{consent_id}"),
        success="Consent revoked: nothing more is disclosed under it.",
    )


@router.post("/referrals/{referral_id}/assignment")
async def reassign(request: Request, referral_id: uuid.UUID, session: CurrentSession) -> Response:
    require(session, Role.SUPERVISOR)
    form = await checked_form(request, session)
    to = text_of(form, "liaison_id")
    back = text_of(form, "back") if text_of(form, "back").startswith("/team") else "/team"
    return await act(
        request,
        session,
        what="reassignment",
        back=back,
        body={"liaison_id": to},
        call_=("POST", "referral", f"/api/v1/referrals/{referral_id}/assignment"),
        success=f"Referral reassigned to {to}.",
    )


Success = str | Callable[[Any], tuple[str, str]]


async def act(
    request: Request,
    session: Session,
    *,
    what: str,
    back: str,
    call_: tuple[str, str, str],
    body: Any = None,
    success: Success,
    idempotency_key: str | None = None,
) -> Response:
    """One form's call to a service as the user, then back to a page saying what happened: on
    success `success` (a text for `back`, or where to go and the text, from the answer), on a
    refusal the service's reason and what to do next, at `back`. A form drawn with its own
    `idempotency_key` is stored once however often it is sent."""
    method, service, path = call_
    try:
        answer = await call(
            request, session, method, service, path, json=body, idempotency_key=idempotency_key
        )
    except ApiRefused as exc:
        return await done(request, session, back, _next_step(exc, what), "error")
    where, text = (back, success) if isinstance(success, str) else success(answer)
    return await done(request, session, where, text)


def _next_step(exc: ApiRefused, what: str) -> str:
    """The service's reason, and what the user can do about it."""
    advice = {
        400: "check the values and send it again",
        403: "ask your supervisor if you need this done",
        404: "it is not in your caseload any more; open the caseload again",
        409: "reload the page to see the current state, then try again",
        422: "correct the marked value and send it again",
        503: "wait a moment and try again",
    }.get(exc.status, "try again; if it keeps failing, tell the on-call operator")
    return f"The {what} was not recorded: {exc.detail}. What to do: {advice}."


# ------------------------------------------------------------------------------ follow-ups


async def _names(request: Request, session: Session, referral_ids: set[str]) -> dict[str, str]:
    """Whose each referral is, asked of the referral service in batches (it checks and audits
    each record); a referral this user may not see keeps no name."""
    ordered = sorted(referral_ids)
    batches = [ordered[i : i + SUMMARY_BATCH] for i in range(0, len(ordered), SUMMARY_BATCH)]
    answers = await asyncio.gather(
        *(
            call(
                request,
                session,
                "POST",
                "referral",
                "/api/v1/referrals/summaries",
                json={"referral_ids": batch},
            )
            for batch in batches
        )
    )
    names = {rid: "(not in your caseload)" for rid in ordered}
    for rows in answers:
        names.update({r["referral_id"]: f"{r['family_name']}, {r['given_name']}" for r in rows})
    return names


@router.get("/follow-ups", response_class=HTMLResponse)
async def follow_ups(request: Request, session: CurrentSession) -> HTMLResponse:
    require(session, Role.LIAISON)
    due, overdue, upcoming, overview = await asyncio.gather(
        *(
            call(
                request,
                session,
                "GET",
                "followup",
                "/api/v1/follow-ups",
                # Their own, also for a liaison who supervises too.
                params={"state": state, "limit": limit, "liaison_id": session.subject},
            )
            for state, limit in LISTED
        ),
        call(request, session, "GET", "followup", "/api/v1/follow-ups/overview"),
    )
    lists = {"due": due["data"], "overdue": overdue["data"], "upcoming": upcoming["data"]}
    totals = {
        "due": overview["due_by_liaison"].get(session.subject, 0),
        "overdue": overview["overdue_by_liaison"].get(session.subject, 0),
    }
    names = await _names(
        request, session, {f["referral_id"] for rows in lists.values() for f in rows}
    )
    return await render(
        request,
        session,
        "follow_ups.html",
        nav="follow-ups",
        lists=lists,
        names=names,
        outcomes=list(FollowUpOutcome),
        totals=totals,
        total_cap=overview["cap"],
    )


@router.post("/follow-ups/{follow_up_id}/outcome")
async def record_outcome(
    request: Request, follow_up_id: uuid.UUID, session: CurrentSession
) -> Response:
    require(session, Role.LIAISON)
    form = await checked_form(request, session)
    outcome = text_of(form, "outcome")
    return await act(
        request,
        session,
        what="outcome",
        back="/follow-ups",
        body={"outcome": outcome},
        call_=("POST", "followup", f"/api/v1/follow-ups/{follow_up_id}/outcome"),
        success=f"Outcome recorded: {outcome.replace('_', ' ')}.",
    )


@router.post("/referrals/{referral_id}/follow-ups")
async def add_follow_up(
    request: Request, referral_id: uuid.UUID, session: CurrentSession
) -> Response:
    require(session, *STAFF)
    form = await checked_form(request, session)
    here = f"/referrals/{referral_id}"
    return await act(
        request,
        session,
        what="follow-up",
        back=here,
        body={"referral_id": str(referral_id), "due_at": _moment(request, text_of(form, "due_at"))},
        call_=("POST", "followup", "/api/v1/follow-ups"),
        success="Follow-up added: it comes due at the time you chose.",
    )


# ------------------------------------------------------------------------------ notifications


@router.get("/notifications", response_class=HTMLResponse)
async def notifications(request: Request, session: CurrentSession) -> HTMLResponse:
    require(session, *STAFF)
    listed, address = await asyncio.gather(
        call(request, session, "GET", "notifications", "/api/v1/notifications"),
        call(request, session, "GET", "notifications", "/api/v1/notifications/address"),
    )
    rows = listed["data"]
    names = await _names(request, session, {n["referral_id"] for n in rows})
    return await render(
        request,
        session,
        "notifications.html",
        nav="notifications",
        rows=rows,
        names=names,
        address=address["address"] or "",
    )


@router.post("/notifications/{notification_id}/read")
async def notification_read(
    request: Request, notification_id: uuid.UUID, session: CurrentSession
) -> Response:
    require(session, *STAFF)
    await checked_form(request, session)
    return await act(
        request,
        session,
        what="change",
        back="/notifications",
        call_=("POST", "notifications", f"/api/v1/notifications/{notification_id}/read"),
        success="Marked as read.",
    )


@router.post("/notifications/address")
async def notification_address(request: Request, session: CurrentSession) -> Response:
    require(session, *STAFF)
    form = await checked_form(request, session)
    address = text_of(form, "address") or None
    return await act(
        request,
        session,
        what="address",
        back="/notifications",
        body={"address": address},
        call_=("PUT", "notifications", "/api/v1/notifications/address"),
        success=(
            f"Notifications will be mailed to {address}."
            if address
            else "Notifications are no longer mailed; they stay here."
        ),
    )


# ------------------------------------------------------------------------------ bed search


@router.get("/placements", response_class=HTMLResponse)
async def placements(request: Request, session: CurrentSession) -> HTMLResponse:
    require(session, *STAFF)
    found = await call(
        request, session, "GET", "placement", "/api/v1/placement-requests", params={"limit": 50}
    )
    return await render(
        request, session, "placements.html", nav="placements", requests=found["data"]
    )


@router.get("/placements/new", response_class=HTMLResponse)
async def new_placement(
    request: Request, session: CurrentSession, referral_id: Annotated[uuid.UUID, Query()]
) -> HTMLResponse:
    require(session, *STAFF)
    referral = await call(request, session, "GET", "referral", f"/api/v1/referrals/{referral_id}")
    return await render(
        request,
        session,
        "placement_new.html",
        nav="placements",
        r=referral,
        age_groups=list(AgeGroup),
        needs=list(ClinicalNeed),
        counties=COUNTIES,
    )


@router.post("/placements")
async def open_placement(request: Request, session: CurrentSession) -> Response:
    require(session, *STAFF)
    form = await checked_form(request, session)
    referral_id = text_of(form, "referral_id")
    body = {
        "request_id": text_of(form, "request_id") or str(uuid.uuid4()),
        "referral_id": referral_id,
        "detention_started_at": _moment(request, text_of(form, "detention_started_at")),
        "age_group": text_of(form, "age_group"),
        "needs": [n for n in form.getlist("needs") if isinstance(n, str)],
        "county_fips": text_of(form, "county_fips"),
    }
    return await act(
        request,
        session,
        what="bed search",
        body=body,
        back=f"/placements/new?referral_id={referral_id}",
        call_=("POST", "placement", "/api/v1/placement-requests"),
        success=lambda opened: (
            f"/placements/{opened['request_id']}",
            "Bed search opened: call the facilities in the order shown.",
        ),
    )


@router.get("/placements/{request_id}", response_class=HTMLResponse)
async def placement_page(
    request: Request, request_id: uuid.UUID, session: CurrentSession
) -> HTMLResponse:
    require(session, *STAFF)
    found = await call(
        request, session, "GET", "placement", f"/api/v1/placement-requests/{request_id}"
    )
    facilities = await call(request, session, "GET", "placement", "/api/v1/facilities")
    names = {f["facility_id"]: f["name"] for f in facilities["data"]}
    accepted = sorted({a["facility_id"] for a in found["attempts"] if a["result"] == "accepted"})
    return await render(
        request,
        session,
        "placement.html",
        nav="placements",
        p=found,
        names=names,
        results=list(AttemptResult),
        accepted=accepted,
        failures=PLACEMENT_FAILURES,
    )


@router.post("/placements/{request_id}/attempts")
async def log_call(request: Request, request_id: uuid.UUID, session: CurrentSession) -> Response:
    require(session, *STAFF)
    form = await checked_form(request, session)
    result = text_of(form, "result")
    body = {
        "attempt_id": text_of(form, "attempt_id") or str(uuid.uuid4()),
        "facility_id": text_of(form, "facility_id"),
        "result": result,
        "reason_code": text_of(form, "reason_code") or None,
    }
    here = f"/placements/{request_id}"
    return await act(
        request,
        session,
        what="call",
        back=here,
        body=body,
        call_=("POST", "placement", f"/api/v1/placement-requests/{request_id}/attempts"),
        success=f"Call logged: {result.replace('_', ' ')}.",
    )


@router.post("/placements/{request_id}/completion")
async def complete_placement(
    request: Request, request_id: uuid.UUID, session: CurrentSession
) -> Response:
    require(session, *STAFF)
    form = await checked_form(request, session)
    outcome = text_of(form, "outcome")
    body = {
        "outcome": outcome,
        "facility_id": text_of(form, "facility_id") or None if outcome == "placed" else None,
        "failure_reason": text_of(form, "failure_reason") or None if outcome == "failed" else None,
    }
    here = f"/placements/{request_id}"
    return await act(
        request,
        session,
        what="completion",
        back=here,
        body=body,
        call_=("POST", "placement", f"/api/v1/placement-requests/{request_id}/completion"),
        success="Bed search complete: placed." if outcome == "placed" else "Bed search closed.",
    )


# ------------------------------------------------------------------------------ trainings


@router.get("/trainings", response_class=HTMLResponse)
async def trainings(request: Request, session: CurrentSession) -> HTMLResponse:
    require(session, *STAFF)
    sessions, courses = await asyncio.gather(
        call(request, session, "GET", "training", "/api/v1/training-sessions"),
        call(request, session, "GET", "training", "/api/v1/courses"),
    )
    return await render(
        request,
        session,
        "trainings.html",
        nav="trainings",
        sessions=sorted(sessions["sessions"], key=lambda s: s["held_on"], reverse=True)[:50],
        courses=[c for c in courses if not c["retired"]],
        counties=COUNTIES,
        today=program_day(request).isoformat(),
    )


@router.post("/trainings")
async def record_training(request: Request, session: CurrentSession) -> Response:
    require(session, *STAFF)
    form = await checked_form(request, session)
    host = text_of(form, "host_agency_id")
    upload = form.get("roster")
    try:
        text = ""
        if isinstance(upload, UploadFile) or hasattr(upload, "read"):
            raw = await upload.read()  # type: ignore[union-attr]
            text = raw.decode("utf-8-sig")
        officers = parse_roster(text, host)
    except (RosterError, UnicodeDecodeError) as exc:
        reason = str(exc) if isinstance(exc, RosterError) else "the file is not UTF-8 text"
        return await done(
            request,
            session,
            "/trainings",
            f"The roster was not read: {reason}. What to do: fix the file "
            "(one officer id per line) and upload it again.",
            "error",
        )
    body = {
        "session_id": str(uuid.uuid4()),
        "course_id": text_of(form, "course_id"),
        "held_on": text_of(form, "held_on"),
        "county_fips": text_of(form, "county_fips"),
        "host_agency_id": host,
        "capacity": max(len(officers), _whole_number(text_of(form, "capacity")), 1),
        "roster": officers,
        "status": "completed",
    }
    return await act(
        request,
        session,
        what="training",
        back="/trainings",
        body=body,
        call_=("POST", "training", "/api/v1/training-sessions"),
        success=lambda created: (
            f"/trainings/{created['session_id']}",
            f"Training recorded with {len(officers)} officers.",
        ),
    )


@router.get("/trainings/{session_id}", response_class=HTMLResponse)
async def training_page(
    request: Request, session_id: uuid.UUID, session: CurrentSession
) -> HTMLResponse:
    require(session, *STAFF)
    found = await call(
        request, session, "GET", "training", f"/api/v1/training-sessions/{session_id}"
    )
    return await render(request, session, "training.html", nav="trainings", t=found)


@router.get("/trainings/{session_id}/certificates/{officer_id}", response_class=HTMLResponse)
async def certificate(
    request: Request,
    session_id: uuid.UUID,
    officer_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32,64}$")],
    session: CurrentSession,
) -> HTMLResponse:
    require(session, *STAFF)
    html = await call(
        request,
        session,
        "GET",
        "training",
        f"/api/v1/training-sessions/{session_id}/certificates/{officer_id}",
    )
    # The training service's printable page styles itself inline and loads nothing.
    policy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
    return HTMLResponse(str(html), headers={"content-security-policy": policy})


# ------------------------------------------------------------------------------ supervisor


@router.get("/team", response_class=HTMLResponse)
async def team(request: Request, session: CurrentSession) -> HTMLResponse:
    require(session, Role.SUPERVISOR)
    # Counts for the team (no records read), and the newest referrals to reassign.
    recent, waiting = await asyncio.gather(
        call(request, session, "GET", "referral", "/api/v1/referrals", params={"limit": PAGE}),
        call(request, session, "GET", "referral", "/api/v1/referrals/overview"),
    )
    follow_ups = await call(
        request,
        session,
        "GET",
        "followup",
        "/api/v1/follow-ups/overview",
        params={"liaison_id": sorted(waiting["waiting_by_liaison"])},
    )
    counts = waiting["waiting_by_liaison"]
    overdue = follow_ups["overdue_by_liaison"]
    return await render(
        request,
        session,
        "team.html",
        nav="team",
        liaisons=sorted(set(counts) | set(overdue)),
        waiting_counts=counts,
        waiting_cap=waiting["cap"],
        follow_up_cap=follow_ups["cap"],
        overdue_counts=overdue,
        due_counts=follow_ups["due_by_liaison"],
        recent=recent["data"],
        closed=CLOSED,
    )


# ------------------------------------------------------------------------------ intake


@router.get("/intake", response_class=HTMLResponse)
async def intake(request: Request, session: CurrentSession) -> HTMLResponse:
    require(session, *STAFF)
    return await render(
        request,
        session,
        "intake.html",
        nav="intake",
        sources=list(ReferralSource),
        needs=list(PresentingNeed),
        locations=list(PersonLocation),
        counties=COUNTIES,
    )


@router.post("/intake")
async def submit_intake(request: Request, session: CurrentSession) -> Response:
    require(session, *STAFF)
    form = await checked_form(request, session)
    body: dict[str, Any] = {
        "agency": {"agency_id": text_of(form, "agency_id"), "source": text_of(form, "source")},
        "agency_reference": text_of(form, "agency_reference") or None,
        "officer_reference": text_of(form, "officer_reference") or None,
        "county_fips": text_of(form, "county_fips"),
        "primary_need": text_of(form, "primary_need"),
        "person_location": text_of(form, "person_location"),
        "person": {
            "given_name": text_of(form, "given_name"),
            "family_name": text_of(form, "family_name"),
            "birth_date": text_of(form, "birth_date"),
        },
        "narrative": text_of(form, "narrative") or None,
        "referred_at": _moment(request, text_of(form, "referred_at")),
    }
    return await act(
        request,
        session,
        what="referral",
        back="/intake",
        body=body,
        call_=("POST", "referral", "/api/v1/referrals"),
        success=lambda created: (
            f"/referrals/{created['referral_id']}",
            "Referral recorded and assigned.",
        ),
    )
