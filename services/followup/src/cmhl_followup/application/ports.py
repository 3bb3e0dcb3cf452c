"""What the follow-up use cases need from the outside world."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cmhl_contracts import FollowUpScheduledV1, IntegrationEvent
from cmhl_followup.domain.policy import State
from cmhl_servicekit.timers import TimerStore

Document = dict[str, Any]


@dataclass(frozen=True)
class FollowUpQuery:
    """Which follow-ups to list: whose (a liaison's, or a CMHC's for its supervisors), optionally
    one referral's, a stored status and bounds on the due time and the end of the grace period,
    which together give the state the clock shows. No status means every status (a referral's
    whole record)."""

    liaison_id: str | None
    status: str | None
    limit: int
    due_by: datetime | None = None
    due_after: datetime | None = None
    overdue_before: datetime | None = None
    overdue_from: datetime | None = None
    cmhc_id: str | None = None
    referral_id: str | None = None

    @classmethod
    def for_state(
        cls, liaison_id: str | None, state: State | None, now: datetime, limit: int
    ) -> "FollowUpQuery":
        pending = State.SCHEDULED.value
        match state:
            case None:
                return cls(liaison_id, pending, limit)
            case State.SCHEDULED:
                return cls(liaison_id, pending, limit, due_after=now)
            case State.DUE:
                return cls(liaison_id, pending, limit, due_by=now, overdue_from=now)
            case State.OVERDUE:
                # Implied (a follow-up is overdue only after it was due), and said so that
                # the (…, status, due_at) indexes bound the scan by it.
                return cls(liaison_id, pending, limit, due_by=now, overdue_before=now)
        return cls(liaison_id, state.value, limit)


class FollowUpRepository(Protocol):
    async def schedule(
        self, follow_ups: list[tuple[Document, FollowUpScheduledV1]], now: datetime
    ) -> int:
        """Insert follow-ups that do not exist yet, each with its scheduled event and its due
        and overdue timers; returns how many were new."""

    @property
    def timers(self) -> TimerStore:
        """The follow-ups' due and overdue timers (kind = stage, subject = follow-up id)."""

    async def get(self, follow_up_id: str) -> Document | None: ...

    async def claim(self, stage: str, follow_up: Document, event: IntegrationEvent) -> bool:
        """Store the one announcement of `stage` (due, overdue) for a follow-up with its event;
        False if it was stored before (another replica, an earlier pass)."""

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

    async def pending_of(self, referral_id: str) -> list[Document]:
        """The referral's follow-ups still scheduled (ids and kinds)."""

    async def note_assignment(self, referral_id: str, liaison_id: str, sequence: int) -> None:
        """Remember a referral's latest liaison; an older reassignment never replaces a newer."""

    async def assignment_of(self, referral_id: str) -> Document | None: ...

    async def list_follow_ups(self, query: FollowUpQuery) -> list[Document]: ...

    async def liaisons_of(self, query: FollowUpQuery) -> list[str]: ...
