"""What the notification use cases need from the outside world."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cmhl_notifications.domain.notices import Notice
from cmhl_servicekit.timers import TimerStore

Document = dict[str, Any]


class MailRefused(Exception):
    """The mail server refused the message for good (a 5xx): retrying cannot help."""


class MailUnavailable(Exception):
    """The mail server could not be reached or asked to try later (a 4xx): retry."""


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    message_id: str
    """Derived from the notification: a mail sent twice is one message to mail clients."""


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None:
        """Hand the mail to the server; raises MailRefused or MailUnavailable."""


class NotificationStore(Protocol):
    async def add(self, notices: list[Notice], mail_to: dict[str, str], now: datetime) -> int:
        """Store the notices that are new (idempotent by id), each with a mail timer when its
        liaison gave an address (`mail_to`: liaison -> address); returns how many were new."""

    @property
    def timers(self) -> TimerStore: ...

    async def get(self, notification_id: str) -> Document | None: ...

    async def claim_mail(
        self, notification_id: str, attempt: int, now: datetime, until: datetime
    ) -> bool:
        """Take the right to send this attempt, unless another sender holds it (until its
        lease ends): one sender per attempt, so two replicas never send the same mail."""

    async def settle_mail(self, notification_id: str, state: str, attempts: int) -> None: ...

    async def retry_mail(self, notification_id: str, attempts: int, at: datetime) -> None:
        """Record a failed attempt and set a timer for the next one."""

    async def list_for(self, liaison_id: str, unread_only: bool, limit: int) -> list[Document]:
        """The liaison's notifications, newest first."""

    async def mark_read(self, notification_id: str, liaison_id: str, at: datetime) -> bool:
        """False if there is no such notification of this liaison."""

    async def addresses(self, liaison_ids: list[str]) -> dict[str, str]: ...

    async def set_address(self, liaison_id: str, address: str | None, at: datetime) -> None: ...

    async def set_contact(self, recipient: str, address: str, version: int, at: datetime) -> bool:
        """A facility's contact as of its record `version`; an older version changes nothing
        (a redelivered event after a newer one). True if stored."""
