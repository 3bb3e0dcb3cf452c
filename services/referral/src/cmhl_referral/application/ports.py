"""What the referral use cases need from the outside world, named by role."""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from cmhl_contracts import IntegrationEvent
from cmhl_referral.domain.consent import Consent, ConsentScope
from cmhl_referral.domain.referral import Referral
from cmhl_servicekit.audit import AuditLog, AuditReader


class ConcurrentChange(Exception):
    """The referral changed between read and write; the caller should read it again."""


@dataclass(frozen=True)
class PersonRegistration:
    """A referral to enter in its person's ledger (the person by pseudonym)."""

    person_id: str
    referral_id: uuid.UUID
    referred_at: datetime


@dataclass(frozen=True)
class CaseloadQuery:
    """Filters of a caseload listing; `after` is the (received_at, id) of the last row seen."""

    liaison_id: str | None
    cmhc_id: str | None
    status: str | None = None
    county_fips: str | None = None
    agency_id: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    repeat_involvement: bool | None = None
    family_name: str | None = None
    after: tuple[datetime, str] | None = None
    limit: int = 50


class ReferralRepository(Protocol):
    async def add_many(
        self, referrals: list[tuple[Referral, list[IntegrationEvent]]]
    ) -> list[bool]:
        """Store new referrals with their events in few round trips; in order, whether each was
        stored (False if its id exists, or came earlier in the list)."""

    async def get(self, referral_id: uuid.UUID) -> Referral | None: ...

    async def get_many(self, referral_ids: list[uuid.UUID]) -> list[Referral]:
        """The stored ones among the ids, in the order given."""

    async def count_up_to(self, liaison_id: str, status: str, cap: int) -> int: ...

    async def newest_received(
        self, liaison_id: str | None, cmhc_id: str | None
    ) -> datetime | None: ...

    async def earlier_referrals_of_people(
        self,
        registrations: Sequence[PersonRegistration],
        counted_by_caller: Collection[uuid.UUID] = (),
    ) -> list[list[datetime]]:
        """Record that each referral is its person's (the people are distinct), and return, in
        order, when each person's other referrals were made: those stored, and those being
        written right now, except `counted_by_caller` (the rest of the caller's own batch)."""

    async def save(self, referral: Referral, events: list[IntegrationEvent]) -> None:
        """Store a changed referral and its new events in one write, if nobody changed it since
        it was read (its version); raise ConcurrentChange otherwise."""

    async def find(self, query: CaseloadQuery) -> list[Referral]: ...

    async def note_consent(self, referral_id: uuid.UUID, consent: Consent) -> None:
        """Index a consent by recipient and scope (before the referral's write that adds it)."""

    async def consented_referrals(
        self, recipient: str, scope: ConsentScope, in_force_from: date
    ) -> list[uuid.UUID]:
        """Referrals that had a consent for this recipient and scope ending on or after the
        day; the referral itself says whether it is in force (or was revoked)."""


class AuditTrail(AuditLog, AuditReader, Protocol):
    """Servicekit's audit log, which this service also reads for the accounting of
    disclosures (every service's entries about a person)."""


class EventsWritten(Protocol):
    """Told after a write that stored events, so the relay publishes them without waiting."""

    def __call__(self) -> None: ...
