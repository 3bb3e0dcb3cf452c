"""Directory use cases: import HSDS packages (program admins), search and read services (staff),
and record which service a referred person was connected to (the referral's liaison or their
supervisor), published through the outbox."""

import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from cmhl_contracts import IntegrationEvent
from cmhl_contracts.directory import ReferralConnectedToServiceV1, ServiceType
from cmhl_referral.application.hsds import read_service
from cmhl_referral.application.service import Actor, NotAllowed, ReferralService
from cmhl_referral.domain.directory import (
    Connection,
    DirectoryService,
    InvalidDirectoryRecord,
    search_key,
)
from cmhl_servicekit.auth import Role
from cmhl_servicekit.clock import Clock, to_millis
from cmhl_servicekit.imports import ImportResult

log = logging.getLogger(__name__)
PRODUCER = "referral"


class Stored(StrEnum):
    IMPORTED = "imported"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    HELD_ELSEWHERE = "held_elsewhere"


class DirectoryRepository(Protocol):
    async def store(self, service: DirectoryService, system: str) -> Stored:
        """Insert the service, or replace it if it changed; HELD_ELSEWHERE if its id is
        another system's."""

    async def get(self, service_id: str) -> DirectoryService | None: ...

    async def search(
        self, key: str, after: tuple[str, str] | None, limit: int
    ) -> list[DirectoryService]:
        """Services with this search key, by name then id, after the (name, id) given."""

    async def add_connection(self, connection: Connection, events: list[IntegrationEvent]) -> bool:
        """Store the connection with its event in one write; False if it was recorded before."""

    async def connection(self, referral_id: str, service_id: str) -> Connection | None: ...

    async def connections_of(self, referral_id: str) -> list[Connection]:
        """A referral's connections, oldest first."""


class UnknownService(Exception):
    """No active directory service has this id (422)."""

    def __str__(self) -> str:
        return "service_id: no active service of the directory has this id"


class DirectoryImportResult(ImportResult):
    updated: int = 0


@dataclass(frozen=True)
class SearchPage:
    services: list[DirectoryService]
    last: tuple[str, str] | None
    """The (sort name, id) to continue after, when the page was full."""


STAFF = frozenset({Role.LIAISON, Role.SUPERVISOR, Role.PROGRAM_ADMIN})


def sort_name(service: DirectoryService) -> str:
    return service.name.casefold()


class Directory:
    def __init__(
        self, repository: DirectoryRepository, referrals: ReferralService, clock: Clock
    ) -> None:
        self._repository = repository
        self._referrals = referrals
        self._clock = clock

    async def import_services(
        self, system: str, records: list[dict[str, Any]], actor: Actor
    ) -> DirectoryImportResult:
        """Each record checked and stored on its own: a rejected one is reported with its rule
        (never its values) and the rest goes on. The same package again stores nothing twice;
        a changed record replaces the stored one."""
        principal = actor.principal
        if principal is None or not principal.has(Role.PROGRAM_ADMIN):
            raise NotAllowed("only a program admin imports the directory")
        result = DirectoryImportResult()
        for index, raw in enumerate(records):
            # Rejections carry the HSDS id as the record id, only if it is a valid id.
            named = {"record_id": raw.get("id")}
            try:
                service = read_service(raw)
            except InvalidDirectoryRecord as exc:
                result.reject(index, named, str(exc))
                continue
            stored = await self._repository.store(service, system)
            if stored is Stored.HELD_ELSEWHERE:
                result.reject(index, named, "id: a service of another system's package has it")
            elif stored is Stored.UPDATED:
                result.updated += 1
            else:
                result.count(stored is Stored.IMPORTED)
        log.info(
            "directory import",
            extra={"count": len(records), "rejected": len(result.rejected)},
        )
        return result

    async def search(
        self,
        county_fips: str | None,
        service_type: ServiceType | None,
        after: tuple[str, str] | None,
        limit: int,
        actor: Actor,
    ) -> SearchPage:
        self._check_staff(actor)
        found = await self._repository.search(search_key(county_fips, service_type), after, limit)
        last = found[-1] if len(found) == limit else None
        return SearchPage(found, (sort_name(last), last.id) if last else None)

    async def get(self, service_id: str, actor: Actor) -> DirectoryService | None:
        self._check_staff(actor)
        return await self._repository.get(service_id)

    async def connect(
        self, referral_id: uuid.UUID, service_id: str, actor: Actor, correlation_id: str
    ) -> tuple[Connection, bool]:
        """Record that the referred person was connected to a directory service, with an event
        for the referral's outbox; True if recorded now, False if it was recorded before (the
        stored one is returned). Visibility and audit as for every referral write."""
        action = "connect_service"
        referral = await self._referrals.visible_for(referral_id, actor, action)
        service = await self._repository.get(service_id)
        if service is None or not service.active:
            await self._referrals.record_access(actor, action, referral, "refused")
            raise UnknownService
        connection = Connection(
            referral_id=str(referral_id),
            service_id=service.id,
            service_name=service.name,
            connected_at=to_millis(self._clock.now()),
            connected_by=actor.name,
        )
        event = ReferralConnectedToServiceV1.create(
            about=(str(referral_id), "connected", service.id),
            producer=PRODUCER,
            correlation_id=correlation_id,
            occurred_at=connection.connected_at,
            referral_id=referral_id,
            person_id=referral.person_id,
            service_id=service.id,
            service_types=list(service.service_types),
            county_fips=referral.county_fips,
            liaison_id=referral.assignment.liaison_id,
            cmhc_id=referral.assignment.cmhc_id,
            connected_at=connection.connected_at,
            connected_by=actor.name,
        )
        if await self._repository.add_connection(connection, [event]):
            await self._referrals.record_access(actor, action, referral, "changed")
            return connection, True
        stored = await self._repository.connection(str(referral_id), service.id)
        assert stored is not None
        await self._referrals.record_access(actor, action, referral, "unchanged")
        return stored, False

    async def connections_of(self, referral_id: uuid.UUID) -> list[Connection]:
        """For a referral the caller has just read (its read is the audited access)."""
        return await self._repository.connections_of(str(referral_id))

    @staticmethod
    def _check_staff(actor: Actor) -> None:
        principal = actor.principal
        if principal is None or not principal.roles & STAFF:
            raise NotAllowed("only liaisons, supervisors and program admins use the directory")
