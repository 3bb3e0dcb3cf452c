"""The registry API under /api/v1: CMHCs and their service areas, liaisons, coverage, and the
referrals nobody could be assigned."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from cmhl_contracts.envelope import BoundedDate, UtcDatetime
from cmhl_contracts.events import Identifier, ReadableText
from cmhl_contracts.registry import LiaisonStatus
from cmhl_contracts.vocabulary import ReferralStatus
from cmhl_referral.application.ports import ConcurrentChange
from cmhl_referral.application.registry import (
    AlreadyRegistered,
    NotAdmin,
    NotRegistered,
    RegistryService,
)
from cmhl_referral.domain.referral import Referral
from cmhl_referral.domain.registry import (
    Cmhc,
    InvalidRegistryChange,
    Liaison,
    LiaisonTerms,
    OverlappingArea,
    UnknownCmhc,
)
from cmhl_servicekit.auth import Principal, Role, require_any
from cmhl_servicekit.http import correlation_id

router = APIRouter(prefix="/api/v1", tags=["registry"])

Admin = Annotated[Principal, require_any(Role.PROGRAM_ADMIN)]
StaffOrAdmin = Annotated[Principal, require_any(Role.LIAISON, Role.SUPERVISOR, Role.PROGRAM_ADMIN)]
SupervisorOrAdmin = Annotated[Principal, require_any(Role.SUPERVISOR, Role.PROGRAM_ADMIN)]
# A county as typed: the registry's own check names an unknown one in its 422.
County = Annotated[str, Field(min_length=1, max_length=8)]


def _service(request: Request) -> RegistryService:
    service: RegistryService = request.app.state.registry
    return service


Service = Annotated[RegistryService, Depends(_service)]


def _as_of(request: Request, as_of: date | None) -> date:
    if as_of is not None:
        return as_of
    return datetime.now(request.app.state.zone).date()


AsOf = Annotated[BoundedDate | None, Query(description="The program day to show (default today)")]


class CmhcCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cmhc_id: Identifier
    name: ReadableText
    counties: list[County] = Field(max_length=115)
    effective_from: BoundedDate


class ServiceAreaChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    counties: list[County] = Field(max_length=115)
    effective_from: BoundedDate


class ServiceAreaPublic(BaseModel):
    effective_from: date
    counties: list[str]


class CmhcPublic(BaseModel):
    cmhc_id: str
    name: str
    counties: list[str] = Field(description="The counties it serves on the day asked")
    history: list[ServiceAreaPublic]

    @classmethod
    def of(cls, cmhc: Cmhc, day: date) -> "CmhcPublic":
        return cls(
            cmhc_id=cmhc.cmhc_id,
            name=cmhc.name,
            counties=sorted(cmhc.area_on(day)),
            history=[
                ServiceAreaPublic(effective_from=a.effective_from, counties=sorted(a.counties))
                for a in cmhc.areas
            ],
        )


class CmhcsPublic(BaseModel):
    as_of: date
    data: list[CmhcPublic]


class LiaisonChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cmhc_id: Identifier
    status: LiaisonStatus
    coverage: list[County] = Field(
        default=[], max_length=115, description="Counties of the CMHC's area; empty: all of it"
    )
    effective_from: BoundedDate

    def terms(self) -> LiaisonTerms:
        return LiaisonTerms(
            self.effective_from, self.cmhc_id, self.status, frozenset(self.coverage)
        )


class LiaisonCreate(LiaisonChange):
    liaison_id: Identifier = Field(description="The liaison's sign-in subject")


class LiaisonTermsPublic(BaseModel):
    effective_from: date
    cmhc_id: str
    status: LiaisonStatus
    coverage: list[str]


class LiaisonPublic(BaseModel):
    liaison_id: str
    current: LiaisonTermsPublic | None = Field(description="Their terms on the day asked")
    history: list[LiaisonTermsPublic]

    @classmethod
    def of(cls, liaison: Liaison, day: date) -> "LiaisonPublic":
        def public(terms: LiaisonTerms) -> LiaisonTermsPublic:
            return LiaisonTermsPublic(
                effective_from=terms.effective_from,
                cmhc_id=terms.cmhc_id,
                status=terms.status,
                coverage=sorted(terms.coverage),
            )

        current = liaison.on(day)
        return cls(
            liaison_id=liaison.liaison_id,
            current=public(current) if current else None,
            history=[public(t) for t in liaison.terms],
        )


class LiaisonsPublic(BaseModel):
    as_of: date
    data: list[LiaisonPublic]


class CoveragePublic(BaseModel):
    as_of: date
    uncovered_counties: list[str] = Field(description="Counties no CMHC serves that day")
    overlaps: dict[str, list[str]] = Field(description="Counties two or more CMHCs serve")
    counties_without_liaison: list[str] = Field(
        description="Served counties no active liaison of their CMHC takes"
    )
    unassigned_open_referrals: int = Field(description="Open referrals no liaison holds, now")


class UnassignedReferral(BaseModel):
    """A row to act on: where and when, without the person."""

    referral_id: str
    county_fips: str
    cmhc_id: str
    status: ReferralStatus
    received_at: UtcDatetime

    @classmethod
    def of(cls, referral: Referral) -> "UnassignedReferral":
        return cls(
            referral_id=str(referral.referral_id),
            county_fips=referral.county_fips,
            cmhc_id=referral.assignment.cmhc_id,
            status=referral.status,
            received_at=referral.received_at,
        )


class UnassignedReferrals(BaseModel):
    data: list[UnassignedReferral]


@asynccontextmanager
async def _registry_errors() -> AsyncIterator[None]:
    """Maps the registry's refusals to answers that name the rule."""
    try:
        yield
    except NotAdmin as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except NotRegistered as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except (AlreadyRegistered, OverlappingArea) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except ConcurrentChange as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "the record kept changing while this change was applied; read it and try again",
        ) from exc
    except (UnknownCmhc, InvalidRegistryChange) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


@router.post("/cmhcs", status_code=status.HTTP_201_CREATED)
async def register_cmhc(
    body: CmhcCreate, request: Request, principal: Admin, service: Service
) -> CmhcPublic:
    """Register a CMHC with the counties it serves from a day on (program admins)."""
    async with _registry_errors():
        cmhc = await service.register_cmhc(
            body.cmhc_id,
            body.name,
            body.counties,
            body.effective_from,
            principal,
            correlation_id(request),
        )
    return CmhcPublic.of(cmhc, body.effective_from)


@router.put("/cmhcs/{cmhc_id}/service-area")
async def change_service_area(
    cmhc_id: Identifier,
    body: ServiceAreaChange,
    request: Request,
    principal: Admin,
    service: Service,
) -> CmhcPublic:
    """Change the counties a CMHC serves from a day on; referrals assigned before keep their
    CMHC."""
    async with _registry_errors():
        cmhc = await service.change_service_area(
            cmhc_id, body.counties, body.effective_from, principal, correlation_id(request)
        )
    return CmhcPublic.of(cmhc, body.effective_from)


@router.get("/cmhcs")
async def list_cmhcs(
    request: Request, principal: StaffOrAdmin, service: Service, as_of: AsOf = None
) -> CmhcsPublic:
    """Every CMHC with the counties it serves on a day."""
    day = _as_of(request, as_of)
    registry = await service.registry()
    return CmhcsPublic(as_of=day, data=[CmhcPublic.of(c, day) for c in registry.cmhcs])


@router.post("/liaisons", status_code=status.HTTP_201_CREATED)
async def register_liaison(
    body: LiaisonCreate, request: Request, principal: Admin, service: Service
) -> LiaisonPublic:
    """Register a liaison (by sign-in subject) with their CMHC, status and coverage."""
    async with _registry_errors():
        liaison = await service.register_liaison(
            body.liaison_id, body.terms(), principal, correlation_id(request)
        )
    return LiaisonPublic.of(liaison, body.effective_from)


@router.put("/liaisons/{liaison_id}")
async def change_liaison(
    liaison_id: Identifier,
    body: LiaisonChange,
    request: Request,
    principal: Admin,
    service: Service,
) -> LiaisonPublic:
    """Change a liaison's CMHC, status or coverage from a day on."""
    async with _registry_errors():
        liaison = await service.change_liaison(
            liaison_id, body.terms(), principal, correlation_id(request)
        )
    return LiaisonPublic.of(liaison, body.effective_from)


@router.get("/liaisons")
async def list_liaisons(
    request: Request,
    principal: StaffOrAdmin,
    service: Service,
    cmhc_id: Identifier | None = None,
    as_of: AsOf = None,
) -> LiaisonsPublic:
    """Liaisons with their terms on a day; with `cmhc_id`, those employed by that CMHC then."""
    day = _as_of(request, as_of)
    registry = await service.registry()
    liaisons = [
        liaison
        for liaison in registry.liaisons
        if cmhc_id is None or ((terms := liaison.on(day)) is not None and terms.cmhc_id == cmhc_id)
    ]
    return LiaisonsPublic(as_of=day, data=[LiaisonPublic.of(lia, day) for lia in liaisons])


@router.get("/service-areas/coverage")
async def coverage(
    request: Request, principal: SupervisorOrAdmin, service: Service, as_of: AsOf = None
) -> CoveragePublic:
    """Counties left uncovered and overlaps on a day, and how many referrals wait unassigned."""
    day = _as_of(request, as_of)
    report = await service.coverage(day)
    return CoveragePublic(
        as_of=day,
        uncovered_counties=report.coverage.uncovered,
        overlaps=report.coverage.overlaps,
        counties_without_liaison=report.coverage.without_liaison,
        unassigned_open_referrals=report.unassigned_open_referrals,
    )


@router.get("/unassigned-referrals")
async def unassigned_referrals(
    request: Request, principal: SupervisorOrAdmin, service: Service
) -> UnassignedReferrals:
    """Referrals no liaison holds, newest first: all of them for a program admin, your CMHC's
    and those of counties no CMHC serves for a supervisor (who reassigns them). Rows name no
    person; each is audited."""
    address = request.client.host if request.client else None
    async with _registry_errors():
        referrals = await service.unassigned(principal, address)
    return UnassignedReferrals(data=[UnassignedReferral.of(r) for r in referrals])
