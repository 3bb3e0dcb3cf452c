"""Importing a program's history on the real stack, across the referral and follow-up services:
past referrals with their known status are stored once and marked as imported; a record that
contradicts itself is rejected with its reason while the rest of the batch goes on; a re-run
stores nothing twice; and the follow-up service schedules follow-ups only for an imported
referral still open inside the follow-ups' horizon, none for a closed or an old one."""

import asyncio
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
from cmhl_servicekit.testing import bearer, eventually, infra_settings, running_app

pytestmark = pytest.mark.integration

ADMIN = bearer("program-admin-1", Role.PROGRAM_ADMIN)
LIAISON = bearer("liaison-61", Role.LIAISON, cmhc_id="cmhc-21")


def record(record_id: str, referred_at: datetime, *history: tuple[str, datetime]) -> dict[str, Any]:
    return {
        "record_id": record_id,
        "agency": {"agency_id": "cole-so", "source": "sheriff"},
        "county_fips": "29051",
        "primary_need": "behavioral_needs",
        "person": {
            "given_name": "Ada",
            "family_name": f"Quill{uuid.uuid4().hex[:6]}",
            "birth_date": "1980-05-05",
        },
        "referred_at": referred_at.isoformat(),
        "history": [
            {"status": status, "at": at.isoformat()}
            | (
                {"appointment_at": (at + timedelta(days=3)).isoformat()}
                if status == "appointment_scheduled"
                else {}
            )
            for status, at in history
        ],
        "liaison_id": "liaison-61",
        "cmhc_id": "cmhc-21",
    }


async def follow_ups_of(client: AsyncClient, referral_id: str) -> list[Any]:
    answer = await client.get(
        "/api/v1/follow-ups", params={"referral_id": referral_id}, headers=LIAISON
    )
    assert answer.status_code == 200, answer.text
    data: list[Any] = answer.json()["data"]
    return data


async def test_a_history_import_stores_each_record_once_and_schedules_only_what_is_open(
    kafka_bootstrap: str, mongo_uri: str
) -> None:
    referral_settings = ReferralSettings(
        **infra_settings(kafka_bootstrap, mongo_uri),
        pseudonym_key="test-pseudonym-key",
        encryption_key=base64.b64encode(os.urandom(32)).decode(),
    )
    followup_settings = FollowUpSettings(
        **infra_settings(kafka_bootstrap, mongo_uri), due_scan_seconds=3600
    )
    now = datetime.now(UTC)
    day = timedelta(days=1)
    closed_at, old_at, recent_at = (
        datetime(2015, 3, 2, 15, tzinfo=UTC),
        datetime(2016, 5, 1, tzinfo=UTC),
        now - 10 * day,
    )
    system = f"dmh-{uuid.uuid4().hex[:8]}"
    batch = {
        "system": system,
        "records": [
            record(
                "closed-1",
                closed_at,
                ("accepted", closed_at + day),
                ("appointment_scheduled", closed_at + 2 * day),
                ("attended", closed_at + 5 * day),
                ("connected_to_treatment", closed_at + 9 * day),
            ),
            record("old-open-2", old_at, ("accepted", old_at + day)),
            record("recent-3", recent_at, ("accepted", recent_at + day)),
            record("before-4", closed_at, ("declined", closed_at - 3 * day)),
            record("unknown-5", closed_at, ("closed_ish", closed_at + day)),
            record("jump-6", closed_at, ("attended", closed_at + day)),
            {"record_id": "no-person-7", "referred_at": closed_at.isoformat()},
        ],
    }
    async with (
        running_app(build_followup(followup_settings), from_now=True) as followups,
        running_app(build_referral(referral_settings), from_now=True) as referrals,
    ):
        refused = await referrals.post("/api/v1/imports/referrals", json=batch, headers=LIAISON)
        assert refused.status_code == 403
        answer = await referrals.post("/api/v1/imports/referrals", json=batch, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert (result["imported"], result["already_imported"]) == (3, 0)
        reasons = {r["record_id"]: r["reason"] for r in result["rejected"]}
        assert [r["index"] for r in result["rejected"]] == [3, 4, 5, 6]
        assert "precedes the referral" in reasons["before-4"]
        assert "history.0.status" in reasons["unknown-5"]
        assert "cannot go from received to attended" in reasons["jump-6"]
        assert "agency" in reasons["no-person-7"]
        assert "person" in reasons["no-person-7"]
        assert "Quill" not in answer.text
        assert "closed_ish" not in answer.text
        again = (
            await referrals.post("/api/v1/imports/referrals", json=batch, headers=ADMIN)
        ).json()
        assert (again["imported"], again["already_imported"], len(again["rejected"])) == (0, 3, 4)

        listed = await referrals.get("/api/v1/referrals", params={"limit": 10}, headers=LIAISON)
        assert listed.status_code == 200, listed.text
        mine = {r["referral_id"] for r in listed.json()["data"]}
        assert len(mine) == 3
        stored = [
            (await referrals.get(f"/api/v1/referrals/{rid}", headers=LIAISON)).json()
            for rid in mine
        ]
        by_record = {s["imported_from"]["record_id"]: s for s in stored}
        assert {s["imported_from"]["system"] for s in stored} == {system}
        closed, old, recent = by_record["closed-1"], by_record["old-open-2"], by_record["recent-3"]
        assert closed["status"] == "connected_to_treatment"
        assert [h["to"] for h in closed["history"]] == [
            "accepted",
            "appointment_scheduled",
            "attended",
            "connected_to_treatment",
        ]
        assert (old["status"], recent["status"]) == ("accepted", "accepted")

        async def recent_scheduled() -> bool:
            return len(await follow_ups_of(followups, recent["referral_id"])) == 3

        await eventually(recent_scheduled, timeout=60)
        # The three referrals' events were published together; the closed and the old one
        # stay without follow-ups (watched for a while, not assumed).
        for _ in range(5):
            assert await follow_ups_of(followups, closed["referral_id"]) == []
            assert await follow_ups_of(followups, old["referral_id"]) == []
            await asyncio.sleep(1)
