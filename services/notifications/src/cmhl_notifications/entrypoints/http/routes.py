"""The liaisons' notifications under /api/v1: their list, marking one read, and the address
their notifications are mailed to."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from cmhl_notifications.application.service import NotFound, NotificationService
from cmhl_notifications.domain.notices import Kind, MailState
from cmhl_servicekit.auth import Principal, Role, require_any

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])

Staff = Annotated[Principal, require_any(Role.LIAISON, Role.SUPERVISOR)]
# An address as mail servers take it: one @, no spaces or angle brackets (no header injection).
ADDRESS = r"^[^\s@<>,;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$"


def _service(request: Request) -> NotificationService:
    service: NotificationService = request.app.state.notifications
    return service


class NotificationPublic(BaseModel):
    notification_id: str
    kind: Kind
    referral_id: uuid.UUID
    happened_at: datetime
    link: str
    text: str
    read_at: datetime | None
    mail: MailState = Field(description="pending, sent, no_address (app only) or failed")


class NotificationsPublic(BaseModel):
    data: list[NotificationPublic]
    count: int


class MailAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str | None = Field(
        pattern=ADDRESS,
        max_length=254,
        description="Where to mail your notifications; null: in the app only",
    )


@router.get("")
async def list_notifications(
    request: Request,
    principal: Staff,
    unread: Annotated[bool, Query(description="only those not marked read")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> NotificationsPublic:
    """Your notifications, newest first: new referrals in your caseload, follow-ups due."""
    rows = await _service(request).list_for(principal, unread, limit)
    data = [
        NotificationPublic(
            notification_id=row["_id"],
            kind=row["kind"],
            referral_id=row["referral_id"],
            happened_at=row["happened_at"],
            link=row["link"],
            text=row["text"],
            read_at=row.get("read_at"),
            mail=row["mail"]["state"],
        )
        for row in rows
    ]
    return NotificationsPublic(data=data, count=len(data))


@router.post(
    "/{notification_id}/read",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "no such notification of yours"}},
)
async def mark_read(
    notification_id: Annotated[str, Field(pattern=r"^[0-9a-f-]{36}$")],
    request: Request,
    principal: Staff,
) -> None:
    try:
        await _service(request).mark_read(notification_id, principal)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "notification not found") from exc


@router.get("/address")
async def get_address(request: Request, principal: Staff) -> MailAddress:
    return MailAddress(address=await _service(request).address_of(principal))


@router.put("/address")
async def set_address(body: MailAddress, request: Request, principal: Staff) -> MailAddress:
    """Mail your notifications to this address (null: stop mailing them). Mails carry a link,
    never a name."""
    await _service(request).set_address(principal, body.address)
    return body
