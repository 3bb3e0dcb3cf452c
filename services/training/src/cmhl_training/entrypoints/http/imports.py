"""`POST /api/v1/imports/trainings`: past training sessions with who attended, loaded in batches by
a program admin (docs/operations.md "Import a program's history"). Each record is checked on its
own: an unknown course, a date in the future, an officer listed twice or a broken field is a
rejection with its reason, and the rest goes on; a record imported before is counted, not
stored again. Imported sessions may be years old and of courses retired since."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from cmhl_contracts.events import CountyFips, Identifier
from cmhl_servicekit.auth import Principal, Role, require_any
from cmhl_servicekit.http import correlation_id
from cmhl_servicekit.imports import ImportBatch, ImportResult, RecordId, valid_records
from cmhl_training.application.service import ImportSession
from cmhl_training.domain.session import InvalidSession
from cmhl_training.entrypoints.http.routes import Service, _actor
from cmhl_training.entrypoints.http.schemas import OfficerIn

router = APIRouter(prefix="/api/v1", tags=["imports"])

ProgramAdmin = Annotated[Principal, require_any(Role.PROGRAM_ADMIN)]


class ImportedSession(BaseModel):
    """One past session as the earlier system holds it."""

    model_config = ConfigDict(extra="forbid")
    record_id: RecordId = Field(description="The earlier system's id for this session")
    course_id: Identifier
    held_on: date
    county_fips: CountyFips
    host_agency_id: Identifier
    trainer_liaison_id: Identifier = Field(
        default="not_recorded", description="Who taught it, if the record says"
    )
    roster: list[OfficerIn] = Field(min_length=1, max_length=500, description="Who attended")


_SESSION = TypeAdapter(ImportedSession)


@router.post("/imports/trainings")
async def import_trainings(
    batch: ImportBatch, request: Request, principal: ProgramAdmin, service: Service
) -> ImportResult:
    """Load up to 500 past sessions with who attended. Answers per record: imported, imported
    before (nothing is stored twice), or rejected with the rule it broke."""
    actor = _actor(request, principal)
    result = ImportResult()
    for index, record in valid_records(batch, _SESSION, result):
        command = ImportSession(
            system=batch.system,
            record_id=record.record_id,
            course_id=record.course_id,
            held_on=record.held_on,
            county_fips=record.county_fips,
            host_agency_id=record.host_agency_id,
            trainer_liaison_id=record.trainer_liaison_id,
            roster=[o.officer() for o in record.roster],
            correlation_id=correlation_id(request),
        )
        try:
            result.count(await service.import_session(command, actor))
        except InvalidSession as exc:
            result.reject(index, batch.records[index], f"{exc.rule}: {exc}")
    return result
