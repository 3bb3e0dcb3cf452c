"""Liaisons' follow-up API under /api/v1: their follow-ups, and the outcomes they record."""

import re
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from cmhl_contracts.envelope import UtcDatetime
from cmhl_contracts.vocabulary import FollowUpOutcome
from cmhl_followup.application.service import (
    ChangedMeanwhile,
    FollowUpService,
    InvalidFollowUp,
    Listed,
    NotAllowed,
    NotFound,
    ReferralClosed,
)
from cmhl_followup.domain.policy import OutcomeRefused, State
from cmhl_servicekit.auth import Principal, Role, require_any

router = APIRouter(prefix="/api/v1", tags=["follow-ups"])

Liaison = Annotated[Principal, require_any(Role.LIAISON)]
Staff = Annotated[Principal, require_any(Role.LIAISON, Role.SUPERVISOR)]
FollowUpId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")]
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class FollowUpPublic(BaseModel):
    follow_up_id: str
    referral_id: str
    person_id: str
    liaison_id: str
    kind: str
    due_at: datetime
    overdue_at: datetime
    state: State
    outcome: FollowUpOutcome | None = None
    completed_at: datetime | None = None
    recorded_overdue: bool | None = None

    @classmethod
    def of(cls, listed: Listed) -> "FollowUpPublic":
        document = listed.document
        return cls(
            follow_up_id=document["_id"],
            referral_id=document["referral_id"],
            person_id=document["person_id"],
            liaison_id=document["liaison_id"],
            kind=document["kind"],
            due_at=document["due_at"],
            overdue_at=listed.overdue_at,
            state=listed.state,
            outcome=document.get("outcome"),
            completed_at=document.get("completed_at"),
            recorded_overdue=document.get("overdue"),
        )


class FollowUpsPublic(BaseModel):
    data: list[FollowUpPublic]
    count: int


class FollowUpRequest(BaseModel):
    """A follow-up the liaison plans themselves, on top of the scheduled checks."""

    model_config = ConfigDict(extra="forbid")
    referral_id: uuid.UUID
    due_at: UtcDatetime = Field(description="When to follow up: from now to 400 days ahead")


class OutcomeRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: FollowUpOutcome


def _service(request: Request) -> FollowUpService:
    service: FollowUpService = request.app.state.followups
    return service


class FollowUpsOverview(BaseModel):
    due_by_liaison: dict[str, int]
    overdue_by_liaison: dict[str, int]
    cap: int = Field(description="Each state is counted up to this many per liaison")


@router.get("/follow-ups/overview")
async def follow_ups_overview(
    request: Request,
    principal: Staff,
    liaison_id: Annotated[
        list[str], Query(max_length=64, description="supervisors: these liaisons of the CMHC")
    ] = [],  # noqa: B006 (FastAPI copies query defaults)
    cap: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> FollowUpsOverview:
    """How many follow-ups are due and overdue per liaison (yours, or your CMHC's), each counted
    up to `cap`: counts for a supervisor's overview, without the records."""
    if any(not re.fullmatch(ID_PATTERN, liaison) for liaison in liaison_id):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "liaison_id: not an id")
    try:
        counts = await _service(request).overview(principal, cap, liaison_id)
    except NotAllowed as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    return FollowUpsOverview(
        due_by_liaison=dict(sorted(counts[State.DUE.value].items())),
        overdue_by_liaison=dict(sorted(counts[State.OVERDUE.value].items())),
        cap=cap,
    )


@router.get("/follow-ups", responses={403: {"description": "another liaison's follow-ups"}})
async def list_follow_ups(
    request: Request,
    principal: Staff,
    state: Annotated[State | None, Query(description="only follow-ups in this state")] = None,
    liaison_id: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="supervisors: one liaison's")
    ] = None,
    referral_id: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="one referral's, in every status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> FollowUpsPublic:
    """Your follow-ups (a supervisor: the CMHC's), soonest first; by default every pending one.
    `state=due` and `state=overdue` list those waiting (overdue: no outcome within the grace
    period after the due time). `referral_id` gives one referral's follow-ups."""
    try:
        rows: list[Listed] = await _service(request).list_for(
            principal, state, limit, liaison_id=liaison_id, referral_id=referral_id
        )
    except NotAllowed as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    data = [FollowUpPublic.of(r) for r in rows]
    return FollowUpsPublic(data=data, count=len(data))


@router.post(
    "/follow-ups",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "a follow-up of this referral at this time exists already"},
        404: {"description": "no such referral in your caseload"},
        409: {"description": "the referral is closed"},
    },
)
async def add_follow_up(
    body: FollowUpRequest, request: Request, response: Response, principal: Staff
) -> FollowUpPublic:
    """Plan a follow-up of your own for a referral in your caseload (a supervisor: in the CMHC).
    Open referrals take them, and so do referrals connected to treatment; the same referral and
    time again answer 200 with the existing one."""
    try:
        listed, created = await _service(request).add_follow_up(
            body.referral_id, body.due_at, principal
        )
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "referral not found") from exc
    except InvalidFollowUp as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except ReferralClosed as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/follow-ups?referral_id={body.referral_id}"
    return FollowUpPublic.of(listed)


@router.post(
    "/follow-ups/{follow_up_id}/outcome",
    responses={
        201: {"description": "outcome recorded; follow-up-completed published"},
        404: {"description": "no such follow-up in your caseload"},
        409: {"description": "cancelled, another outcome recorded, or not due yet"},
    },
    status_code=status.HTTP_201_CREATED,
)
async def record_outcome(
    follow_up_id: FollowUpId,
    body: OutcomeRecord,
    request: Request,
    response: Response,
    principal: Liaison,
) -> FollowUpPublic:
    """Record what the follow-up found. The same outcome again answers 200 and changes nothing."""
    service = _service(request)
    try:
        listed, changed = await service.record_outcome(follow_up_id, body.outcome, principal)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "follow-up not found") from exc
    except OutcomeRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except ChangedMeanwhile as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the follow-up changed meanwhile; read it and retry"
        ) from exc
    if not changed:
        response.status_code = status.HTTP_200_OK
    return FollowUpPublic.of(listed)
