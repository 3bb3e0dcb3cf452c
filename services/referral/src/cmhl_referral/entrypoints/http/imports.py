"""`POST /api/v1/imports/referrals`: the program's earlier records, loaded in batches by a program
admin (docs/operations.md "Import a program's history"). Each record is checked on its own: one
that contradicts itself (a status before the referral, an unknown status, a step the lifecycle
does not allow) is rejected with its reason and the rest of the batch goes on; a record imported
before is counted, not stored again. Imported referrals carry where they came from."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from cmhl_contracts.envelope import UtcDatetime
from cmhl_contracts.events import CountyFips, Identifier, PersonIdentifiers, ReferringAgency
from cmhl_contracts.vocabulary import PersonLocation, PresentingNeed, ReferralStatus
from cmhl_referral.application.commands import ImportReferral
from cmhl_referral.application.service import Actor, ReferralService, Rejected
from cmhl_referral.domain.referral import Assignment, ImportSource, PastStatus
from cmhl_referral.entrypoints.translate import create_command
from cmhl_servicekit.auth import Principal, Role, require_any
from cmhl_servicekit.http import correlation_id
from cmhl_servicekit.imports import ImportBatch, ImportResult, valid_records

router = APIRouter(prefix="/api/v1", tags=["imports"])

ProgramAdmin = Annotated[Principal, require_any(Role.PROGRAM_ADMIN)]


class PastStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: ReferralStatus
    at: UtcDatetime
    reason: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")] | None = (
        None
    )
    appointment_at: UtcDatetime | None = Field(
        default=None, description="For appointment_scheduled: when the appointment was"
    )


class ImportedReferral(BaseModel):
    """One past referral as the earlier system holds it."""

    model_config = ConfigDict(extra="forbid")
    record_id: Identifier = Field(description="The earlier system's id for this referral")
    agency: ReferringAgency
    agency_reference: Identifier | None = None
    officer_reference: Identifier | None = None
    county_fips: CountyFips
    primary_need: PresentingNeed
    other_needs: Annotated[list[PresentingNeed], Field(max_length=4)] = []
    person_location: PersonLocation = PersonLocation.COMMUNITY
    person: PersonIdentifiers
    referred_at: UtcDatetime
    history: Annotated[list[PastStatusIn], Field(max_length=50)] = Field(
        default=[], description="Status changes after receipt, oldest first"
    )
    liaison_id: Identifier | None = Field(default=None, description="Who served it, if known")
    cmhc_id: Identifier | None = None


_RECORD = TypeAdapter(ImportedReferral)


def _service(request: Request) -> ReferralService:
    service: ReferralService = request.app.state.referrals
    return service


@router.post("/imports/referrals")
async def import_referrals(
    batch: ImportBatch,
    request: Request,
    principal: ProgramAdmin,
    service: Annotated[ReferralService, Depends(_service)],
) -> ImportResult:
    """Load up to 500 past referrals with their known history. Answers per record: imported,
    imported before (nothing is stored twice), or rejected with the rule it broke."""
    actor = Actor(principal, None, request.client.host if request.client else None)
    result = ImportResult()
    valid = [
        (index, _command(batch.system, record, correlation_id(request)))
        for index, record in valid_records(batch, _RECORD, result)
    ]
    outcomes = await service.import_referrals([command for _, command in valid], actor)
    for (index, _), outcome in zip(valid, outcomes, strict=True):
        if isinstance(outcome, Rejected):
            result.reject(index, batch.records[index], str(outcome))
        else:
            result.count(outcome)
    return result


def _command(system: str, record: ImportedReferral, correlation: str) -> ImportReferral:
    assignment = (
        Assignment(record.liaison_id, record.cmhc_id)
        if record.liaison_id and record.cmhc_id
        else None
    )
    return ImportReferral(
        referral=create_command(_Submission(record), correlation),
        source=ImportSource(system, record.record_id),
        history=[
            PastStatus(step.status, step.at, step.reason, step.appointment_at)
            for step in record.history
        ],
        assignment=assignment,
    )


class _Submission:
    """An imported record read as a submission (translate.create_command's protocol)."""

    def __init__(self, record: ImportedReferral) -> None:
        self.agency = record.agency
        self.agency_reference = record.agency_reference
        self.officer_reference = record.officer_reference
        self.county_fips = record.county_fips
        self.primary_need = record.primary_need
        self.other_needs = record.other_needs
        self.person_location = record.person_location
        self.person = record.person
        self.narrative = None
        self.referred_at = record.referred_at
