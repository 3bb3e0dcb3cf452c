"""Follow-ups that prove success, across the referral and follow-up services on the real stack:
an outcome moves the referral's lifecycle through events; after a connection to treatment the
retention checks (30 and 90 days) go on and are recorded; a liaison adds own follow-ups; a
supervisor lists the team's overdue ones."""

import base64
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from cmhl_followup.bootstrap import build as build_followup
from cmhl_followup.config import FollowUpSettings
from cmhl_referral.bootstrap import build as build_referral
from cmhl_referral.config import ReferralSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.testing import BearerHeaders, bearer, eventually, infra_settings, running_app

pytestmark = pytest.mark.integration

LIAISON = bearer("liaison-43", Role.LIAISON, cmhc_id="cmhc-12")
SUPERVISOR = bearer("sup-12", Role.SUPERVISOR, cmhc_id="cmhc-12")
OTHER_SUPERVISOR = bearer("sup-13", Role.SUPERVISOR, cmhc_id="cmhc-13")


def referral_body(referred_at: datetime) -> dict[str, Any]:
    return {
        "agency": {"agency_id": "cole-so", "source": "sheriff"},
        "county_fips": "29051",
        "primary_need": "behavioral_needs",
        "person_location": "community",
        "person": {
            "given_name": "Ari",
            "family_name": f"Lane{uuid.uuid4().hex[:6]}",
            "birth_date": "1991-01-01",
        },
        "referred_at": referred_at.isoformat(),
    }


async def follow_ups_of(client: AsyncClient, referral_id: str, who: BearerHeaders) -> list[Any]:
    answer = await client.get(
        "/api/v1/follow-ups", params={"referral_id": referral_id}, headers=who
    )
    assert answer.status_code == 200, answer.text
    data: list[Any] = answer.json()["data"]
    return data


@pytest.fixture
def referral_settings(kafka_bootstrap: str, mongo_uri: str) -> ReferralSettings:
    return ReferralSettings(
        **infra_settings(kafka_bootstrap, mongo_uri),  # each service its own database
        pseudonym_key="test-pseudonym-key",
        encryption_key=base64.b64encode(os.urandom(32)).decode(),
    )


@pytest.fixture
def followup_settings(kafka_bootstrap: str, mongo_uri: str) -> FollowUpSettings:
    return FollowUpSettings(**infra_settings(kafka_bootstrap, mongo_uri), due_scan_seconds=3600)


async def test_outcomes_move_the_referral_and_retention_checks_go_on_after_connection(
    referral_settings: ReferralSettings, followup_settings: FollowUpSettings
) -> None:
    now = datetime.now(UTC)
    clock = AdjustableClock(now)
    async with (
        running_app(build_followup(followup_settings, clock=clock), from_now=True) as followups,
        running_app(build_referral(referral_settings), from_now=True) as referrals,
    ):
        # Referred ten days ago: the 7-day check is due.
        created = await referrals.post(
            "/api/v1/referrals", json=referral_body(now - timedelta(days=10)), headers=LIAISON
        )
        assert created.status_code == 201, created.text
        referral_id = created.json()["referral_id"]
        url = f"/api/v1/referrals/{referral_id}"
        appointment = (now + timedelta(days=2)).isoformat()
        for change in (
            {"status": "accepted"},
            {"status": "appointment_scheduled", "appointment_at": appointment},
        ):
            answer = await referrals.post(f"{url}/status", json=change, headers=LIAISON)
            assert answer.status_code == 200, answer.text

        async def scheduled() -> bool:
            return len(await follow_ups_of(followups, referral_id, LIAISON)) == 4

        await eventually(scheduled, timeout=60)
        own_due = now + timedelta(days=20)
        own = await followups.post(
            "/api/v1/follow-ups",
            json={"referral_id": referral_id, "due_at": own_due.isoformat()},
            headers=LIAISON,
        )
        assert own.status_code == 201, own.text
        assert own.json()["kind"] == "ad_hoc"
        again = await followups.post(
            "/api/v1/follow-ups",
            json={"referral_id": referral_id, "due_at": own_due.isoformat()},
            headers=LIAISON,
        )
        assert (again.status_code, again.json()["follow_up_id"]) == (
            200,
            own.json()["follow_up_id"],
        )
        stranger = await followups.post(
            "/api/v1/follow-ups",
            json={"referral_id": referral_id, "due_at": own_due.isoformat()},
            headers=OTHER_SUPERVISOR,
        )
        assert stranger.status_code == 404
        past = await followups.post(
            "/api/v1/follow-ups",
            json={"referral_id": referral_id, "due_at": "2020-01-01T00:00:00Z"},
            headers=LIAISON,
        )
        assert past.status_code == 422

        # The 7-day check finds the person in treatment: the referral is connected.
        listed = await follow_ups_of(followups, referral_id, LIAISON)
        [day7, day30, day90] = [f for f in listed if f["kind"] == "scheduled_check"]
        [appointment_check] = [f for f in listed if f["kind"] == "appointment_check"]
        recorded = await followups.post(
            f"/api/v1/follow-ups/{day7['follow_up_id']}/outcome",
            json={"outcome": "engaged_in_treatment"},
            headers=LIAISON,
        )
        assert recorded.status_code == 201, recorded.text

        async def connected() -> bool:
            referral = (await referrals.get(url, headers=LIAISON)).json()
            return bool(referral["status"] == "connected_to_treatment")

        await eventually(connected, timeout=60)
        referral = (await referrals.get(url, headers=LIAISON)).json()
        assert [(h["kind"], h.get("to"), h.get("reason")) for h in referral["history"][-2:]] == [
            ("follow_up", None, None),
            ("status", "connected_to_treatment", "follow_up_engaged_in_treatment"),
        ]

        # The connection reached the follow-up service: it cancelled the appointment's check,
        # and kept the retention checks and the liaison's own follow-up.
        async def settled() -> bool:
            listed = await follow_ups_of(followups, referral_id, LIAISON)
            return any(
                f["follow_up_id"] == appointment_check["follow_up_id"] and f["state"] == "cancelled"
                for f in listed
            )

        await eventually(settled, timeout=60)
        states = {
            f["follow_up_id"]: f["state"]
            for f in await follow_ups_of(followups, referral_id, LIAISON)
        }
        assert states[day7["follow_up_id"]] == "completed"
        assert states[day30["follow_up_id"]] in {"scheduled", "due", "overdue"}
        assert states[day90["follow_up_id"]] == "scheduled"
        assert states[own.json()["follow_up_id"]] == "scheduled"

        # Thirty days on, the retention check is made; it is overdue for the supervisor first.
        clock.advance(timedelta(days=27))
        overdue = await followups.get(
            "/api/v1/follow-ups", params={"state": "overdue"}, headers=SUPERVISOR
        )
        assert day30["follow_up_id"] in [f["follow_up_id"] for f in overdue.json()["data"]]
        hidden = await followups.get(
            "/api/v1/follow-ups", params={"state": "overdue"}, headers=OTHER_SUPERVISOR
        )
        assert day30["follow_up_id"] not in [f["follow_up_id"] for f in hidden.json()["data"]]
        retention = await followups.post(
            f"/api/v1/follow-ups/{day30['follow_up_id']}/outcome",
            json={"outcome": "engaged_in_treatment"},
            headers=LIAISON,
        )
        assert retention.status_code == 201, retention.text

        async def noted() -> bool:
            referral = (await referrals.get(url, headers=LIAISON)).json()
            return any(h.get("follow_up_id") == day30["follow_up_id"] for h in referral["history"])

        await eventually(noted, timeout=60)
        referral = (await referrals.get(url, headers=LIAISON)).json()
        assert referral["status"] == "connected_to_treatment"
        assert [h["kind"] for h in referral["history"]].count("status") == 3


async def test_moving_away_closes_the_referral_and_cancels_what_was_pending(
    referral_settings: ReferralSettings, followup_settings: FollowUpSettings
) -> None:
    now = datetime.now(UTC)
    async with (
        running_app(build_followup(followup_settings), from_now=True) as followups,
        running_app(build_referral(referral_settings), from_now=True) as referrals,
    ):
        created = await referrals.post(
            "/api/v1/referrals", json=referral_body(now - timedelta(days=8)), headers=LIAISON
        )
        referral_id = created.json()["referral_id"]

        async def scheduled() -> bool:
            return len(await follow_ups_of(followups, referral_id, LIAISON)) == 3

        await eventually(scheduled, timeout=60)
        day7 = (await follow_ups_of(followups, referral_id, LIAISON))[0]
        moved = await followups.post(
            f"/api/v1/follow-ups/{day7['follow_up_id']}/outcome",
            json={"outcome": "moved_away"},
            headers=LIAISON,
        )
        assert moved.status_code == 201, moved.text

        async def closed_and_cancelled() -> bool:
            referral = (
                await referrals.get(f"/api/v1/referrals/{referral_id}", headers=LIAISON)
            ).json()
            states = [f["state"] for f in await follow_ups_of(followups, referral_id, LIAISON)]
            return referral["status"] == "lost_to_follow_up" and states == [
                "completed",
                "cancelled",
                "cancelled",
            ]

        await eventually(closed_and_cancelled, timeout=60)
        refused = await followups.post(
            "/api/v1/follow-ups",
            json={"referral_id": referral_id, "due_at": (now + timedelta(days=1)).isoformat()},
            headers=LIAISON,
        )
        assert refused.status_code == 409
        assert "lost_to_follow_up" in refused.json()["detail"]
