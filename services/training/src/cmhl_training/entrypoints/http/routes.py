"""Liaisons' training API under /api/v1."""

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from cmhl_contracts.events import CountyFips, Identifier
from cmhl_servicekit.auth import Principal, Role, require_any
from cmhl_training.application.service import CompleteSession, TrainingService
from cmhl_training.domain.catalog import POST_COURSES, PostCategory
from cmhl_training.domain.session import Attendee, InvalidSession

router = APIRouter(prefix="/api/v1", tags=["trainings"])

Liaison = Annotated[Principal, require_any(Role.LIAISON)]


class CoursePublic(BaseModel):
    course_id: str
    title: str
    category: PostCategory
    credit_hours: float


class AttendeeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agency_id: Identifier
    officer_ref: Identifier = Field(description="The agency-issued officer id (not a name)")


class SessionComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: uuid.UUID | None = Field(
        default=None, description="Give one to make retries safe; a repeat returns the first"
    )
    course_id: Identifier
    held_on: date
    county_fips: CountyFips
    host_agency_id: Identifier
    capacity: int = Field(ge=1, le=500)
    roster: list[AttendeeIn] = Field(min_length=1, max_length=500)


class SessionPublic(BaseModel):
    session_id: str
    course_id: str
    held_on: date
    county_fips: str
    host_agency_id: str
    trainer_liaison_id: str
    revision: int
    officers_completed: int
    credit_hours: float


def _public(document: dict[str, Any]) -> SessionPublic:
    return SessionPublic(
        session_id=document["_id"],
        course_id=document["course_id"],
        held_on=date.fromisoformat(document["held_on"]),
        county_fips=document["county_fips"],
        host_agency_id=document["host_agency_id"],
        trainer_liaison_id=document["trainer_liaison_id"],
        revision=document["revision"],
        officers_completed=len(document["roster"]),
        credit_hours=document["credit_hours"],
    )


@router.get("/courses")
async def list_courses(_: Annotated[Principal, require_any(*Role)]) -> list[CoursePublic]:
    """The POST course catalog."""
    return [
        CoursePublic(
            course_id=c.course_id, title=c.title, category=c.category, credit_hours=c.credit_hours
        )
        for c in POST_COURSES
    ]


@router.post(
    "/training-sessions",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "this session id was recorded before"}},
)
async def complete_session(
    body: SessionComplete, request: Request, response: Response, principal: Liaison
) -> SessionPublic:
    """Record a held session with the officers who completed it; publishes training-completed."""
    service: TrainingService = request.app.state.trainings
    command = CompleteSession(
        session_id=body.session_id or uuid.uuid4(),
        course_id=body.course_id,
        held_on=body.held_on,
        county_fips=body.county_fips,
        host_agency_id=body.host_agency_id,
        capacity=body.capacity,
        roster=[Attendee(a.agency_id, a.officer_ref) for a in body.roster],
        trainer_liaison_id=principal.subject,
        correlation_id=str(uuid.uuid4()),
    )
    try:
        document, created = await service.complete(command)
    except InvalidSession as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if not created:
        response.status_code = status.HTTP_200_OK
    return _public(document)
