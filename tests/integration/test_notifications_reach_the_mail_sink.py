"""Liaisons are told of new referrals and of follow-ups coming due, in the app and by email: the
referral, follow-up and notifications services on the real stack, mail at the local stack's SMTP
sink. The mail carries a link and no one's name."""

import base64
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmhl_followup.bootstrap import build as build_followup
from cmhl_followup.config import FollowUpSettings
from cmhl_notifications.bootstrap import build as build_notifications
from cmhl_notifications.config import NotificationSettings
from cmhl_referral.bootstrap import build as build_referral
from cmhl_referral.config import ReferralSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import MailSink, bearer, eventually, infra_settings, running_app

pytestmark = pytest.mark.integration


def body(family: str, referred_at: datetime) -> dict[str, Any]:
    return {
        "agency": {"agency_id": "boone-so", "source": "sheriff"},
        "county_fips": "29019",
        "primary_need": "behavioral_needs",
        "person_location": "community",
        "person": {"given_name": "Quinn", "family_name": family, "birth_date": "1985-05-05"},
        "referred_at": referred_at.isoformat(),
    }


async def test_new_referrals_and_follow_ups_due_reach_the_liaison_by_mail_and_in_the_app(
    kafka_bootstrap: str, mongo_uri: str, mail_sink: MailSink
) -> None:
    liaison_id = f"liaison-{uuid.uuid4().hex[:6]}"
    liaison = bearer(liaison_id, Role.LIAISON, cmhc_id="cmhc-04")
    address = f"{liaison_id}@cmhc.test"
    family = f"Marsh{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    async with (
        running_app(
            build_notifications(
                NotificationSettings(
                    # Each service its own database, as deployed.
                    **infra_settings(kafka_bootstrap, mongo_uri),
                    smtp_host=mail_sink.host,
                    smtp_port=mail_sink.port,
                    mail_scan_seconds=0.5,
                )
            ),
            from_now=True,
        ) as notifications,
        running_app(
            build_followup(
                FollowUpSettings(**infra_settings(kafka_bootstrap, mongo_uri), due_scan_seconds=0.5)
            ),
            from_now=True,
        ),
        running_app(
            build_referral(
                ReferralSettings(
                    **infra_settings(kafka_bootstrap, mongo_uri),
                    pseudonym_key="test-pseudonym-key",
                    encryption_key=base64.b64encode(os.urandom(32)).decode(),
                )
            ),
            from_now=True,
        ) as referrals,
    ):
        put = await notifications.put(
            "/api/v1/notifications/address", json={"address": address}, headers=liaison
        )
        assert put.status_code == 200, put.text
        fresh = await referrals.post(
            "/api/v1/referrals", json=body(family, now - timedelta(minutes=5)), headers=liaison
        )
        # Its 7-day check came due an hour ago.
        week_old = await referrals.post(
            "/api/v1/referrals",
            json=body(family, now - timedelta(days=7, hours=1)),
            headers=liaison,
        )
        assert fresh.status_code == week_old.status_code == 201

        async def both_mailed() -> bool:
            return len(mail_sink.messages_to(address)) == 2

        await eventually(both_mailed, timeout=90, interval=0.5)
        mails = mail_sink.messages_to(address)
        subjects = sorted(m["Subject"] for m in mails)
        assert subjects == [
            "CMHL: a follow-up is due",
            "CMHL: a new referral is in your caseload",
        ]
        texts = " ".join(m.get_content() for m in mails)
        assert f"/referrals/{fresh.json()['referral_id']}" in texts
        assert f"/referrals/{week_old.json()['referral_id']}" in texts
        assert family not in texts
        assert "Quinn" not in texts

        sent = {
            ("new_referral", fresh.json()["referral_id"], "sent"),
            ("follow_up_due", week_old.json()["referral_id"], "sent"),
        }

        # A mail is handed to the server before its notification is marked sent: polled.
        async def marked_sent() -> bool:
            answer = await notifications.get("/api/v1/notifications", headers=liaison)
            in_app = {(n["kind"], n["referral_id"], n["mail"]) for n in answer.json()["data"]}
            return in_app == sent

        await eventually(marked_sent, timeout=30, interval=0.5)
