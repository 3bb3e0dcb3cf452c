"""What the placement use cases need from the outside world, named by role."""

import uuid
from dataclasses import dataclass
from typing import Literal, Protocol

from cmhl_contracts import IntegrationEvent
from cmhl_placement.domain.facility import Facility
from cmhl_placement.domain.request import PlacementRequest
from cmhl_servicekit import timers


class ConcurrentChange(Exception):
    """The document changed between read and write; the caller reads it again."""


class FacilityRepository(Protocol):
    async def add(self, facility: Facility, events: list[IntegrationEvent]) -> bool:
        """Insert a new facility with its events; False if its id exists."""

    async def get(self, facility_id: str) -> Facility | None: ...

    async def all(self) -> list[Facility]: ...

    async def find(
        self, *, county_fips: str | None, cmhc_region: str | None, limit: int
    ) -> list[Facility]:
        """In id order: one county's, one region's, or (neither given) the first `limit`."""

    async def save(self, facility: Facility, events: list[IntegrationEvent]) -> None:
        """Store the change and its events if nobody wrote since it was read (its version);
        raise ConcurrentChange otherwise."""


class RequestRepository(Protocol):
    async def add(self, request: PlacementRequest, events: list[IntegrationEvent]) -> bool: ...

    async def get(self, request_id: uuid.UUID) -> PlacementRequest | None: ...

    async def save(self, request: PlacementRequest, events: list[IntegrationEvent]) -> None:
        """As FacilityRepository.save."""

    async def find(
        self,
        *,
        liaison_id: str | None,
        cmhc_id: str | None,
        limit: int,
        referral_id: str | None = None,
    ) -> list[PlacementRequest]:
        """Newest first: a liaison's (or a CMHC's), optionally one referral's only."""


# Placement's timers (servicekit's durable timers): a facility's numbers going stale, and the
# 72- and 90-hour flags of a request. A stale timer's `sequence` is the update it watches.
TimerKind = Literal["stale", "due_soon", "overdue"]


class TimerStore(timers.TimerStore, Protocol):
    async def claim(self, claim_id: str, kind: TimerKind, event: IntegrationEvent) -> bool:
        """Insert the claim of a fired timer with its event; False if it was claimed before,
        so however many replicas race, one event is written."""


@dataclass(frozen=True)
class ReferralFacts:
    """What the referral service says of a referral the caller may see."""

    person_id: str
    liaison_id: str
    cmhc_id: str
    closed: bool


class ReferralsUnavailable(Exception):
    """The referral service did not answer: nothing is opened without its word (503)."""


class Referrals(Protocol):
    async def visible_to(self, referral_id: uuid.UUID, credentials: str) -> ReferralFacts | None:
        """The referral as the caller (their bearer token) may see it, or None if it does not
        exist or is not theirs; the referral service checks and audits the read."""
