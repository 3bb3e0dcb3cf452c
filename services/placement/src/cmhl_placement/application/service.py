"""Placement use cases: facilities report beds, liaisons search for one, timers flag the clock."""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cmhl_contracts import IntegrationEvent
from cmhl_contracts.placement import AgeGroup, AttemptResult, ClinicalNeed, UnitType
from cmhl_placement.application import events
from cmhl_placement.application.ports import (
    ConcurrentChange,
    FacilityRepository,
    Referrals,
    RequestRepository,
    TimerStore,
)
from cmhl_placement.application.registry import UnknownFacility, stale_timer
from cmhl_placement.domain.clock import FLAG_HOURS, Flag
from cmhl_placement.domain.facility import Facility
from cmhl_placement.domain.geography import region_of
from cmhl_placement.domain.ranking import Candidate, rank
from cmhl_placement.domain.request import (
    InvalidRequest,
    PlacementRequest,
    check_detention_start,
)
from cmhl_servicekit.audit import AuditEntry, AuditLog
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import Clock, to_millis
from cmhl_servicekit.timers import Timer, fire_due, orphaned
from cmhl_servicekit.versioned import CONFLICT, Conflict, retry_on_conflict

log = logging.getLogger(__name__)


class WrongFacility(Exception):
    """A facility key used for another facility (403)."""


class NotVisible(Exception):
    """The request does not exist or is not the actor's: the same answer for both (404)."""


class ReferralNotVisible(Exception):
    """The referral does not exist or the caller may not see it: the same answer (404)."""


class ReferralClosed(Exception):
    """The referral is closed: no bed search opens for it (409)."""


@dataclass(frozen=True)
class Actor:
    principal: Principal
    source_address: str | None

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(sorted(self.principal.roles))


@dataclass(frozen=True)
class OpenRequest:
    referral_id: uuid.UUID
    credentials: str
    """The caller's bearer token: the referral service is asked as the caller."""
    detention_started_at: datetime
    age_group: AgeGroup
    needs: frozenset[ClinicalNeed]
    county_fips: str
    correlation_id: str
    request_id: uuid.UUID | None = None


class PlacementService:
    def __init__(
        self,
        facilities: FacilityRepository,
        requests: RequestRepository,
        timers: TimerStore,
        audit: AuditLog,
        clock: Clock,
        stale_after: timedelta,
        referrals: Referrals,
    ) -> None:
        self._referrals = referrals
        self._facilities = facilities
        self._requests = requests
        self._timers = timers
        self._audit = audit
        self._clock = clock
        self.stale_after = stale_after

    def now(self) -> datetime:
        return self._clock.now()

    # ------------------------------------------------------------------ facilities

    async def facilities(
        self, county_fips: str | None = None, cmhc_region: str | None = None, limit: int = 500
    ) -> list[Facility]:
        """In id order, optionally one county's or one region's."""
        return await self._facilities.find(
            county_fips=county_fips, cmhc_region=cmhc_region, limit=limit
        )

    async def facility(self, facility_id: str) -> Facility:
        facility = await self._facilities.get(facility_id)
        if facility is None:
            raise UnknownFacility(facility_id)
        return facility

    async def update_availability(
        self,
        facility_id: str,
        key_facility_id: str,
        counts: dict[UnitType, int],
        reported_by: str,
        correlation_id: str,
    ) -> Facility:
        """Staff report their own facility's free beds; the key decides which facility that is."""
        if key_facility_id != facility_id:
            raise WrongFacility("this client may report only for its own facility")

        async def attempt() -> Facility | Conflict:
            current = await self.facility(facility_id)
            now = self._clock.now()
            updated = current.update_availability(counts, now, reported_by)
            event = events.availability_updated(
                updated, list(counts), now, reported_by, correlation_id
            )
            # The timer first: a timer whose update never landed finds nothing stale.
            await self._timers.schedule([stale_timer(updated, now, self.stale_after)])
            try:
                await self._facilities.save(updated, [event])
            except ConcurrentChange:
                return CONFLICT
            return updated

        return await retry_on_conflict(attempt, lambda: ConcurrentChange(facility_id))

    # ------------------------------------------------------------------ requests

    async def candidates(self, request: PlacementRequest) -> list[Candidate]:
        return rank(
            await self._facilities.all(),
            age_group=request.age_group,
            needs=request.needs,
            county_fips=request.county_fips,
            now=self._clock.now(),
            stale_after=self.stale_after,
        )

    async def open_request(
        self, command: OpenRequest, actor: Actor
    ) -> tuple[PlacementRequest, bool]:
        """Returns the request and whether it is new (a repeated request id returns the first)."""
        principal = actor.principal
        if not principal.has(Role.LIAISON):
            raise PermissionError("only a liaison opens a placement request")
        now = self._clock.now()
        started = to_millis(command.detention_started_at)
        check_detention_start(started, now)
        if command.request_id is not None:
            existing = await self._requests.get(command.request_id)
            if existing is not None:
                return await self._repeated(existing, actor), False
        # The referral and whose person it is come from the referral service, asked as the
        # caller: a request names only a referral the caller may see.
        referral = await self._referrals.visible_to(command.referral_id, command.credentials)
        if referral is None:
            await self._audit.record(
                [self._referral_entry(actor, "open", command.referral_id, "denied")]
            )
            raise ReferralNotVisible
        if referral.closed:
            raise ReferralClosed
        request = PlacementRequest(
            request_id=command.request_id or uuid.uuid4(),
            referral_id=command.referral_id,
            person_id=referral.person_id,
            liaison_id=principal.subject,
            cmhc_id=principal.cmhc_id or region_of(command.county_fips),
            county_fips=command.county_fips,
            age_group=command.age_group,
            needs=command.needs,
            detention_started_at=started,
            requested_at=now,
        )
        clock = request.clock
        await self._timers.schedule(
            [
                Timer(
                    f"{flag}|{request.request_id}",
                    flag,
                    str(request.request_id),
                    clock.flag_at(flag),
                    now,
                )
                for flag in FLAG_HOURS
            ]
        )
        if not await self._requests.add(
            request, [events.requested(request, command.correlation_id)]
        ):
            stored = await self._requests.get(request.request_id)
            assert stored is not None
            return await self._repeated(stored, actor), False
        await self._record(actor, "open", request, "created")
        return request, True

    async def _repeated(self, stored: PlacementRequest, actor: Actor) -> PlacementRequest:
        """A retried open returns the first request, to its owner only."""
        request = await self._visible(stored, actor, "open")
        await self._record(actor, "open", request, "duplicate_returned_existing")
        return request

    async def get_request(self, request_id: uuid.UUID, actor: Actor) -> PlacementRequest:
        request = await self._load(request_id, actor, "read")
        await self._record(actor, "read", request, "allowed")
        return request

    async def _load(self, request_id: uuid.UUID, actor: Actor, action: str) -> PlacementRequest:
        """The request if the actor may see it; a refusal or a miss is audited here, a change
        by the caller once it is stored."""
        request = await self._requests.get(request_id)
        if request is None:
            await self._record_missing(actor, action, request_id)
            raise NotVisible
        return await self._visible(request, actor, action)

    async def list_requests(
        self, actor: Actor, limit: int, referral_id: uuid.UUID | None = None
    ) -> list[PlacementRequest]:
        """A liaison's own requests, a supervisor's CMHC's (optionally one referral's); every
        listed request is audited."""
        principal = actor.principal
        referral = str(referral_id) if referral_id else None
        if principal.has(Role.SUPERVISOR) and principal.cmhc_id:
            found = await self._requests.find(
                liaison_id=None, cmhc_id=principal.cmhc_id, limit=limit, referral_id=referral
            )
        else:
            found = await self._requests.find(
                liaison_id=principal.subject, cmhc_id=None, limit=limit, referral_id=referral
            )
        await self._audit.record([self._entry(actor, "list", r, "allowed") for r in found])
        return found

    async def record_attempt(
        self,
        request_id: uuid.UUID,
        attempt_id: str | None,
        facility_id: str,
        result: AttemptResult,
        reason_code: str | None,
        attempted_at: datetime | None,
        actor: Actor,
        correlation_id: str,
    ) -> PlacementRequest:

        async def attempt() -> PlacementRequest | Conflict:
            request = await self._load(request_id, actor, "attempt")
            facility = await self._facilities.get(facility_id)
            if facility is None:
                raise InvalidRequest(f"unknown facility {facility_id!r}")
            now = self._clock.now()
            at = to_millis(attempted_at or now)
            if at > now + timedelta(minutes=1):
                raise InvalidRequest("attempted_at is in the future")
            call = request.record_attempt(facility_id, result, reason_code, at, attempt_id)
            if call is None:  # a retry of a call logged already
                await self._audit.record([self._entry(actor, "attempt", request, "unchanged")])
                return request
            event = events.attempted(request, call, facility, correlation_id)
            return await self._save(request, [event], actor, "attempt")

        return await retry_on_conflict(attempt, lambda: ConcurrentChange(str(request_id)))

    async def complete(
        self,
        request_id: uuid.UUID,
        facility_id: str | None,
        failure_reason: str | None,
        actor: Actor,
        correlation_id: str,
    ) -> PlacementRequest:
        """Placed (at a facility that accepted) or failed (with a reason): the end of a search."""

        async def attempt() -> PlacementRequest | Conflict:
            request = await self._load(request_id, actor, "complete")
            now = self._clock.now()
            facility = None
            if facility_id is not None:
                facility = await self._facilities.get(facility_id)
                if facility is None:
                    raise InvalidRequest(f"unknown facility {facility_id!r}")
                request.place(facility_id, now)
            elif failure_reason:
                request.fail(failure_reason, now)
            else:
                raise InvalidRequest("give facility_id (placed) or failure_reason (failed)")
            event = events.completed(request, facility, correlation_id)
            return await self._save(request, [event], actor, "complete")

        return await retry_on_conflict(attempt, lambda: ConcurrentChange(str(request_id)))

    async def _save(
        self, request: PlacementRequest, new: list[IntegrationEvent], actor: Actor, action: str
    ) -> PlacementRequest | Conflict:
        try:
            await self._requests.save(request, new)
        except ConcurrentChange:
            await self._record(actor, action, request, "conflict")
            return CONFLICT
        await self._record(actor, action, request, "changed")
        return request

    async def _visible(
        self, request: PlacementRequest, actor: Actor, action: str
    ) -> PlacementRequest:
        if may_see(actor.principal, request):
            return request
        await self._record(actor, action, request, "denied")
        raise NotVisible

    def _entry(
        self, actor: Actor, action: str, request: PlacementRequest, outcome: str
    ) -> AuditEntry:
        return AuditEntry(
            actor=actor.principal.subject,
            actor_roles=actor.roles,
            action=action,
            record=f"placement_request/{request.request_id}",
            person_ids=(request.person_id,) if request.person_id else (),
            at=self._clock.now(),
            outcome=outcome,
            source_address=actor.source_address,
            referral_id=str(request.referral_id),
        )

    async def _record(
        self, actor: Actor, action: str, request: PlacementRequest, outcome: str
    ) -> None:
        await self._audit.record([self._entry(actor, action, request, outcome)])

    def _referral_entry(
        self, actor: Actor, action: str, referral_id: uuid.UUID, outcome: str
    ) -> AuditEntry:
        return AuditEntry(
            actor=actor.principal.subject,
            actor_roles=actor.roles,
            action=action,
            record=f"referral/{referral_id}",
            person_ids=(),
            at=self._clock.now(),
            outcome=outcome,
            source_address=actor.source_address,
            referral_id=str(referral_id),
        )

    async def _record_missing(self, actor: Actor, action: str, request_id: uuid.UUID) -> None:
        await self._audit.record(
            [
                AuditEntry(
                    actor=actor.principal.subject,
                    actor_roles=actor.roles,
                    action=action,
                    record=f"placement_request/{request_id}",
                    person_ids=(),
                    at=self._clock.now(),
                    outcome="not_found",
                    source_address=actor.source_address,
                )
            ]
        )

    # ------------------------------------------------------------------ timers

    async def emit_due(self, limit: int = 200) -> int:
        """Fires the timers whose time has come: stale reminders and the 72/90-hour flags.

        Each fired timer's event is written with an insert-only claim keyed by what it is about,
        so a second pass, a second replica or a restart emits nothing twice; timers are dropped
        only after their claims are stored. Returns how many timers were finished (a timer
        whose write may still be landing stays for the next pass)."""
        return await fire_due(self._timers, self._fire, self._clock.now(), limit=limit)

    async def _fire(self, timer: Timer, now: datetime) -> bool:
        if timer.kind == "stale":
            return await self._fire_stale(timer, now)
        if timer.kind in FLAG_HOURS:
            return await self._fire_deadline(timer, timer.kind, now)
        log.warning("dropping a timer of an unknown kind", extra={"reason": timer.kind})
        return True

    async def _fire_stale(self, timer: Timer, now: datetime) -> bool:
        facility = await self._facilities.get(timer.subject_id)
        if facility is None or facility.sequence < timer.sequence:
            return orphaned(timer, now)  # the update may still land
        # The units whose numbers are still the ones reported by that update (or older).
        old = [u for u in facility.units.values() if u.reported_at <= timer.created_at]
        stale = [u.unit_type for u in old if u.is_stale(now, self.stale_after)]
        if old and not stale:
            return False  # exactly at the limit: stale only just after it, at the next pass
        if stale:
            event = events.availability_stale(
                facility,
                timer.sequence,
                stale,
                max(u.reported_at for u in old),
                self.stale_after.total_seconds() / 3600,
                now,
            )
            if await self._timers.claim(timer.timer_id, "stale", event):
                log.info("bed numbers went stale", extra={"event_id": str(event.event_id)})
        return True

    async def _fire_deadline(self, timer: Timer, flag: Flag, now: datetime) -> bool:
        request = await self._requests.get(uuid.UUID(timer.subject_id))
        if request is None:
            return orphaned(timer, now)
        if request.status == "open":
            event = events.deadline_flagged(request, flag, now)
            if await self._timers.claim(timer.timer_id, flag, event):
                log.info("placement clock flagged", extra={"event_id": str(event.event_id)})
        return True


def may_see(principal: Principal, request: PlacementRequest) -> bool:
    """Minimum necessary: a liaison sees their own requests, a supervisor their CMHC's."""
    if principal.has(Role.LIAISON) and request.liaison_id == principal.subject:
        return True
    return principal.has(Role.SUPERVISOR) and request.cmhc_id == principal.cmhc_id
