"""What a notification says, whom it is for, and the rules that keep it useful and PHI-free: the
text names no person (a link into the workspace, where the liaison signs in, says whose), news
older than a day is not announced (imported history would otherwise flood inboxes), and a mail
that fails is tried again later, a bounded number of times."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# Something that happened longer ago than this is history, not news: stored events replayed,
# imported referrals, follow-ups due years ago.
NEWS_WINDOW = timedelta(days=1)
# Retries of a mail the server did not take, spaced further apart each time: about 2 days.
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 240, 720, 1440))

_NOTIFICATION_NAMESPACE = uuid.UUID("3f6a9c2e-8b1d-5e4f-a7c3-9d2e1b0f8a6c")


class Kind(StrEnum):
    NEW_REFERRAL = "new_referral"
    FOLLOW_UP_DUE = "follow_up_due"
    BEDS_STALE = "beds_stale"
    """To a facility's registered contact: its bed numbers went stale."""


class MailState(StrEnum):
    PENDING = "pending"
    """Waiting to be sent (first try or a retry)."""
    SENT = "sent"
    NO_ADDRESS = "no_address"
    """The liaison gave no address: the notification is in the app only."""
    FAILED = "failed"
    """Refused for good, or every retry failed: the notification is in the app only."""


@dataclass(frozen=True)
class Notice:
    notification_id: uuid.UUID
    liaison_id: str
    kind: Kind
    referral_id: uuid.UUID | None
    """None for a facility's notice, which is about no referral."""
    person_id: str | None
    """For the audit of who saw which notification; a follow-up's events carry none."""
    happened_at: datetime
    link: str
    subject: str
    text: str


def notification_id(event_id: uuid.UUID, liaison_id: str) -> uuid.UUID:
    """One notification per event and liaison: a redelivered event adds none."""
    return uuid.uuid5(_NOTIFICATION_NAMESPACE, f"{event_id}\x1f{liaison_id}")


def is_news(happened_at: datetime, now: datetime) -> bool:
    return now - happened_at <= NEWS_WINDOW


# What each kind of notice says: its subject, and the line above its link.
WORDING: dict[Kind, tuple[str, str]] = {
    Kind.NEW_REFERRAL: (
        "CMHL: a new referral is in your caseload",
        "A new referral was assigned to you. Open it in the workspace (sign-in required):",
    ),
    Kind.FOLLOW_UP_DUE: (
        "CMHL: a follow-up is due",
        "A follow-up of one of your referrals is due. Open it in the workspace (sign-in required):",
    ),
}


def notice(
    kind: Kind,
    event_id: uuid.UUID,
    liaison_id: str,
    referral_id: uuid.UUID,
    person_id: str | None,
    happened_at: datetime,
    link_base_url: str,
) -> Notice:
    """The notice of an event for a liaison: a link to the referral, its words by kind."""
    subject, text = WORDING[kind]
    return Notice(
        notification_id(event_id, liaison_id),
        liaison_id,
        kind,
        referral_id,
        person_id,
        happened_at,
        f"{link_base_url.rstrip('/')}/referrals/{referral_id}",
        subject,
        text,
    )


def mail_body(notice_text: str, link: str, kind: Kind = Kind.NEW_REFERRAL) -> str:
    if kind is Kind.BEDS_STALE:
        return (
            f"{notice_text}\n\n"
            "You get it because this address is your facility's contact in the CMHL facility"
            " registry; the program admin or your facility's own client can change it there.\n"
        )
    return (
        f"{notice_text}\n\n{link}\n\n"
        "This message names no one on purpose: who the referral is about is shown only in the"
        " workspace. You get it because you asked for email notifications there.\n"
    )


def facility_recipient(facility_id: str) -> str:
    """The recipient key of a facility's contact, beside liaisons' staff ids in one store:
    a staff id never has this prefix."""
    return f"facility:{facility_id}"


def stale_beds_notice(
    event_id: uuid.UUID, facility_id: str, stale_after_hours: float, happened_at: datetime
) -> Notice:
    """A bed-update reminder for the facility's registered contact (its bed desk)."""
    return Notice(
        notification_id(event_id, facility_recipient(facility_id)),
        facility_recipient(facility_id),
        Kind.BEDS_STALE,
        None,
        None,
        happened_at,
        "",
        "CMHL: please update your facility's bed numbers",
        f"The bed numbers your facility ({facility_id}) last reported to the CMHL bed registry"
        f" are older than {stale_after_hours:g} hours, so liaisons searching for an inpatient"
        " bed see them as stale. Please report current numbers"
        f" (PUT /api/v1/facilities/{facility_id}/availability with your facility's client).",
    )


def next_try(attempts: int, now: datetime) -> datetime | None:
    """When to try a mail again after `attempts` failed tries, or None: give up."""
    if attempts > len(RETRY_DELAYS):
        return None
    return now + RETRY_DELAYS[attempts - 1]
