"""Notification use cases: turn the referral and follow-up events into notices for the liaison
concerned, list them in the app, and send them by mail, each once, retried when the server is
away, never holding up anything else (the mail goes from a timer, not from the consumer)."""

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from cmhl_contracts import (
    BedAvailabilityStaleV1,
    FacilityRecordUpdatedV1,
    FollowUpDueV1,
    ReferralCreatedV1,
    ReferralReassignedV1,
)
from cmhl_notifications.application.ports import (
    Document,
    Mail,
    Mailer,
    MailRefused,
    MailUnavailable,
    NotificationStore,
)
from cmhl_notifications.domain.notices import (
    Kind,
    MailState,
    Notice,
    facility_recipient,
    is_news,
    mail_body,
    next_try,
    notice,
    stale_beds_notice,
)
from cmhl_servicekit.audit import AuditEntry, AuditLog
from cmhl_servicekit.auth import Principal
from cmhl_servicekit.clock import Clock
from cmhl_servicekit.timers import Timer, fire_due, orphaned

log = logging.getLogger(__name__)
# How long one sender holds a mail: longer than any SMTP exchange, so nobody else sends it
# meanwhile; short enough that a crashed sender's mail goes out soon after.
SEND_LEASE = timedelta(minutes=2)


class NotFound(Exception):
    """No such notification of yours."""


class NotificationService:
    def __init__(
        self,
        store: NotificationStore,
        mailer: Mailer,
        audit: AuditLog,
        clock: Clock,
        link_base_url: str,
        mail_from: str,
    ) -> None:
        self._store = store
        self._mailer = mailer
        self._audit = audit
        self._clock = clock
        self._link_base_url = link_base_url
        self._mail_from = mail_from

    # ------------------------------------------------------------------ events

    async def on_referral_created(self, events: Sequence[ReferralCreatedV1]) -> int:
        return await self._add(
            self._notice(Kind.NEW_REFERRAL, e, e.liaison_id, e.person_id, e.referred_at)
            for e in events
        )

    async def on_referral_reassigned(self, events: Sequence[ReferralReassignedV1]) -> int:
        """The liaison who now has the referral is told as of a new one."""
        return await self._add(
            self._notice(Kind.NEW_REFERRAL, e, e.to_liaison_id, e.person_id, e.reassigned_at)
            for e in events
        )

    async def on_follow_up_due(self, events: Sequence[FollowUpDueV1]) -> int:
        # A follow-up's events carry no person id.
        return await self._add(
            self._notice(Kind.FOLLOW_UP_DUE, e, e.liaison_id, None, e.due_at) for e in events
        )

    async def on_facility_record_updated(self, events: Sequence[FacilityRecordUpdatedV1]) -> int:
        """Keeps each facility's registered contact, the newest record version winning."""
        stored = 0
        for e in sorted(events, key=lambda e: (e.facility_id, e.record_version)):
            stored += await self._store.set_contact(
                facility_recipient(e.facility_id), e.contact_email, e.record_version, e.changed_at
            )
        return stored

    async def on_bed_availability_stale(self, events: Sequence[BedAvailabilityStaleV1]) -> int:
        """A facility's stale bed numbers: a reminder to its registered contact."""
        return await self._add(
            stale_beds_notice(e.event_id, e.facility_id, e.stale_after_hours, e.flagged_at)
            for e in events
        )

    def _notice(
        self,
        kind: Kind,
        event: ReferralCreatedV1 | ReferralReassignedV1 | FollowUpDueV1,
        liaison_id: str,
        person_id: str | None,
        happened_at: datetime,
    ) -> Notice:
        return notice(
            kind,
            event.event_id,
            liaison_id,
            event.referral_id,
            person_id,
            happened_at,
            self._link_base_url,
        )

    async def _add(self, candidates: Iterable[Notice]) -> int:
        """Stores the notices that are news (history is not), each mailed if its liaison gave
        an address; returns how many were new."""
        now = self._clock.now()
        notices = [n for n in candidates if is_news(n.happened_at, now)]
        if not notices:
            return 0
        addresses = await self._store.addresses(sorted({n.liaison_id for n in notices}))
        return await self._store.add(notices, addresses, now)

    # ------------------------------------------------------------------ mail

    async def send_due_mail(self, limit: int = 100) -> int:
        """Sends the mails whose time has come (first tries and retries); returns how many
        timers it settled."""
        return await fire_due(self._store.timers, self._send, self._clock.now(), limit=limit)

    async def _send(self, timer: Timer, now: datetime) -> bool:
        notification = await self._store.get(timer.subject_id)
        if notification is None:  # written by a store call that failed, or still landing
            return orphaned(timer, now)
        attempt = timer.sequence
        mail = notification["mail"]
        if mail["state"] != MailState.PENDING or mail["attempts"] >= attempt:
            return True  # sent, given up, or this attempt was made already
        if not await self._store.claim_mail(notification["_id"], attempt, now, now + SEND_LEASE):
            return False  # another sender holds it: look again next pass
        # Read again under the claim: a sender that held it before may have settled it since.
        notification = await self._store.get(timer.subject_id)
        assert notification is not None
        if notification["mail"]["attempts"] >= attempt:
            return True
        address = (await self._store.addresses([notification["liaison_id"]])).get(
            notification["liaison_id"]
        )
        if address is None:  # the liaison withdrew the address meanwhile
            await self._store.settle_mail(notification["_id"], MailState.NO_ADDRESS, attempt)
            return True
        try:
            await self._mailer.send(self._mail(notification, address))
        except MailRefused as exc:
            log.warning("mail refused", extra={"reason": str(exc)[:200], "attempt": attempt})
            await self._store.settle_mail(notification["_id"], MailState.FAILED, attempt)
            return True
        except MailUnavailable as exc:
            retry_at = next_try(attempt, now)
            log.warning("mail not sent", extra={"reason": str(exc)[:200], "attempt": attempt})
            if retry_at is None:
                await self._store.settle_mail(notification["_id"], MailState.FAILED, attempt)
            else:
                await self._store.retry_mail(notification["_id"], attempt, retry_at)
            return True
        await self._store.settle_mail(notification["_id"], MailState.SENT, attempt)
        return True

    def _mail(self, notification: Document, address: str) -> Mail:
        domain = self._mail_from.rsplit("@", 1)[-1].rstrip(">") or "cmhl"
        return Mail(
            to=address,
            subject=notification["subject"],
            text=mail_body(notification["text"], notification["link"], Kind(notification["kind"])),
            message_id=f"<{notification['_id']}@{domain}>",
        )

    # ------------------------------------------------------------------ liaisons

    async def list_for(self, principal: Principal, unread_only: bool, limit: int) -> list[Document]:
        rows = await self._store.list_for(principal.subject, unread_only, limit)
        await self._audit.record([self._entry(principal, "list", row) for row in rows])
        return rows

    async def mark_read(self, notification_id: str, principal: Principal) -> None:
        if not await self._store.mark_read(notification_id, principal.subject, self._clock.now()):
            raise NotFound

    async def address_of(self, principal: Principal) -> str | None:
        return (await self._store.addresses([principal.subject])).get(principal.subject)

    async def set_address(self, principal: Principal, address: str | None) -> None:
        """Where to mail this liaison's notifications; None: in the app only."""
        await self._store.set_address(principal.subject, address, self._clock.now())

    def _entry(self, principal: Principal, action: str, row: Document) -> AuditEntry:
        return AuditEntry(
            actor=principal.subject,
            actor_roles=tuple(sorted(principal.roles)),
            action=action,
            record=f"notification/{row['_id']}",
            person_ids=(row["person_id"],) if row.get("person_id") else (),
            at=self._clock.now(),
            outcome="allowed",
            referral_id=row["referral_id"],
        )
