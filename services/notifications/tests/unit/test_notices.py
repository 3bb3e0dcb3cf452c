"""Notice rules: what is news, one notice per event and liaison, PHI-free text, retry spacing."""

import uuid
from datetime import UTC, datetime, timedelta

from cmhl_notifications.domain.notices import (
    RETRY_DELAYS,
    Kind,
    is_news,
    mail_body,
    next_try,
    notice,
    notification_id,
)

NOW = datetime(2026, 11, 30, 2, tzinfo=UTC)


def test_only_what_happened_within_a_day_is_news() -> None:
    assert is_news(NOW - timedelta(hours=23), NOW)
    assert not is_news(NOW - timedelta(days=1, seconds=1), NOW)


def test_one_notice_per_event_and_liaison() -> None:
    event = uuid.uuid4()
    assert notification_id(event, "liaison-01") == notification_id(event, "liaison-01")
    assert notification_id(event, "liaison-01") != notification_id(event, "liaison-02")
    assert notification_id(event, "liaison-01") != notification_id(uuid.uuid4(), "liaison-01")


def test_notices_link_into_the_workspace_and_name_no_one() -> None:
    referral = uuid.uuid4()
    created = notice(
        Kind.NEW_REFERRAL, uuid.uuid4(), "l-1", referral, "p" * 32, NOW, "https://w.test/"
    )
    due = notice(Kind.FOLLOW_UP_DUE, uuid.uuid4(), "l-1", referral, None, NOW, "https://w.test")
    assert (created.kind, due.kind) == (Kind.NEW_REFERRAL, Kind.FOLLOW_UP_DUE)
    assert created.link == due.link == f"https://w.test/referrals/{referral}"
    body = mail_body(created.text, created.link)
    assert created.link in body
    assert "p" * 32 not in body + created.subject


def test_retries_spread_out_then_stop() -> None:
    tries = [next_try(attempt, NOW) for attempt in range(1, len(RETRY_DELAYS) + 2)]
    waits = [t - NOW for t in tries if t is not None]
    assert waits == sorted(waits)
    assert waits[0] == timedelta(minutes=1)
    assert tries[-1] is None
    assert sum(waits, timedelta()) > timedelta(days=1)
