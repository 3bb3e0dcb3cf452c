"""Agency systems that cannot speak Kafka post batches of referrals here, with a token of their
agency's OAuth2 client (client credentials)."""

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from cmhl_contracts.envelope import UtcDatetime, YearMonth
from cmhl_contracts.events import Identifier
from cmhl_contracts.vocabulary import FeedbackStatus
from cmhl_referral.application.service import (
    Actor,
    NotVisible,
    ReferralService,
    ResubmissionNotVisible,
)
from cmhl_referral.domain.consent import REDISCLOSURE_NOTICE
from cmhl_referral.domain.progress import Engagement
from cmhl_referral.domain.referral import InvalidReferral
from cmhl_referral.entrypoints.http.schemas import ReferralSubmission
from cmhl_referral.entrypoints.translate import create_command
from cmhl_servicekit.auth import CurrentAgency

router = APIRouter(prefix="/api/v1/agency", tags=["agency intake"])


class AgencySubmission(ReferralSubmission):
    """One referral as an agency's records system sends it: its own reference and the time of
    referral are required."""

    agency_reference: Identifier
    referred_at: UtcDatetime


class SubmissionBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    submissions: list[AgencySubmission] = Field(min_length=1, max_length=500)


class SubmissionResult(BaseModel):
    index: int
    agency_reference: str
    outcome: Literal["created", "duplicate", "rejected"]
    referral_id: uuid.UUID | None = None
    reason: str | None = None


class BatchResult(BaseModel):
    results: list[SubmissionResult]
    created: int
    duplicates: int
    rejected: int


@router.post("/referrals", responses={403: {"description": "a submission names another agency"}})
async def submit_batch(
    body: SubmissionBatch, request: Request, agency_id: CurrentAgency
) -> BatchResult:
    """Up to 500 referrals; a resubmitted agency reference returns the existing referral."""
    foreign = [i for i, s in enumerate(body.submissions) if s.agency.agency_id != agency_id]
    if foreign:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this client may submit only for {agency_id}; submissions {foreign[:10]} name another",
        )
    service: ReferralService = request.app.state.referrals
    actor = Actor(None, agency_id, request.client.host if request.client else None)
    batch_id = str(uuid.uuid4())
    results = []
    for index, item in enumerate(body.submissions):
        command = create_command(item, f"{batch_id}:{index}")
        try:
            created = await service.create(command, actor)
        except (InvalidReferral, ResubmissionNotVisible) as exc:
            results.append(
                SubmissionResult(
                    index=index,
                    agency_reference=item.agency_reference,
                    outcome="rejected",
                    reason=str(exc),
                )
            )
            continue
        results.append(
            SubmissionResult(
                index=index,
                agency_reference=item.agency_reference,
                outcome="created" if created.created else "duplicate",
                referral_id=created.referral.referral_id,
            )
        )
    return BatchResult(
        results=results,
        created=sum(r.outcome == "created" for r in results),
        duplicates=sum(r.outcome == "duplicate" for r in results),
        rejected=sum(r.outcome == "rejected" for r in results),
    )


class ReferralFeedback(BaseModel):
    """What the referring agency may learn about a referral it sent."""

    agency_reference: str
    received: Literal[True] = True
    received_at: UtcDatetime
    status: FeedbackStatus | None = Field(
        description="received, in_progress, connected_to_treatment or closed; null while no "
        "consent of the person covers your agency"
    )
    status_withheld: bool = Field(
        description="True when no consent covers your agency: the status is not disclosed"
    )
    consent_expires_on: date | None = Field(
        description="The last day the consent that allows the status covers your agency"
    )
    redisclosure_notice: str | None = Field(
        description="42 CFR 2.32: it comes with every disclosure made under a consent"
    )


@router.get(
    "/referrals/{agency_reference}",
    responses={404: {"description": "your agency sent no referral with this reference"}},
)
async def referral_feedback(
    agency_reference: Identifier, request: Request, agency_id: CurrentAgency
) -> ReferralFeedback:
    """What became of a referral your agency sent, by your own reference: that it was received,
    and its coarse status while a 42 CFR Part 2 consent of the person covers your agency.
    Another agency's reference is answered exactly like one never sent."""
    service: ReferralService = request.app.state.referrals
    actor = Actor(None, agency_id, request.client.host if request.client else None)
    try:
        feedback = await service.feedback(agency_reference, actor)
    except NotVisible as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "referral not found") from exc
    consent = feedback.consent
    return ReferralFeedback(
        agency_reference=agency_reference,
        received_at=feedback.referral.received_at,
        status=feedback.status,
        status_withheld=feedback.status is None,
        consent_expires_on=consent.terms.expires_on if consent else None,
        redisclosure_notice=REDISCLOSURE_NOTICE if consent else None,
    )


class ProgressPublic(BaseModel):
    agency_reference: str
    appointments_kept: int
    appointments_missed: int
    engagement: Engagement = Field(
        description="engaged, not_engaged or unknown: what the period's latest fact says"
    )
    consent_expires_on: date


class ProgressReport(BaseModel):
    """A court's participants under a consent that lets it learn attendance and compliance
    (42 CFR 2.35): nothing about diagnosis, treatment content or the person beyond that."""

    court: str
    month: str
    participants: list[ProgressPublic]
    redisclosure_notice: str


@router.get(
    "/progress-report",
    responses={422: {"description": "month is not YYYY-MM, or has not begun"}},
)
async def progress_report(
    request: Request,
    agency_id: CurrentAgency,
    month: Annotated[YearMonth, Query(description="The month, as YYYY-MM")],
) -> ProgressReport:
    """For a court: the month's attendance and compliance of the participants it referred whose
    consent, in force today, covers the court (scope `attendance_compliance`). Ask each month;
    participants without such a consent are simply not listed."""
    service: ReferralService = request.app.state.referrals
    zone = request.app.state.zone
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    if start.date() > service.today():
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "month has not begun; ask for YYYY-MM up to now"
        )
    actor = Actor(None, agency_id, request.client.host if request.client else None)
    lines = await service.progress_report(start, end, actor)
    return ProgressReport(
        court=agency_id,
        month=month,
        participants=[
            ProgressPublic(
                agency_reference=line.agency_reference,
                appointments_kept=line.progress.appointments_kept,
                appointments_missed=line.progress.appointments_missed,
                engagement=line.progress.engagement,
                consent_expires_on=line.consent_expires_on,
            )
            for line in lines
        ],
        redisclosure_notice=REDISCLOSURE_NOTICE,
    )
