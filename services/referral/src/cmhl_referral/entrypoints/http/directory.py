"""The treatment and support directory under /api/v1/directory (import HSDS packages, search
services) and `POST /api/v1/referrals/{id}/connections` (docs/operations.md "The treatment
directory")."""

import base64
import binascii
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cmhl_contracts.directory import ServiceType
from cmhl_contracts.envelope import UtcDatetime
from cmhl_contracts.events import CountyFips, Identifier
from cmhl_referral.application.directory import Directory, DirectoryImportResult, UnknownService
from cmhl_referral.application.hsds import InvalidPackage, csv_package_records
from cmhl_referral.application.service import Actor, NotAllowed, NotVisible
from cmhl_referral.domain.directory import Connection, DirectoryService, Eligibility
from cmhl_servicekit.auth import Principal, Role, require_any
from cmhl_servicekit.http import correlation_id
from cmhl_servicekit.imports import ImportBatch, RecordId, reason_of

router = APIRouter(prefix="/api/v1", tags=["directory"])

ProgramAdmin = Annotated[Principal, require_any(Role.PROGRAM_ADMIN)]
DirectoryUser = Annotated[Principal, require_any(Role.LIAISON, Role.SUPERVISOR, Role.PROGRAM_ADMIN)]
Staff = Annotated[Principal, require_any(Role.LIAISON, Role.SUPERVISOR)]


def _directory(request: Request) -> Directory:
    directory: Directory = request.app.state.directory
    return directory


DirectoryDep = Annotated[Directory, Depends(_directory)]


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal, None, request.client.host if request.client else None)


class OrganizationPublic(BaseModel):
    id: str
    name: str


class LocationPublic(BaseModel):
    id: str
    name: str | None
    address: str | None
    county_fips: str | None


class ServicePublic(BaseModel):
    id: str
    name: str
    description: str | None
    organization: OrganizationPublic
    service_types: list[ServiceType]
    eligibility: list[Eligibility]
    locations: list[LocationPublic]
    phones: list[str]
    url: str | None

    @classmethod
    def of(cls, service: DirectoryService) -> "ServicePublic":
        return cls(
            id=service.id,
            name=service.name,
            description=service.description,
            organization=OrganizationPublic(
                id=service.organization.id, name=service.organization.name
            ),
            service_types=list(service.service_types),
            eligibility=list(service.eligibility),
            locations=[
                LocationPublic(
                    id=loc.id, name=loc.name, address=loc.address, county_fips=loc.county_fips
                )
                for loc in service.locations
            ],
            phones=list(service.phones),
            url=service.url,
        )


class ServicesPublic(BaseModel):
    items: list[ServicePublic]
    next_cursor: str | None


class ConnectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service_id: Identifier = Field(description="The directory's id of the service")


class ConnectionPublic(BaseModel):
    service_id: str
    service_name: str
    connected_at: UtcDatetime
    connected_by: str

    @classmethod
    def of(cls, connection: Connection) -> "ConnectionPublic":
        return cls(
            service_id=connection.service_id,
            service_name=connection.service_name,
            connected_at=connection.connected_at,
            connected_by=connection.connected_by,
        )


IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": ImportBatch.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["system", "file"],
                    "properties": {
                        "system": {"type": "string", "description": "The publishing system"},
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "An HSDS CSV package: a zip of its tables",
                        },
                    },
                }
            },
        },
    }
}


@router.post(
    "/directory/imports",
    openapi_extra=IMPORT_BODY,
    responses={422: {"description": "the package as a whole cannot be read"}},
)
async def import_directory(
    request: Request, principal: ProgramAdmin, directory: DirectoryDep
) -> DirectoryImportResult:
    """Load an HSDS 3.0 package: JSON (`{"system", "records": [service, ...]}`, each service
    with its organization, service_at_locations, phones, service_areas and attributes nested)
    or a CSV package (multipart: `system` and `file`, a zip of services.csv, organizations.csv,
    locations.csv, service_at_locations.csv, addresses.csv, phones.csv, service_areas.csv,
    attributes.csv, taxonomy_terms.csv). Up to 500 services. Answers per record: imported,
    updated, unchanged (`already_imported`), or rejected with the rule it broke."""
    system, records = await _package(request)
    try:
        return await directory.import_services(system, records, _actor(request, principal))
    except NotAllowed as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc


async def _package(request: Request) -> tuple[str, list[dict[str, Any]]]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        # The form closes its spooled upload when the block ends.
        async with request.form(max_files=1, max_fields=2) as form:
            upload, system = form.get("file"), form.get("system")
            if upload is None or isinstance(upload, str):
                raise _unreadable("file: an HSDS CSV package (a zip) is required")
            content = await upload.read()
        try:
            system_id = ImportBatch.model_validate({"system": system, "records": [{}]}).system
        except ValidationError as exc:
            raise _unreadable(reason_of(exc)) from exc
        try:
            return system_id, csv_package_records(content)
        except InvalidPackage as exc:
            raise _unreadable(str(exc)) from exc
    if kind != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send HSDS JSON (application/json) or a CSV package (multipart/form-data)",
        )
    try:
        batch = ImportBatch.model_validate_json(await request.body())
    except ValidationError as exc:
        raise _unreadable(reason_of(exc)) from exc
    return batch.system, batch.records


def _unreadable(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, reason)


def _encode_cursor(last: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(last)).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        name, service_id = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "cursor is not one we issued") from exc
    if not (isinstance(name, str) and isinstance(service_id, str) and len(service_id) <= 64):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "cursor is not one we issued")
    return name, service_id


@router.get("/directory/services", responses={400: {"description": "bad cursor"}})
async def search_services(
    request: Request,
    principal: DirectoryUser,
    directory: DirectoryDep,
    county_fips: Annotated[
        CountyFips | None, Query(description="Served there: a location's county or a service area")
    ] = None,
    service_type: Annotated[ServiceType | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> ServicesPublic:
    """Active services serving a county, of a type, by name, page by page."""
    after = _decode_cursor(cursor) if cursor else None
    try:
        page = await directory.search(
            county_fips, service_type, after, limit, _actor(request, principal)
        )
    except NotAllowed as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    return ServicesPublic(
        items=[ServicePublic.of(s) for s in page.services],
        next_cursor=_encode_cursor(page.last) if page.last else None,
    )


@router.get("/directory/services/{service_id}", responses={404: {"description": "no such service"}})
async def get_service(
    service_id: RecordId, request: Request, principal: DirectoryUser, directory: DirectoryDep
) -> ServicePublic:
    """One service of the directory (an inactive one too: a connection may name it)."""
    try:
        service = await directory.get(service_id, _actor(request, principal))
    except NotAllowed as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    if service is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "service not found")
    return ServicePublic.of(service)


@router.post(
    "/referrals/{referral_id}/connections",
    status_code=status.HTTP_201_CREATED,
    tags=["referrals"],
    responses={
        200: {"description": "this connection was recorded before"},
        404: {"description": "not found or not in your caseload"},
        422: {"description": "no active service of the directory has this id"},
    },
)
async def connect_to_service(
    referral_id: uuid.UUID,
    body: ConnectionIn,
    request: Request,
    response: Response,
    principal: Staff,
    directory: DirectoryDep,
) -> ConnectionPublic:
    """Record that the referred person was connected to a service of the directory (the
    referral's liaison or their supervisor). Recording it again changes nothing."""
    try:
        connection, created = await directory.connect(
            referral_id, body.service_id, _actor(request, principal), correlation_id(request)
        )
    except NotVisible as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "referral not found") from exc
    except UnknownService as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if not created:
        response.status_code = status.HTTP_200_OK
    return ConnectionPublic.of(connection)


async def connections_public(request: Request, referral_id: uuid.UUID) -> list[ConnectionPublic]:
    """A referral's connections, for its GET (whose read is the audited access)."""
    return [ConnectionPublic.of(c) for c in await _directory(request).connections_of(referral_id)]
