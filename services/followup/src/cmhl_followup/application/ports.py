"""What the follow-up use cases need from the outside world."""

from datetime import datetime
from typing import Any, Protocol

from cmhl_contracts import FollowUpDueV1, FollowUpScheduledV1


class FollowUpRepository(Protocol):
    async def schedule(self, follow_ups: list[tuple[dict[str, Any], FollowUpScheduledV1]]) -> int:
        """Insert follow-ups that do not exist yet, each with its scheduled event; returns how
        many were new."""

    async def due_timers(self, now: datetime, limit: int) -> list[dict[str, Any]]: ...

    async def get(self, follow_up_id: str) -> dict[str, Any] | None: ...

    async def claim_due(self, follow_up: dict[str, Any], event: FollowUpDueV1) -> bool: ...

    async def drop_timers(self, follow_up_ids: list[str]) -> None: ...

    async def is_due(self, follow_up_id: str) -> bool: ...

    async def list_for_liaison(self, liaison_id: str, limit: int) -> list[dict[str, Any]]: ...
