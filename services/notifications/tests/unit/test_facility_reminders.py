"""Bed-update reminders: one per stale event and facility, addressed to the facility's contact
key, naming the facility and no one, with a footer that says why the desk gets it."""

import uuid
from datetime import UTC, datetime

from cmhl_notifications.domain.notices import (
    Kind,
    facility_recipient,
    mail_body,
    notification_id,
    stale_beds_notice,
)

NOW = datetime(2026, 11, 30, 2, tzinfo=UTC)


def test_a_stale_reminder_goes_to_the_facility_contact_once_per_event() -> None:
    event = uuid.uuid4()
    first = stale_beds_notice(event, "fac-boone-riverbend", 12.0, NOW)
    again = stale_beds_notice(event, "fac-boone-riverbend", 12.0, NOW)
    assert first.notification_id == again.notification_id
    assert first.notification_id == notification_id(event, "facility:fac-boone-riverbend")
    assert first.liaison_id == facility_recipient("fac-boone-riverbend")
    assert (first.kind, first.referral_id, first.person_id) == (Kind.BEDS_STALE, None, None)
    assert stale_beds_notice(uuid.uuid4(), "fac-boone-riverbend", 12, NOW) != first


def test_the_reminder_says_what_to_do_and_why_the_desk_gets_it() -> None:
    notice = stale_beds_notice(uuid.uuid4(), "fac-stl-gateway", 12.0, NOW)
    body = mail_body(notice.text, notice.link, notice.kind)
    assert "older than 12 hours" in body
    assert "/api/v1/facilities/fac-stl-gateway/availability" in body
    assert "contact in the CMHL facility registry" in body
    assert "workspace" not in body  # not a liaison's mail
