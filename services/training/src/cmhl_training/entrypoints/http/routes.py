"""The training API under /api/v1 for liaisons, supervisors and privacy officers (JWT)."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import HTMLResponse

from cmhl_contracts.events import Identifier, PseudonymousId
from cmhl_servicekit.auth import Principal, Role, require_any
from cmhl_servicekit.http import correlation_id
from cmhl_training.application.service import Actor, CreateSession, TrainingService
from cmhl_training.domain.catalog import Course
from cmhl_training.domain.session import Session
from cmhl_training.entrypoints.http.certificate import render_certificate
from cmhl_training.entrypoints.http.schemas import (
    AccessPublic,
    AccountingPublic,
    CourseCreate,
    CoursePublic,
    OfficerPublic,
    OfficerRecordPublic,
    Roster,
    RuleError,
    SessionCreate,
    SessionDetail,
    SessionPublic,
    SessionsPublic,
)

router = APIRouter(prefix="/api/v1", tags=["trainings"])

Anyone = Annotated[Principal, require_any(*Role)]
Staff = Annotated[Principal, require_any(Role.LIAISON, Role.SUPERVISOR)]
Supervisor = Annotated[Principal, require_any(Role.SUPERVISOR)]
PrivacyOfficer = Annotated[Principal, require_any(Role.PRIVACY_OFFICER)]

RULES: dict[int | str, dict[str, Any]] = {
    422: {"model": RuleError, "description": "breaks a rule (named in `rule`)"},
    409: {"model": RuleError, "description": "does not fit the current state (named in `rule`)"},
}
RECORDED_BEFORE: dict[int | str, dict[str, Any]] = {
    200: {"description": "this session id was recorded before"}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such session, or not yours"},
    403: {"description": "your role does not allow this"},
}


def _service(request: Request) -> TrainingService:
    service: TrainingService = request.app.state.trainings
    return service


Service = Annotated[TrainingService, Depends(_service)]


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal, None, request.client.host if request.client else None)


def _detail(service: TrainingService, session: Session) -> SessionDetail:
    def officers(session_officers: list[Any]) -> list[OfficerPublic]:
        return [
            OfficerPublic(
                agency_id=o.agency_id, officer_ref=o.officer_ref, officer_id=service.officer_id(o)
            )
            for o in session_officers
        ]

    return SessionDetail.model_validate(
        SessionPublic.of(session).model_dump()
        | {"registered": officers(session.registered), "attended": officers(session.attended)}
    )


# The course catalog --------------------------------------------------------------------------


@router.get("/courses")
async def list_courses(
    _: Anyone,
    service: Service,
    include_retired: Annotated[bool, Query(description="retired courses too")] = False,
) -> list[CoursePublic]:
    """The POST course catalog, with each course's category and credit hours."""
    return [CoursePublic.of(c) for c in await service.list_courses(include_retired)]


@router.post("/courses", status_code=status.HTTP_201_CREATED, responses=RULES)
async def add_course(
    body: CourseCreate, request: Request, principal: Supervisor, service: Service
) -> CoursePublic:
    """Add a course (supervisors)."""
    course = Course(body.course_id, body.title, body.category, body.credit_hours)
    return CoursePublic.of(await service.add_course(course, _actor(request, principal)))


@router.post("/courses/{course_id}/retire", responses=NOT_FOUND)
async def retire_course(
    course_id: Identifier, request: Request, principal: Supervisor, service: Service
) -> CoursePublic:
    """Retire a course (supervisors): no new sessions; held sessions keep it."""
    return CoursePublic.of(await service.retire_course(course_id, _actor(request, principal)))


# Sessions ------------------------------------------------------------------------------------


@router.post(
    "/training-sessions",
    status_code=status.HTTP_201_CREATED,
    responses=RECORDED_BEFORE | RULES,
)
async def create_session(
    body: SessionCreate,
    request: Request,
    response: Response,
    principal: Staff,
    service: Service,
) -> SessionPublic:
    """Record a session you give. By default it was held and the roster lists who attended
    (publishes training-completed at once); `"status": "scheduled"` plans it with registrations
    to complete later."""
    command = CreateSession(
        session_id=str(body.session_id or uuid.uuid4()),
        course_id=body.course_id,
        held_on=body.held_on,
        county_fips=body.county_fips,
        host_agency_id=body.host_agency_id,
        capacity=body.capacity,
        roster=[o.officer() for o in body.roster],
        completed=body.status == "completed",
        correlation_id=correlation_id(request),
    )
    session, created = await service.create(command, _actor(request, principal))
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/training-sessions/{session.session_id}"
    return SessionPublic.of(session)


@router.get("/training-sessions")
async def list_sessions(request: Request, principal: Staff, service: Service) -> SessionsPublic:
    """Your sessions (supervisors: your CMHC's), latest first; summaries without rosters."""
    sessions = await service.list_sessions(_actor(request, principal))
    return SessionsPublic(sessions=[SessionPublic.of(s) for s in sessions])


@router.get("/training-sessions/{session_id}", responses=NOT_FOUND)
async def get_session(
    session_id: uuid.UUID, request: Request, principal: Staff, service: Service
) -> SessionDetail:
    """One session with its registrations and attendance (the read is audited)."""
    session = await service.get(str(session_id), _actor(request, principal))
    return _detail(service, session)


@router.put("/training-sessions/{session_id}/registrations", responses=NOT_FOUND | RULES)
async def replace_registrations(
    session_id: uuid.UUID, body: Roster, request: Request, principal: Staff, service: Service
) -> SessionDetail:
    """Replace the registered officers of a scheduled session (within its capacity)."""
    session = await service.replace_registrations(
        str(session_id), [o.officer() for o in body.officers], _actor(request, principal)
    )
    return _detail(service, session)


@router.post("/training-sessions/{session_id}/completion", responses=NOT_FOUND | RULES)
async def complete_session(
    session_id: uuid.UUID, body: Roster, request: Request, principal: Staff, service: Service
) -> SessionDetail:
    """Record who attended (walk-ins welcome) and publish training-completed. Repeating the
    same completion changes nothing; a different one is refused (correct the attendance)."""
    session, _ = await service.complete(
        str(session_id),
        [o.officer() for o in body.officers],
        _actor(request, principal),
        correlation_id(request),
    )
    return _detail(service, session)


@router.put("/training-sessions/{session_id}/attendance", responses=NOT_FOUND | RULES)
async def correct_attendance(
    session_id: uuid.UUID, body: Roster, request: Request, principal: Staff, service: Service
) -> SessionDetail:
    """Correct a completed session's attendance: publishes the next revision, which replaces
    the earlier one in reports. The same officers again publish nothing."""
    session, _ = await service.correct_attendance(
        str(session_id),
        [o.officer() for o in body.officers],
        _actor(request, principal),
        correlation_id(request),
    )
    return _detail(service, session)


@router.get(
    "/training-sessions/{session_id}/certificates/{officer_id}",
    response_class=HTMLResponse,
    responses=NOT_FOUND,
)
async def certificate(
    session_id: uuid.UUID,
    officer_id: PseudonymousId,
    request: Request,
    principal: Staff,
    service: Service,
) -> HTMLResponse:
    """A printable certificate of completion for one officer of a completed session."""
    found = await service.certificate(str(session_id), officer_id, _actor(request, principal))
    return HTMLResponse(render_certificate(found))


# Officers' records ---------------------------------------------------------------------------


@router.get("/officers/{officer_id}/training", responses=NOT_FOUND)
async def officer_record(
    officer_id: PseudonymousId, request: Request, principal: Staff, service: Service
) -> OfficerRecordPublic:
    """An officer's completed trainings and POST hours by year and category (supervisors;
    every read is audited)."""
    record = await service.officer_record(officer_id, _actor(request, principal))
    return OfficerRecordPublic.of(record)


@router.get("/officers/{officer_id}/accounting", responses=NOT_FOUND)
async def accounting(
    officer_id: PseudonymousId, request: Request, principal: PrivacyOfficer, service: Service
) -> AccountingPublic:
    """Every recorded access to one officer's training records (privacy officers)."""
    entries = await service.accounting(officer_id, _actor(request, principal))
    return AccountingPublic(officer_id=officer_id, accesses=[AccessPublic.of(e) for e in entries])
