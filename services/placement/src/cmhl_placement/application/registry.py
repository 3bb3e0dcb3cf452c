"""Registry use cases: program admins list and change any facility, a facility's own client
changes only its own; every change is versioned, audited and published through the outbox."""

from datetime import datetime, timedelta

from cmhl_contracts import IntegrationEvent
from cmhl_placement.application import events
from cmhl_placement.application.ports import ConcurrentChange, FacilityRepository, TimerStore
from cmhl_placement.domain.facility import Facility
from cmhl_placement.domain.registry import FacilityRecord, register, revise
from cmhl_servicekit.audit import AuditEntry, AuditLog
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import Clock
from cmhl_servicekit.timers import Timer
from cmhl_servicekit.versioned import CONFLICT, Conflict, retry_on_conflict


class FacilityExists(Exception):
    """The id names a facility registered with other settings (409): change it with PUT."""


class StaleVersion(Exception):
    """The change was made on an older version of the record than the stored one (409)."""

    def __init__(self, current: int) -> None:
        super().__init__(
            f"the record is at version {current}: read it again and send the change on it"
        )
        self.current = current


class NotYourFacility(PermissionError):
    """A facility's client changing another facility's record (403)."""


class UnknownFacility(Exception):
    """No facility with that id (404, or 422 when named inside a request)."""


def stale_timer(facility: Facility, at: datetime, stale_after: timedelta) -> Timer:
    """The reminder that fires if the numbers of this update are not replaced in time."""
    return Timer(
        timer_id=f"stale|{facility.facility_id}|{facility.sequence}",
        kind="stale",
        subject_id=facility.facility_id,
        fire_at=at + stale_after,
        created_at=at,
        sequence=facility.sequence,
    )


def editor(principal: Principal, own_facility: str | None) -> str:
    """Who made a change, as events and units show it: a facility's client by its client id,
    a person by their staff id (never a name)."""
    if own_facility and principal.client_id:
        return principal.client_id
    return principal.subject


class FacilityRegistry:
    def __init__(
        self,
        facilities: FacilityRepository,
        timers: TimerStore,
        audit: AuditLog,
        clock: Clock,
        stale_after: timedelta,
    ) -> None:
        self._facilities = facilities
        self._timers = timers
        self._audit = audit
        self._clock = clock
        self._stale_after = stale_after

    async def register(
        self,
        record: FacilityRecord,
        principal: Principal,
        source_address: str | None,
        correlation_id: str,
    ) -> tuple[Facility, bool]:
        """Lists a new facility; returns it and whether it is new. The id is the admin's, so a
        retried POST finds the first and stores nothing twice; the same id with other settings
        is refused."""
        if not principal.has(Role.PROGRAM_ADMIN):
            await self._record(principal, source_address, "register", record.facility_id, "denied")
            raise PermissionError("only a program admin registers a facility")
        now = self._clock.now()
        by = editor(principal, None)
        facility = register(record, now, by)
        existing = await self._facilities.get(record.facility_id)
        if existing is None:
            await self._timers.schedule([stale_timer(facility, now, self._stale_after)])
            if await self._facilities.add(facility, self._listed(facility, by, correlation_id)):
                await self._record(
                    principal, source_address, "register", facility.facility_id, "created"
                )
                return facility, True
            existing = await self._facilities.get(record.facility_id)
            assert existing is not None
        if not same_settings(existing, facility):
            raise FacilityExists(
                f"facility {record.facility_id!r} is registered with other settings;"
                " change it with PUT"
            )
        await self._record(
            principal, source_address, "register", facility.facility_id, "duplicate_returned"
        )
        return existing, False

    async def change(
        self,
        facility_id: str,
        record: FacilityRecord,
        version: int,
        principal: Principal,
        own_facility: str | None,
        source_address: str | None,
        correlation_id: str,
    ) -> Facility:
        """A program admin changes any facility, a facility's client only its own; `version` is
        the record version the change was made on."""
        if not principal.has(Role.PROGRAM_ADMIN) and own_facility != facility_id:
            await self._record(principal, source_address, "change", facility_id, "denied")
            if own_facility:
                raise NotYourFacility("this client may change only its own facility")
            raise PermissionError("only a program admin or the facility's own client")
        by = editor(principal, own_facility)

        async def attempt() -> Facility | Conflict:
            current = await self._facilities.get(facility_id)
            if current is None:
                raise UnknownFacility(facility_id)
            now = self._clock.now()
            if current.record_version != version:
                retried = current.record_version == version + 1 and same_settings(
                    current, register(record, now, by)
                )
                if retried:  # the change that made this version, sent again: stored once
                    await self._record(
                        principal, source_address, "change", facility_id, "unchanged"
                    )
                    return current
                await self._record(principal, source_address, "change", facility_id, "conflict")
                raise StaleVersion(current.record_version)
            revised, beds_changed = revise(current, record, now, by)
            new: list[IntegrationEvent] = [events.record_updated(revised, now, by, correlation_id)]
            if revised.sequence != current.sequence:
                new.append(
                    events.availability_updated(revised, beds_changed, now, by, correlation_id)
                )
                await self._timers.schedule([stale_timer(revised, now, self._stale_after)])
            try:
                await self._facilities.save(revised, new)
            except ConcurrentChange:
                return CONFLICT  # a bed update landed meanwhile: read again, apply again
            await self._record(principal, source_address, "change", facility_id, "changed")
            return revised

        return await retry_on_conflict(attempt, lambda: ConcurrentChange(facility_id))

    async def seed(self, records: tuple[FacilityRecord, ...]) -> int:
        """Lists the demo facilities that are not there yet (tests and the dev overlay; `make
        up` posts them through the API instead); a restart adds nothing."""
        added = 0
        now = self._clock.now()
        for record in records:
            if await self._facilities.get(record.facility_id) is not None:
                continue
            facility = register(record, now, "seed")
            await self._timers.schedule([stale_timer(facility, now, self._stale_after)])
            listed = self._listed(facility, "seed", f"seed-{record.facility_id}")
            added += await self._facilities.add(facility, listed)
        return added

    def _listed(self, facility: Facility, by: str, correlation_id: str) -> list[IntegrationEvent]:
        """A new facility's events: its record, and its first bed numbers."""
        now = self._clock.now()
        units = list(facility.units)
        return [
            events.record_updated(facility, now, by, correlation_id),
            events.availability_updated(facility, units, now, by, correlation_id),
        ]

    async def _record(
        self,
        principal: Principal,
        source_address: str | None,
        action: str,
        facility_id: str,
        outcome: str,
    ) -> None:
        # A facility's record names no person; registry changes are audited all the same, as
        # the program's reference data.
        await self._audit.record(
            [
                AuditEntry(
                    actor=principal.client_id
                    if not principal.roles and principal.client_id
                    else principal.subject,
                    actor_roles=tuple(sorted(principal.roles)),
                    action=action,
                    record=f"facility/{facility_id}",
                    person_ids=(),
                    at=self._clock.now(),
                    outcome=outcome,
                    source_address=source_address,
                )
            ]
        )


def same_settings(a: Facility, b: Facility) -> bool:
    """Whether two registrations say the same (bed numbers and their ages aside)."""

    def settings(f: Facility) -> tuple[object, ...]:
        units = sorted(
            (
                u.unit_type,
                u.capacity,
                sorted(u.patient_types),
                u.involuntary_holds,
                u.security_level,
                sorted(u.exclusions),
            )
            for u in f.units.values()
        )
        return (
            f.name,
            f.county_fips,
            f.phone,
            f.contact_email,
            f.medical_clearance_required,
            units,
        )

    return settings(a) == settings(b)
