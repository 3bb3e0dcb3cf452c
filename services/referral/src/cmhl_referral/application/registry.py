"""Registry use cases: program admins keep CMHCs and liaisons, and new referrals are assigned
county -> CMHC -> liaison by the registry in force on the referral's day.

While the registry is empty (a program that has not set it up yet) the default table of
domain/assignment.py assigns, as before the registry existed."""

import asyncio
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from cmhl_contracts import CmhcServiceAreaChangedV1, IntegrationEvent, LiaisonChangedV1
from cmhl_referral.application.ports import (
    CaseloadQuery,
    ConcurrentChange,
    EventsWritten,
    ReferralRepository,
)
from cmhl_referral.domain import assignment as default_table
from cmhl_referral.domain.referral import Assignment, Referral
from cmhl_referral.domain.registry import (
    UNASSIGNED,
    Cmhc,
    Coverage,
    Liaison,
    LiaisonTerms,
    Registry,
    Strategy,
    check_counties,
    check_coverage,
    check_no_overlap,
    check_not_reserved,
    least_loaded,
    round_robin,
)
from cmhl_servicekit.audit import AuditEntry, AuditLog
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import Clock
from cmhl_servicekit.versioned import CONFLICT, Conflict, retry_on_conflict

PRODUCER = "referral"
UNASSIGNED_PAGE = 200
# How old a replica's copy of the registry may be when it assigns a referral.
REGISTRY_FRESH_FOR = 5.0
# How long a referral this replica assigned counts as pending for least-loaded assignment.
PENDING_FOR = 2.0


class RegistryRepository(Protocol):
    async def registry(self) -> Registry: ...

    async def cmhc(self, cmhc_id: str) -> Cmhc | None: ...

    async def liaison(self, liaison_id: str) -> Liaison | None: ...

    async def add_cmhc(self, cmhc: Cmhc, events: list[IntegrationEvent]) -> bool:
        """False if the id exists."""

    async def save_cmhc(self, cmhc: Cmhc, events: list[IntegrationEvent]) -> None:
        """Raise ConcurrentChange if it changed since it was read."""

    async def add_liaison(self, liaison: Liaison, events: list[IntegrationEvent]) -> bool: ...

    async def save_liaison(self, liaison: Liaison, events: list[IntegrationEvent]) -> None: ...

    async def next_ticket(self, pool: str) -> int:
        """The next number of a counter shared by every replica: each number is handed out
        once."""

    async def open_referrals(self, liaison_ids: list[str]) -> dict[str, int]: ...

    async def unassigned_open(self) -> int:
        """Open referrals that no liaison holds."""


class NotAdmin(Exception):
    """Only a program admin changes the registry (403)."""


class AlreadyRegistered(Exception):
    """The id is registered; change it with PUT (409)."""


class NotRegistered(Exception):
    """No CMHC or liaison with that id (404)."""


@dataclass(frozen=True)
class CoverageReport:
    coverage: Coverage
    unassigned_open_referrals: int


class Assignments(Protocol):
    """Who serves a county and who works for a CMHC, on a day: the referral use cases' view of
    the registry."""

    async def assign(self, county_fips: str, at: datetime) -> Assignment: ...

    async def cmhc_of(self, liaison_id: str, at: datetime) -> str | None: ...

    async def liaisons_of(self, cmhc_id: str, at: datetime) -> list[str]: ...


class DefaultAssignments:
    """The default table only: unit tests of the referral use cases, and no registry."""

    async def assign(self, county_fips: str, at: datetime) -> Assignment:
        return default_table.assignment_for(county_fips)

    async def cmhc_of(self, liaison_id: str, at: datetime) -> str | None:
        return default_table.cmhc_of(liaison_id)

    async def liaisons_of(self, cmhc_id: str, at: datetime) -> list[str]:
        return default_table.liaisons_of(cmhc_id)


class RegistryAssignments:
    """The registry in force on the referral's program day; the default table while empty."""

    def __init__(self, repository: RegistryRepository, strategy: Strategy, zone: ZoneInfo) -> None:
        self._repository = repository
        self._strategy = strategy
        self._zone = zone
        self._default = DefaultAssignments()
        self._read: tuple[float, Registry] | None = None
        self._pending: dict[str, int] = {}

    async def _registry(self) -> Registry:
        """The registry as read at most REGISTRY_FRESH_FOR seconds ago: every referral is
        assigned by it, and it changes a few times a year (by effective dates, never for the
        past minute). This replica's own changes are seen at once (`forget`)."""
        now = time.monotonic()
        if self._read is None or now - self._read[0] > REGISTRY_FRESH_FOR:
            self._read = (now, await self._repository.registry())
        return self._read[1]

    def forget(self) -> None:
        self._read = None

    async def _least_loaded(self, candidates: list[str]) -> str:
        """Fewest open referrals, counting the ones this replica handed out in the last
        PENDING_FOR seconds: a batch's referrals are assigned side by side, all reading the
        counts before any is stored, and would otherwise all go to the same liaison. (A handed
        out referral is counted twice once stored, for a few seconds: every liaison alike.)"""
        counts = await self._repository.open_referrals(candidates)
        for liaison in candidates:
            counts[liaison] = counts.get(liaison, 0) + self._pending.get(liaison, 0)
        chosen = least_loaded(candidates, counts)
        self._pending[chosen] = self._pending.get(chosen, 0) + 1
        asyncio.get_running_loop().call_later(PENDING_FOR, self._settled, chosen)
        return chosen

    def _settled(self, liaison: str) -> None:
        left = self._pending.get(liaison, 0) - 1
        if left > 0:
            self._pending[liaison] = left
        else:
            self._pending.pop(liaison, None)

    def _day(self, at: datetime) -> date:
        return at.astimezone(self._zone).date()

    async def assign(self, county_fips: str, at: datetime) -> Assignment:
        """Never refuses: a county nobody serves gives an unassigned referral, kept and listed
        (a person in crisis is not turned away because the registry has a gap)."""
        registry = await self._registry()
        if registry.empty:
            return await self._default.assign(county_fips, at)
        day = self._day(at)
        serving = registry.serving(county_fips, day)
        if not serving:
            return Assignment(UNASSIGNED, UNASSIGNED)
        cmhc = serving[0]  # overlaps are refused when made; the first in id order if one slipped
        candidates = registry.candidates(cmhc, county_fips, day)
        if not candidates:
            return Assignment(UNASSIGNED, cmhc)
        if len(candidates) == 1:  # no turn to take, nothing to count: no round trip
            return Assignment(candidates[0], cmhc)
        if self._strategy is Strategy.ROUND_ROBIN:
            # Turns per county: liaisons may take different counties of one CMHC, and one
            # counter for the CMHC could hand every turn of a county to the same liaison.
            pool = f"{cmhc}|{county_fips}"
            liaison = round_robin(candidates, await self._repository.next_ticket(pool))
        else:
            liaison = await self._least_loaded(candidates)
        return Assignment(liaison, cmhc)

    async def cmhc_of(self, liaison_id: str, at: datetime) -> str | None:
        registry = await self._registry()
        if registry.empty:
            return await self._default.cmhc_of(liaison_id, at)
        return registry.cmhc_of(liaison_id, self._day(at))

    async def liaisons_of(self, cmhc_id: str, at: datetime) -> list[str]:
        registry = await self._registry()
        if registry.empty:
            return await self._default.liaisons_of(cmhc_id, at)
        return registry.liaisons_of(cmhc_id, self._day(at))


class RegistryService:
    def __init__(
        self,
        repository: RegistryRepository,
        referrals: ReferralRepository,
        audit: AuditLog,
        clock: Clock,
        events_written: EventsWritten,
    ) -> None:
        self._repository = repository
        self._referrals = referrals
        self._audit = audit
        self._clock = clock
        self._events_written = events_written

    async def register_cmhc(
        self,
        cmhc_id: str,
        name: str,
        counties: list[str],
        effective_from: date,
        principal: Principal,
        correlation_id: str,
    ) -> Cmhc:
        _admin(principal)
        check_not_reserved(cmhc_id)
        area = check_counties(counties)
        registry = await self._repository.registry()
        check_no_overlap(cmhc_id, area, effective_from, registry.cmhcs)
        cmhc = Cmhc(cmhc_id, name)
        cmhc.change_area(area, effective_from)
        if not await self._repository.add_cmhc(cmhc, [_area_changed(cmhc, 1, correlation_id)]):
            raise AlreadyRegistered(f"CMHC {cmhc_id} is registered; change its service area")
        self._events_written()
        await self._record(principal, "register", f"cmhc/{cmhc_id}")
        return cmhc

    async def change_service_area(
        self,
        cmhc_id: str,
        counties: list[str],
        effective_from: date,
        principal: Principal,
        correlation_id: str,
    ) -> Cmhc:
        _admin(principal)
        area = check_counties(counties)

        async def attempt() -> Cmhc | Conflict:
            registry = await self._repository.registry()
            cmhc = next((c for c in registry.cmhcs if c.cmhc_id == cmhc_id), None)
            if cmhc is None:
                raise NotRegistered(f"CMHC {cmhc_id} is not registered")
            check_no_overlap(cmhc_id, area, effective_from, registry.cmhcs)
            cmhc.change_area(area, effective_from)
            event = _area_changed(cmhc, cmhc.version + 1, correlation_id)
            try:
                await self._repository.save_cmhc(cmhc, [event])
            except ConcurrentChange:
                return CONFLICT
            return cmhc

        cmhc = await retry_on_conflict(attempt, ConcurrentChange)
        self._events_written()
        await self._record(principal, "change_service_area", f"cmhc/{cmhc_id}")
        return cmhc

    async def register_liaison(
        self,
        liaison_id: str,
        terms: LiaisonTerms,
        principal: Principal,
        correlation_id: str,
    ) -> Liaison:
        _admin(principal)
        check_not_reserved(liaison_id)
        check_coverage(terms, await self._repository.cmhc(terms.cmhc_id))
        liaison = Liaison(liaison_id)
        liaison.change(terms)
        event = _liaison_changed(liaison, 1, correlation_id)
        if not await self._repository.add_liaison(liaison, [event]):
            raise AlreadyRegistered(f"liaison {liaison_id} is registered; change them with PUT")
        self._events_written()
        await self._record(principal, "register", f"liaison/{liaison_id}")
        return liaison

    async def change_liaison(
        self,
        liaison_id: str,
        terms: LiaisonTerms,
        principal: Principal,
        correlation_id: str,
    ) -> Liaison:
        _admin(principal)
        check_coverage(terms, await self._repository.cmhc(terms.cmhc_id))

        async def attempt() -> Liaison | Conflict:
            liaison = await self._repository.liaison(liaison_id)
            if liaison is None:
                raise NotRegistered(f"liaison {liaison_id} is not registered")
            liaison.change(terms)
            event = _liaison_changed(liaison, liaison.version + 1, correlation_id)
            try:
                await self._repository.save_liaison(liaison, [event])
            except ConcurrentChange:
                return CONFLICT
            return liaison

        liaison = await retry_on_conflict(attempt, ConcurrentChange)
        self._events_written()
        await self._record(principal, "change", f"liaison/{liaison_id}")
        return liaison

    async def registry(self) -> Registry:
        return await self._repository.registry()

    async def coverage(self, day: date) -> CoverageReport:
        registry = await self._repository.registry()
        return CoverageReport(registry.coverage(day), await self._repository.unassigned_open())

    async def unassigned(self, principal: Principal, source_address: str | None) -> list[Referral]:
        """Referrals no liaison holds, newest first (up to UNASSIGNED_PAGE): every one for a
        program admin; for a supervisor, their CMHC's and those of counties no CMHC serves.
        Each listed record is audited."""
        if principal.has(Role.PROGRAM_ADMIN):
            scopes: list[str | None] = [None]
        elif principal.has(Role.SUPERVISOR) and principal.cmhc_id:
            scopes = [principal.cmhc_id, UNASSIGNED]
        else:
            raise NotAdmin(
                "only program admins, and supervisors of a CMHC, list unassigned referrals"
            )
        found: list[Referral] = []
        for cmhc in scopes:
            query = CaseloadQuery(liaison_id=UNASSIGNED, cmhc_id=cmhc, limit=UNASSIGNED_PAGE)
            found += await self._referrals.find(query)
        found.sort(key=lambda r: (r.received_at, str(r.referral_id)), reverse=True)
        listed = found[:UNASSIGNED_PAGE]
        now = self._clock.now()
        await self._audit.record(
            [
                AuditEntry(
                    actor=principal.subject,
                    actor_roles=tuple(sorted(principal.roles)),
                    action="list_unassigned",
                    record=f"referral/{r.referral_id}",
                    person_ids=(r.person_id,),
                    at=now,
                    outcome="allowed",
                    source_address=source_address,
                    referral_id=str(r.referral_id),
                )
                for r in listed
            ]
        )
        return listed

    async def _record(self, principal: Principal, action: str, record: str) -> None:
        """Registry changes name no person; they are audited for accountability all the same."""
        await self._audit.record(
            [
                AuditEntry(
                    actor=principal.subject,
                    actor_roles=tuple(sorted(principal.roles)),
                    action=action,
                    record=record,
                    person_ids=(),
                    at=self._clock.now(),
                    outcome="changed",
                )
            ]
        )


def _admin(principal: Principal) -> None:
    if not principal.has(Role.PROGRAM_ADMIN):
        raise NotAdmin("only a program admin changes the registry")


def _area_changed(cmhc: Cmhc, sequence: int, correlation_id: str) -> CmhcServiceAreaChangedV1:
    change = cmhc.areas[-1]
    return CmhcServiceAreaChangedV1.create(
        about=(cmhc.cmhc_id, str(sequence)),
        producer=PRODUCER,
        correlation_id=correlation_id,
        sequence=sequence,
        effective_from=change.effective_from,
        cmhc_id=cmhc.cmhc_id,
        counties=sorted(change.counties),
    )


def _liaison_changed(liaison: Liaison, sequence: int, correlation_id: str) -> LiaisonChangedV1:
    terms = liaison.terms[-1]
    return LiaisonChangedV1.create(
        about=(liaison.liaison_id, str(sequence)),
        producer=PRODUCER,
        correlation_id=correlation_id,
        sequence=sequence,
        effective_from=terms.effective_from,
        liaison_id=liaison.liaison_id,
        cmhc_id=terms.cmhc_id,
        status=terms.status,
        coverage=sorted(terms.coverage),
    )
