"""Consultations and barriers under /api/v1: structured records only, never free text."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from cmhl_contracts.activity import BarrierKind, ConsultationTopic
from cmhl_contracts.envelope import BoundedDate
from cmhl_contracts.events import CountyFips
from cmhl_contracts.vocabulary import ReferralSource
from cmhl_referral.application.activity import (
    ActivityQuery,
    ActivityService,
    RecordBarrier,
    RecordConsultation,
)
from cmhl_referral.application.service import Actor, NotAllowed, NotVisible
from cmhl_referral.domain.activity import (
    Barrier,
    Consultation,
    IdempotencyKeyReused,
    InvalidActivity,
)
from cmhl_referral.entrypoints.http.cursor import decode_cursor, encode_cursor
from cmhl_servicekit.auth import Principal, Role, require_any
from cmhl_servicekit.http import correlation_id

router = APIRouter(prefix="/api/v1", tags=["activity"])

Recorder = Annotated[Principal, require_any(Role.LIAISON, Role.SUPERVISOR)]
Reader = Annotated[Principal, require_any(Role.LIAISON, Role.SUPERVISOR, Role.PROGRAM_ADMIN)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Send the same key again (a retry) and the record is stored once",
    ),
]
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=200)]


def _service(request: Request) -> ActivityService:
    service: ActivityService = request.app.state.activity
    return service


Service = Annotated[ActivityService, Depends(_service)]


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal, None, request.client.host if request.client else None)


class ConsultationCreate(BaseModel):
    """A question from police, a sheriff's office or a court, answered without a referral."""

    model_config = ConfigDict(extra="forbid")
    county_fips: CountyFips
    occurred_on: BoundedDate = Field(description="The program's day; not in the future")
    asked_by: ReferralSource
    topic: ConsultationTopic
    referral_id: uuid.UUID | None = Field(
        default=None, description="When the question was about a referral in your caseload"
    )


class ConsultationPublic(BaseModel):
    id: uuid.UUID
    county_fips: str
    asked_by: ReferralSource
    topic: ConsultationTopic
    referral_id: uuid.UUID | None
    occurred_on: date
    recorded_by: str
    recorded_at: datetime

    @classmethod
    def of(cls, c: Consultation) -> "ConsultationPublic":
        return cls(
            id=c.consultation_id,
            county_fips=c.county_fips,
            asked_by=c.asked_by,
            topic=c.topic,
            referral_id=c.referral_id,
            occurred_on=c.occurred_on,
            recorded_by=c.recorded_by,
            recorded_at=c.recorded_at,
        )


class ConsultationsPublic(BaseModel):
    items: list[ConsultationPublic]
    next_cursor: str | None


class BarrierCreate(BaseModel):
    """A structural barrier to care, for one referral (its county is the referral's) or for a
    county: give exactly one of the two."""

    model_config = ConfigDict(extra="forbid")
    kind: BarrierKind
    occurred_on: BoundedDate = Field(description="The program's day; not in the future")
    referral_id: uuid.UUID | None = None
    county_fips: CountyFips | None = None


class BarrierPublic(BaseModel):
    id: uuid.UUID
    kind: BarrierKind
    county_fips: str
    referral_id: uuid.UUID | None
    occurred_on: date
    recorded_by: str
    recorded_at: datetime

    @classmethod
    def of(cls, b: Barrier) -> "BarrierPublic":
        return cls(
            id=b.barrier_id,
            kind=b.kind,
            county_fips=b.county_fips,
            referral_id=b.referral_id,
            occurred_on=b.occurred_on,
            recorded_by=b.recorded_by,
            recorded_at=b.recorded_at,
        )


class BarriersPublic(BaseModel):
    items: list[BarrierPublic]
    next_cursor: str | None


@asynccontextmanager
async def _errors() -> AsyncIterator[None]:
    """Maps refusals to answers that name the rule."""
    try:
        yield
    except InvalidActivity as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except NotVisible as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "referral not found") from exc
    except NotAllowed as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except IdempotencyKeyReused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


def _after(cursor: str | None) -> tuple[date, str] | None:
    if cursor is None:
        return None
    at, last_id = decode_cursor(cursor)
    return at.date(), last_id


def _next(day: date, record_id: uuid.UUID) -> str:
    return encode_cursor(datetime.combine(day, time(), UTC), str(record_id))


def _window(occurred_from: date | None, occurred_to: date | None) -> None:
    if occurred_from and occurred_to and occurred_from > occurred_to:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "from must not be after to")


RECORDED: dict[int | str, dict[str, Any]] = {
    200: {"description": "this Idempotency-Key was used before: the stored record"},
    404: {"description": "the referral is not found or not yours"},
    409: {"description": "this Idempotency-Key was used before for a different record"},
}


@router.post("/consultations", status_code=status.HTTP_201_CREATED, responses=RECORDED)
async def record_consultation(
    body: ConsultationCreate,
    request: Request,
    response: Response,
    principal: Recorder,
    service: Service,
    idempotency_key: IdempotencyKey = None,
) -> ConsultationPublic:
    """Record a question answered without a referral: who asked, about what, where, when."""
    command = RecordConsultation(
        county_fips=body.county_fips,
        occurred_on=body.occurred_on,
        asked_by=body.asked_by,
        topic=body.topic,
        referral_id=body.referral_id,
        idempotency_key=idempotency_key,
        correlation_id=correlation_id(request),
    )
    async with _errors():
        consultation, created = await service.record_consultation(
            command, _actor(request, principal)
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    return ConsultationPublic.of(consultation)


@router.get("/consultations", responses={400: {"description": "bad cursor"}})
async def list_consultations(
    request: Request,
    principal: Reader,
    service: Service,
    county_fips: Annotated[CountyFips | None, Query()] = None,
    occurred_from: Annotated[BoundedDate | None, Query(alias="from")] = None,
    occurred_to: Annotated[BoundedDate | None, Query(alias="to")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> ConsultationsPublic:
    """Yours (liaison), your CMHC's (supervisor) or all (program admin), newest day first;
    `from` and `to` include their days."""
    _window(occurred_from, occurred_to)
    query = ActivityQuery(
        county_fips=county_fips,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        after=_after(cursor),
        limit=limit,
    )
    async with _errors():
        found = await service.consultations(query, _actor(request, principal))
    last = found[-1] if len(found) == limit else None
    return ConsultationsPublic(
        items=[ConsultationPublic.of(c) for c in found],
        next_cursor=_next(last.occurred_on, last.consultation_id) if last else None,
    )


@router.post("/barriers", status_code=status.HTTP_201_CREATED, responses=RECORDED)
async def record_barrier(
    body: BarrierCreate,
    request: Request,
    response: Response,
    principal: Recorder,
    service: Service,
    idempotency_key: IdempotencyKey = None,
) -> BarrierPublic:
    """Record a structural barrier: no bed, waitlist, no transport, insurance, eligibility or
    capacity; for a referral in your caseload (audited) or for a county."""
    command = RecordBarrier(
        kind=body.kind,
        occurred_on=body.occurred_on,
        referral_id=body.referral_id,
        county_fips=body.county_fips,
        idempotency_key=idempotency_key,
        correlation_id=correlation_id(request),
    )
    async with _errors():
        barrier, created = await service.record_barrier(command, _actor(request, principal))
    if not created:
        response.status_code = status.HTTP_200_OK
    return BarrierPublic.of(barrier)


@router.get(
    "/barriers",
    responses={400: {"description": "bad cursor"}, 404: {"description": "referral not found"}},
)
async def list_barriers(
    request: Request,
    principal: Reader,
    service: Service,
    referral_id: Annotated[uuid.UUID | None, Query()] = None,
    county_fips: Annotated[CountyFips | None, Query()] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> BarriersPublic:
    """A referral's barriers (if you may see the referral; audited), or a county's within your
    scope (yours, your CMHC's, or all for a program admin); give exactly one of the two."""
    async with _errors():
        if (referral_id is None) == (county_fips is None):
            raise InvalidActivity("give referral_id or county_fips (exactly one)")
        query = ActivityQuery(
            county_fips=county_fips, referral_id=referral_id, after=_after(cursor), limit=limit
        )
        found = await service.barriers(query, _actor(request, principal))
    last = found[-1] if len(found) == limit else None
    return BarriersPublic(
        items=[BarrierPublic.of(b) for b in found],
        next_cursor=_next(last.occurred_on, last.barrier_id) if last else None,
    )
