"""Liaisons' follow-up API under /api/v1."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from cmhl_servicekit.auth import Principal, Role, require_any

router = APIRouter(prefix="/api/v1", tags=["follow-ups"])

Liaison = Annotated[Principal, require_any(Role.LIAISON)]


class FollowUpPublic(BaseModel):
    follow_up_id: str
    referral_id: str
    kind: str
    due_at: datetime
    status: str


class FollowUpsPublic(BaseModel):
    data: list[FollowUpPublic]
    count: int


@router.get("/follow-ups")
async def list_follow_ups(
    request: Request,
    principal: Liaison,
    status: Annotated[Literal["scheduled", "due"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> FollowUpsPublic:
    """Your follow-ups, soonest first; `status=due` lists those waiting for you now."""
    repository = request.app.state.repository
    data = []
    for d in await repository.list_for_liaison(principal.subject, 500):
        current = d.get("status", "scheduled")
        if current == "scheduled" and await repository.is_due(d["_id"]):
            current = "due"
        if status is None or current == status:
            data.append(
                FollowUpPublic(
                    follow_up_id=d["_id"],
                    referral_id=d["referral_id"],
                    kind=d["kind"],
                    due_at=d["due_at"],
                    status=current,
                )
            )
    data = data[:limit]
    return FollowUpsPublic(data=data, count=len(data))
