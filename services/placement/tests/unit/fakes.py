"""In-memory fakes of the placement ports: what the Mongo adapters promise, without a server."""

import copy
import uuid
from dataclasses import replace
from typing import TypeVar

from cmhl_contracts import IntegrationEvent
from cmhl_placement.application.ports import ConcurrentChange, ReferralFacts, TimerKind
from cmhl_placement.domain.facility import Facility
from cmhl_placement.domain.request import PlacementRequest
from cmhl_servicekit.timers import InMemoryTimerStore

E = TypeVar("E", bound=IntegrationEvent)


class Published:
    """Every event the fakes stored, in order: what the outbox relay would publish."""

    def __init__(self) -> None:
        self.events: list[IntegrationEvent] = []

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]


class InMemoryFacilities:
    def __init__(self, published: Published) -> None:
        self.rows: dict[str, Facility] = {}
        self._published = published

    async def add(self, facility: Facility, events: list[IntegrationEvent]) -> bool:
        if facility.facility_id in self.rows:
            return False
        self.rows[facility.facility_id] = facility
        self._published.events.extend(events)
        return True

    async def get(self, facility_id: str) -> Facility | None:
        return self.rows.get(facility_id)

    async def all(self) -> list[Facility]:
        return list(self.rows.values())

    async def find(
        self, *, county_fips: str | None, cmhc_region: str | None, limit: int
    ) -> list[Facility]:
        found = [
            f
            for f in self.rows.values()
            if county_fips in (None, f.county_fips) and cmhc_region in (None, f.cmhc_region)
        ]
        return sorted(found, key=lambda f: f.facility_id)[:limit]

    async def save(self, facility: Facility, events: list[IntegrationEvent]) -> None:
        if self.rows[facility.facility_id].version != facility.version:
            raise ConcurrentChange(facility.facility_id)
        self.rows[facility.facility_id] = replace(facility, version=facility.version + 1)
        self._published.events.extend(events)


class InMemoryRequests:
    def __init__(self, published: Published) -> None:
        self.rows: dict[uuid.UUID, PlacementRequest] = {}
        self._published = published

    async def add(self, request: PlacementRequest, events: list[IntegrationEvent]) -> bool:
        if request.request_id in self.rows:
            return False
        self.rows[request.request_id] = copy.deepcopy(request)
        self._published.events.extend(events)
        return True

    async def get(self, request_id: uuid.UUID) -> PlacementRequest | None:
        found = self.rows.get(request_id)
        return copy.deepcopy(found) if found else None

    async def save(self, request: PlacementRequest, events: list[IntegrationEvent]) -> None:
        if self.rows[request.request_id].version != request.version:
            raise ConcurrentChange(str(request.request_id))
        request.version += 1
        self.rows[request.request_id] = copy.deepcopy(request)
        self._published.events.extend(events)

    async def find(
        self,
        *,
        liaison_id: str | None,
        cmhc_id: str | None,
        limit: int,
        referral_id: str | None = None,
    ) -> list[PlacementRequest]:
        return [
            copy.deepcopy(r)
            for r in self.rows.values()
            if ((liaison_id and r.liaison_id == liaison_id) or (cmhc_id and r.cmhc_id == cmhc_id))
            and (referral_id is None or str(r.referral_id) == referral_id)
        ][:limit]


class InMemoryTimers(InMemoryTimerStore):
    def __init__(self, published: Published) -> None:
        super().__init__()
        self.claims: dict[str, TimerKind] = {}
        self._published = published

    async def claim(self, claim_id: str, kind: TimerKind, event: IntegrationEvent) -> bool:
        if claim_id in self.claims:
            return False
        self.claims[claim_id] = kind
        self._published.events.append(event)
        return True


class KnownReferrals:
    """The referral service's answers, as a test sets them: referral -> (token, facts)."""

    def __init__(self) -> None:
        self.known: dict[uuid.UUID, tuple[str, ReferralFacts]] = {}

    def add(self, referral_id: uuid.UUID, credentials: str, facts: ReferralFacts) -> None:
        self.known[referral_id] = (credentials, facts)

    async def visible_to(self, referral_id: uuid.UUID, credentials: str) -> ReferralFacts | None:
        known = self.known.get(referral_id)
        return known[1] if known is not None and known[0] == credentials else None
