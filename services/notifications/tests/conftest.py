"""Fixtures of the notifications service's tests: settings on the real stack, events as the
referral and follow-up services publish them, and an SMTP server that answers as told."""

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from cmhl_contracts import FollowUpDueV1, ReferralCreatedV1
from cmhl_notifications.config import NotificationSettings
from cmhl_servicekit.testing import free_port, infra_settings


class ScriptedSmtp:
    """Answers each DATA with the next scripted reply (then 250), and keeps what it took."""

    def __init__(self) -> None:
        self.replies: list[str] = []
        self.kept: list[bytes] = []
        self.tries = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.tries += 1
        if self.replies:
            return self.replies.pop(0)
        self.kept.append(envelope.original_content or b"")
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[ScriptedSmtp, int]]:
    handler = ScriptedSmtp()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def settings_for(kafka_bootstrap: str, mongo_uri: str) -> Any:
    def make(smtp_port: int, **overrides: Any) -> NotificationSettings:
        return NotificationSettings(
            **infra_settings(kafka_bootstrap, mongo_uri),
            smtp_port=smtp_port,
            mail_scan_seconds=0.2,
            link_base_url="https://workspace.test",
            **overrides,
        )

    return make


def referral_created(liaison_id: str, referred_at: datetime) -> ReferralCreatedV1:
    referral_id = uuid.uuid4()
    return ReferralCreatedV1.create(
        about=(str(referral_id),),
        producer="test",
        correlation_id=f"corr-{referral_id}",
        referral_id=referral_id,
        person_id="c" * 32,
        agency_id="kc-pd",
        source="municipal_police",
        county_fips="29095",
        primary_need="behavioral_needs",
        person_location="community",
        liaison_id=liaison_id,
        cmhc_id="cmhc-09",
        referred_at=referred_at,
        repeat_involvement=False,
    )


def follow_up_due(liaison_id: str, due_at: datetime) -> FollowUpDueV1:
    follow_up_id = uuid.uuid4()
    return FollowUpDueV1.create(
        about=(str(follow_up_id),),
        producer="test",
        correlation_id=f"corr-{follow_up_id}",
        follow_up_id=follow_up_id,
        referral_id=uuid.uuid4(),
        liaison_id=liaison_id,
        due_at=due_at,
        referred_at=due_at,
    )
