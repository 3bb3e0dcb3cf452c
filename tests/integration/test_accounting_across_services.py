"""The accounting of disclosures covers every service that touches a person's record: a
privacy officer asking the referral service sees the referral's reads, the follow-ups listed by
the follow-up service and the placement request opened for the person, from one audit log."""

import base64
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmhl_followup.bootstrap import build as build_followup
from cmhl_followup.config import FollowUpSettings
from cmhl_placement.bootstrap import build as build_placement
from cmhl_placement.config import PlacementSettings
from cmhl_referral.bootstrap import build as build_referral
from cmhl_referral.config import ReferralSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import bearer, eventually, infra_settings, running_app

pytestmark = pytest.mark.integration

LIAISON = bearer("liaison-41", Role.LIAISON, cmhc_id="cmhc-11")
PRIVACY = bearer("privacy-9", Role.PRIVACY_OFFICER)


async def test_the_accounting_lists_accesses_in_referral_followup_and_placement(
    kafka_bootstrap: str, mongo_uri: str
) -> None:
    def infra() -> dict[str, Any]:
        """Each service its own database, as deployed (the audit log is shared, as deployed)."""
        return infra_settings(kafka_bootstrap, mongo_uri)

    referral_settings = ReferralSettings(
        **infra(),
        pseudonym_key="test-pseudonym-key",
        encryption_key=base64.b64encode(os.urandom(32)).decode(),
    )
    followup_settings = FollowUpSettings(**infra(), due_scan_seconds=3600)
    placement_settings = PlacementSettings(
        **infra(), timer_scan_seconds=3600, referral_url="http://referral.test"
    )
    person = {
        "given_name": "Noa",
        "family_name": f"Wren{uuid.uuid4().hex[:6]}",
        "birth_date": "1988-08-08",
    }
    body: dict[str, Any] = {
        "agency": {"agency_id": "boone-so", "source": "sheriff"},
        "county_fips": "29019",
        "primary_need": "behavioral_needs",
        "person_location": "community",
        "person": person,
    }
    async with (
        running_app(build_followup(followup_settings), from_now=True) as followups,
        running_app(build_referral(referral_settings), from_now=True) as referrals,
        # The bed search asks the referral service whether the liaison may see the referral.
        running_app(build_placement(placement_settings, referral_client=referrals)) as placement,
    ):
        created = await referrals.post("/api/v1/referrals", json=body, headers=LIAISON)
        assert created.status_code == 201, created.text
        referral = created.json()

        async def listed() -> bool:
            answer = await followups.get("/api/v1/follow-ups", headers=LIAISON)
            return any(f["referral_id"] == referral["referral_id"] for f in answer.json()["data"])

        await eventually(listed, timeout=60)
        detained = datetime.now(UTC) - timedelta(hours=2)
        opened = await placement.post(
            "/api/v1/placement-requests",
            json={
                "referral_id": referral["referral_id"],
                "detention_started_at": detained.isoformat(),
                "age_group": "adult",
                "needs": [],
                "county_fips": "29019",
            },
            headers=LIAISON,
        )
        assert opened.status_code == 201, opened.text
        report = await referrals.post("/api/v1/privacy/accounting", json=person, headers=PRIVACY)
    assert report.status_code == 200, report.text
    rows = report.json()["disclosures"]
    assert {r["service"] for r in rows} == {"referral", "followup", "placement"}
    assert {(r["service"], r["action"]) for r in rows} >= {
        ("referral", "create"),
        ("followup", "list"),
        ("placement", "open"),
    }
    assert all(r["referral_id"] == referral["referral_id"] for r in rows)
    # Oldest first, as instants: the text of a whole second ("…:48Z") sorts after "…:48.018Z".
    instants = [datetime.fromisoformat(r["at"]) for r in rows]
    assert instants == sorted(instants)
