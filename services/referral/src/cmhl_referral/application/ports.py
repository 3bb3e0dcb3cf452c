"""What the referral use cases need from the outside world, named by role."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cmhl_contracts import IntegrationEvent
from cmhl_referral.domain.referral import Referral


class ReferralRepository(Protocol):
    async def add(self, referral: Referral, events: list[IntegrationEvent]) -> bool:
        """Store a new referral with its pending events in one write; False if the id exists."""

    async def get(self, referral_id: uuid.UUID) -> Referral | None: ...

    async def referred_ats_of_person(self, person_id: str) -> list[datetime]: ...


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to which person's record, when, from where, and the outcome."""

    actor: str
    actor_roles: tuple[str, ...]
    action: str
    referral_id: str
    person_id: str | None
    at: datetime
    source_address: str | None
    outcome: str


class AuditLog(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...


class EventsWritten(Protocol):
    """Told after a write that stored events, so the relay publishes them without waiting."""

    def __call__(self) -> None: ...
