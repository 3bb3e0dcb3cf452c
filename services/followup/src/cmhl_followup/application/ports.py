"""What the follow-up use cases need from the outside world."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cmhl_contracts import FollowUpScheduledV1, IntegrationEvent

Document = dict[str, Any]


@dataclass(frozen=True)
class AuditEntry:
    """Who read or changed which person's follow-up, when, and the outcome."""

    actor: str
    actor_roles: tuple[str, ...]
    action: str
    follow_up_id: str
    referral_id: str | None
    person_id: str | None
    at: datetime
    outcome: str


class FollowUpRepository(Protocol):
    async def schedule(self, follow_ups: list[tuple[Document, FollowUpScheduledV1]]) -> int:
        """Insert follow-ups that do not exist yet, each with its scheduled event and its due
        and overdue timers; returns how many were new."""

    async def due_timers(self, now: datetime, limit: int) -> list[Document]:
        """Timers whose time has come: `{_id, follow_up_id, stage, created_at}`."""

    async def get(self, follow_up_id: str) -> Document | None: ...

    async def claim(self, stage: str, follow_up: Document, event: IntegrationEvent) -> bool:
        """Store the one announcement of `stage` (due, overdue) for a follow-up with its event;
        False if it was stored before (another replica, an earlier pass)."""

    async def drop_timers(self, timer_ids: list[str]) -> None: ...

    async def update(
        self,
        follow_up_id: str,
        expected_version: int,
        changes: Mapping[str, Any],
        events: list[IntegrationEvent],
    ) -> bool:
        """Apply changes and store events if the follow-up is still at `expected_version`."""

    async def note_closure(self, referral_id: str, status: str, at: datetime) -> None:
        """Remember that a referral closed (insert-only: the first closure stays)."""

    async def closure_of(self, referral_id: str) -> Document | None: ...

    async def note_assignment(self, referral_id: str, liaison_id: str, sequence: int) -> None:
        """Remember a referral's latest liaison; an older reassignment never replaces a newer."""

    async def assignment_of(self, referral_id: str) -> Document | None: ...

    async def list_for_liaison(self, liaison_id: str, limit: int) -> list[Document]: ...


class AuditLog(Protocol):
    async def record_many(self, entries: list[AuditEntry]) -> None: ...
