"""Consent rules: when a consent is in force, what it covers, and the coarse feedback status."""

import uuid
from datetime import UTC, date, datetime

import pytest

from cmhl_contracts.vocabulary import FeedbackStatus, ReferralStatus
from cmhl_referral.adapters.mongo import LEGACY_CONSENT_PURPOSE, read_consents
from cmhl_referral.domain.consent import (
    Consent,
    ConsentScope,
    ConsentTerms,
    InvalidConsent,
    consent_covering,
    feedback_status,
)
from cmhl_referral.domain.lifecycle import ALLOWED_TRANSITIONS, CLOSED
from cmhl_referral.domain.progress import Engagement, Progress, progress_in

REFERRAL = uuid.UUID("00000000-0000-4000-8000-000000000001")
AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def terms(**overrides: object) -> ConsentTerms:
    fields: dict[str, object] = {
        "recipient": "stl-pd",
        "purpose": "feedback",
        "scope": frozenset({ConsentScope.REFERRAL_STATUS}),
        "signed_on": date(2026, 3, 1),
        "expires_on": date(2026, 6, 30),
    } | overrides
    return ConsentTerms(**fields)  # type: ignore[arg-type]


def test_in_force_from_the_signing_day_through_the_expiry_day_until_revoked() -> None:
    consent = Consent.record(REFERRAL, terms(), AT)
    assert not consent.in_force(date(2026, 2, 28))
    assert consent.in_force(date(2026, 3, 1))
    assert consent.in_force(date(2026, 6, 30))
    assert not consent.in_force(date(2026, 7, 1))
    assert not consent.revoked(AT).in_force(date(2026, 3, 2))


def test_covers_only_its_recipient_and_scope() -> None:
    consent = Consent.record(REFERRAL, terms(), AT)
    day = date(2026, 4, 1)
    assert consent.covers("stl-pd", ConsentScope.REFERRAL_STATUS, day)
    assert not consent.covers("greene-so", ConsentScope.REFERRAL_STATUS, day)
    assert not consent.covers("stl-pd", ConsentScope.ATTENDANCE_COMPLIANCE, day)


def test_the_longest_lasting_covering_consent_is_the_one_in_force() -> None:
    short = Consent.record(REFERRAL, terms(expires_on=date(2026, 4, 30)), AT)
    long = Consent.record(REFERRAL, terms(expires_on=date(2026, 12, 31)), AT)
    court = Consent.record(REFERRAL, terms(recipient="circuit-22"), AT)
    day = date(2026, 4, 1)
    assert consent_covering([short, long, court], "stl-pd", ConsentScope.REFERRAL_STATUS, day) == (
        long
    )
    assert consent_covering([long.revoked(AT)], "stl-pd", ConsentScope.REFERRAL_STATUS, day) is None


def test_the_same_terms_give_the_same_consent_id_and_other_terms_another() -> None:
    first = Consent.record(REFERRAL, terms(), AT)
    assert Consent.record(REFERRAL, terms(), datetime(2026, 3, 2, tzinfo=UTC)).consent_id == (
        first.consent_id
    )
    assert Consent.record(REFERRAL, terms(purpose="court"), AT).consent_id != first.consent_id


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"scope": frozenset()}, "scope"),
        ({"expires_on": date(2026, 2, 1)}, "expire before it was signed"),
        ({"signed_on": date(2026, 3, 2), "expires_on": date(2026, 4, 1)}, "future"),
        ({"signed_on": date(2026, 1, 1), "expires_on": date(2026, 2, 28)}, "expired"),
    ],
)
def test_terms_that_break_a_rule_are_refused_naming_it(
    overrides: dict[str, object], rule: str
) -> None:
    with pytest.raises(InvalidConsent, match=rule):
        terms(**overrides).check(date(2026, 3, 1))


def test_every_status_has_a_coarse_feedback_status() -> None:
    seen = {status: feedback_status(status) for status in ALLOWED_TRANSITIONS}
    assert seen[ReferralStatus.RECEIVED] is FeedbackStatus.RECEIVED
    assert seen[ReferralStatus.CONNECTED_TO_TREATMENT] is FeedbackStatus.CONNECTED_TO_TREATMENT
    for status in CLOSED - {ReferralStatus.CONNECTED_TO_TREATMENT}:
        assert seen[status] is FeedbackStatus.CLOSED, status
    for status in set(ALLOWED_TRANSITIONS) - CLOSED - {ReferralStatus.RECEIVED}:
        assert seen[status] is FeedbackStatus.IN_PROGRESS, status


def test_a_consent_stored_before_consents_had_purpose_and_scope_still_reads() -> None:
    legacy = {
        "_id": str(REFERRAL),
        "received_at": AT,
        "part2_consent": {"recipient": "stl-pd", "expires_on": "2026-12-31"},
    }
    [consent] = read_consents(legacy)
    assert consent.terms == terms(
        purpose=LEGACY_CONSENT_PURPOSE, signed_on=date(2026, 3, 1), expires_on=date(2026, 12, 31)
    )
    assert read_consents(legacy)[0].consent_id == consent.consent_id
    assert read_consents({"_id": str(REFERRAL), "received_at": AT, "part2_consent": None}) == []


def test_progress_counts_the_periods_appointments_and_takes_its_latest_fact() -> None:
    start, end = datetime(2026, 10, 1, 5, tzinfo=UTC), datetime(2026, 11, 1, 5, tzinfo=UTC)

    def at(day: int, month: int = 10) -> str:
        return datetime(2026, month, day, 12, tzinfo=UTC).isoformat()

    history = [
        {"kind": "status", "from": "received", "to": "accepted", "at": at(20, 9)},
        {"kind": "status", "from": "accepted", "to": "appointment_scheduled", "at": at(2)},
        {"kind": "status", "from": "appointment_scheduled", "to": "no_show", "at": at(5)},
        {"kind": "contact", "place": "phone", "reached": "yes", "at": at(6)},
        {"kind": "status", "from": "no_show", "to": "appointment_scheduled", "at": at(7)},
        {"kind": "status", "from": "appointment_scheduled", "to": "attended", "at": at(9)},
        {"kind": "follow_up", "follow_up_id": "f", "outcome": "reached", "at": at(12)},
        {"kind": "follow_up", "follow_up_id": "g", "outcome": "declined_services", "at": at(3, 11)},
    ]
    assert progress_in(history, start, end) == Progress(1, 1, Engagement.ENGAGED)
    november = progress_in(history, end, datetime(2026, 12, 1, 6, tzinfo=UTC))
    assert november == Progress(0, 0, Engagement.NOT_ENGAGED)
    assert progress_in(history[:2], start, end) == Progress(0, 0, Engagement.UNKNOWN)
