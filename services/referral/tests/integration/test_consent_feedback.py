"""42 CFR Part 2 consents and the feedback a referring agency gets under them, on the real stack:
recorded, revoked and expired consents; another agency's reference; the accounting."""

import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from cmhl_contracts import ReferralFeedbackV1
from cmhl_referral.bootstrap import build
from cmhl_referral.config import ReferralSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.testing import KafkaProbe, agency_bearer, bearer, running_app

pytestmark = pytest.mark.integration

LIAISON = bearer("liaison-21", Role.LIAISON, cmhc_id="cmhc-17")
OTHER_LIAISON = bearer("liaison-22", Role.LIAISON, cmhc_id="cmhc-17")
PRIVACY = bearer("privacy-1", Role.PRIVACY_OFFICER)
STL_PD = agency_bearer("stl-pd")
OTHER_AGENCY = agency_bearer("greene-so")
# 11:30 pm in St. Louis on June 30 is already July 1 in UTC: the program's day is Central.
LATE_ON_JUNE_30 = datetime(2026, 7, 1, 4, 30, tzinfo=UTC)


def consent(**overrides: Any) -> dict[str, Any]:
    return {
        "recipient": "stl-pd",
        "purpose": "feedback to the referring agency",
        "scope": ["referral_status"],
        "signed_on": "2026-06-30",
        "expires_on": "2026-06-30",
    } | overrides


async def received(client: AsyncClient, body: dict[str, Any]) -> tuple[str, str]:
    reference = f"case-{uuid.uuid4().hex[:10]}"
    response = await client.post(
        "/api/v1/referrals", json=body | {"agency_reference": reference}, headers=LIAISON
    )
    assert response.status_code == 201, response.text
    return response.json()["referral_id"], reference


async def test_agency_sees_the_status_only_while_a_consent_covers_it(
    referral_settings: ReferralSettings, referral_body: Callable[..., dict[str, Any]]
) -> None:
    clock = AdjustableClock(LATE_ON_JUNE_30)
    async with running_app(build(referral_settings, clock=clock), from_now=True) as client:
        referral_id, reference = await received(client, referral_body())
        url = f"/api/v1/referrals/{referral_id}"
        feedback_url = f"/api/v1/agency/referrals/{reference}"

        before = await client.get(feedback_url, headers=STL_PD)
        assert before.status_code == 200, before.text
        assert before.json() | {"received_at": None} == {
            "agency_reference": reference,
            "received": True,
            "received_at": None,
            "status": None,
            "status_withheld": True,
            "consent_expires_on": None,
            "redisclosure_notice": None,
        }

        # Signed and ending "today": June 30 in Central time, though UTC is in July already.
        recorded = await client.post(f"{url}/consents", json=consent(), headers=LIAISON)
        assert recorded.status_code == 201, recorded.text
        consent_id = recorded.json()["consent_id"]
        retried = await client.post(f"{url}/consents", json=consent(), headers=LIAISON)
        assert retried.status_code == 200
        assert retried.json()["consent_id"] == consent_id
        accepted = await client.post(f"{url}/status", json={"status": "accepted"}, headers=LIAISON)
        assert accepted.status_code == 200

        told = (await client.get(feedback_url, headers=STL_PD)).json()
        assert told["status"] == "in_progress"
        assert told["status_withheld"] is False
        assert told["consent_expires_on"] == "2026-06-30"
        assert "42 CFR part 2" in told["redisclosure_notice"]

        # Another agency asking with this reference learns nothing, not even that it exists.
        foreign = await client.get(feedback_url, headers=OTHER_AGENCY)
        never_sent = await client.get("/api/v1/agency/referrals/case-never-sent", headers=STL_PD)
        assert foreign.status_code == never_sent.status_code == 404
        assert foreign.json() == never_sent.json()
        liaison_token = await client.get(feedback_url, headers=LIAISON)
        assert liaison_token.status_code == 403

        # Midnight in St. Louis: the consent has expired.
        clock.advance(timedelta(hours=1))
        expired = (await client.get(feedback_url, headers=STL_PD)).json()
        assert (expired["status"], expired["status_withheld"]) == (None, True)

        renewed = await client.post(
            f"{url}/consents",
            json=consent(signed_on="2026-07-01", expires_on="2027-06-30"),
            headers=LIAISON,
        )
        assert renewed.status_code == 201
        assert (await client.get(feedback_url, headers=STL_PD)).json()["status"] == "in_progress"
        revoked = await client.delete(
            f"{url}/consents/{renewed.json()['consent_id']}", headers=LIAISON
        )
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        again = await client.delete(
            f"{url}/consents/{renewed.json()['consent_id']}", headers=LIAISON
        )
        assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
        withheld = (await client.get(feedback_url, headers=STL_PD)).json()
        assert (withheld["status"], withheld["status_withheld"]) == (None, True)

        stored = (await client.get(url, headers=LIAISON)).json()
        assert [(c["consent_id"], c["revoked_at"] is None) for c in stored["consents"]] == [
            (consent_id, True),
            (renewed.json()["consent_id"], False),
        ]
        assert [(h["kind"], h["to"]) for h in stored["history"] if h["kind"] == "consent"] == [
            ("consent", "given"),
            ("consent", "given"),
            ("consent", "revoked"),
        ]

        accounting = await client.post(
            "/api/v1/privacy/accounting",
            json={"family_name": "Roe", "given_name": "Jane", "birth_date": "1990-01-02"},
            headers=PRIVACY,
        )
        # (The test's clock stands still between steps, so entries share their time: counted.)
        disclosures = Counter(
            (d["actor"], d["outcome"])
            for d in accounting.json()["disclosures"]
            if d["action"] == "disclose_status" and d["referral_id"] == referral_id
        )
        assert disclosures == {("agency:stl-pd", "withheld"): 3, ("agency:stl-pd", "disclosed"): 2}


async def test_a_consent_must_name_its_parts_and_make_sense(
    referral_settings: ReferralSettings, referral_body: Callable[..., dict[str, Any]]
) -> None:
    clock = AdjustableClock(LATE_ON_JUNE_30)
    async with running_app(build(referral_settings, clock=clock), from_now=True) as client:
        referral_id, _ = await received(client, referral_body())
        url = f"/api/v1/referrals/{referral_id}/consents"
        for missing in ("recipient", "purpose", "expires_on", "signed_on", "scope"):
            body = {k: v for k, v in consent().items() if k != missing}
            answer = await client.post(url, json=body, headers=LIAISON)
            assert answer.status_code == 422, missing
            assert answer.json()["detail"][0]["loc"] == ["body", missing]
        rules = {
            "a consent cannot expire before it was signed": consent(
                signed_on="2026-06-20", expires_on="2026-06-01"
            ),
            "a consent cannot be signed in the future": consent(
                signed_on="2026-07-01", expires_on="2026-12-31"
            ),
            "a consent must not have expired when it is recorded": consent(
                signed_on="2026-01-01", expires_on="2026-06-29"
            ),
        }
        for rule, body in rules.items():
            answer = await client.post(url, json=body, headers=LIAISON)
            assert (answer.status_code, answer.json()["detail"]) == (422, rule)
        empty_scope = await client.post(url, json=consent(scope=[]), headers=LIAISON)
        assert empty_scope.status_code == 422
        stranger = await client.post(url, json=consent(), headers=OTHER_LIAISON)
        assert stranger.status_code == 404
        unknown = await client.delete(f"{url}/{uuid.uuid4()}", headers=LIAISON)
        assert (unknown.status_code, unknown.json()["detail"]) == (404, "consent not found")
        stored = (await client.get(f"/api/v1/referrals/{referral_id}", headers=LIAISON)).json()
        assert stored["consents"] == []


async def test_feedback_reaches_the_agencys_own_topic_whenever_what_it_may_learn_changes(
    referral_settings: ReferralSettings,
    referral_body: Callable[..., dict[str, Any]],
    kafka_probe: KafkaProbe,
) -> None:
    settings = referral_settings.model_copy(update={"kafka_feedback_agencies": ["columbia-pd"]})
    columbia = referral_body(agency={"agency_id": "columbia-pd", "source": "municipal_police"})
    async with running_app(build(settings), from_now=True) as client:
        referral_id, reference = await received(client, columbia)
        url = f"/api/v1/referrals/{referral_id}"
        today = datetime.now(UTC).date()
        terms = consent(
            recipient="columbia-pd",
            signed_on=(today - timedelta(days=1)).isoformat(),
            expires_on=(today + timedelta(days=90)).isoformat(),
        )
        steps = [
            ("post", f"{url}/status", {"status": "accepted"}),  # withheld still: no event
            ("post", f"{url}/consents", terms),
            ("post", f"{url}/contacts", {"place": "phone", "reached": True}),  # no change
            ("post", f"{url}/status", {"status": "connected_to_treatment"}),
        ]
        for method, path, body in steps:
            answer = await client.request(method, path, json=body, headers=LIAISON)
            assert answer.status_code in (200, 201), answer.text
            if path.endswith("/consents"):
                consent_id = answer.json()["consent_id"]
        revoked = await client.delete(f"{url}/consents/{consent_id}", headers=LIAISON)
        assert revoked.status_code == 200

        records = await kafka_probe.collect(
            [ReferralFeedbackV1.agency_topic("columbia-pd")],
            lambda r: json.loads(r.value)["referral_id"] == referral_id,
            expect=4,
            settle=2.0,
        )
        told = [ReferralFeedbackV1.model_validate_json(r.value) for r in records]
        assert [(e.status, e.status_withheld) for e in told] == [
            (None, True),
            ("in_progress", False),
            ("connected_to_treatment", False),
            (None, True),
        ]
        assert {e.agency_reference for e in told} == {reference}
        assert [e.redisclosure_notice is not None for e in told] == [False, True, True, False]
        assert all(r.key == referral_id.encode() for r in records)
        # Nothing in it names the person: the agency's own reference is its only handle.
        assert all(b"Roe" not in r.value and b"Jane" not in r.value for r in records)

        accounting = await client.post(
            "/api/v1/privacy/accounting",
            json={"family_name": "Roe", "given_name": "Jane", "birth_date": "1990-01-02"},
            headers=PRIVACY,
        )
        over_kafka = [
            d["outcome"]
            for d in accounting.json()["disclosures"]
            if d["referral_id"] == referral_id and d["source_address"] == "kafka"
        ]
        assert over_kafka == ["withheld", "disclosed", "disclosed", "withheld"]


async def test_a_court_gets_attendance_and_compliance_of_its_consenting_participants_only(
    referral_settings: ReferralSettings, referral_body: Callable[..., dict[str, Any]]
) -> None:
    court = f"circuit-{uuid.uuid4().hex[:6]}"
    court_token = agency_bearer(court)
    from_court = referral_body(
        agency={"agency_id": court, "source": "court", "court_type": "treatment_drug"}
    )
    # The program's day and month (its zone's), which the report's month is checked against:
    # for some hours each night the UTC date is already the next day (or month).
    today = datetime.now(referral_settings.zone).date()
    month = today.strftime("%Y-%m")
    for_court = consent(
        recipient=court,
        purpose="progress reports to the treatment court",
        scope=["attendance_compliance"],
        signed_on=(today - timedelta(days=1)).isoformat(),
        expires_on=(today + timedelta(days=180)).isoformat(),
    )
    async with running_app(build(referral_settings), from_now=True) as client:
        participant, participant_ref = await received(client, from_court)
        status_only, _ = await received(client, from_court)
        elsewhere, _ = await received(client, referral_body())  # another agency's referral
        url = f"/api/v1/referrals/{participant}"
        given = await client.post(f"{url}/consents", json=for_court, headers=LIAISON)
        assert given.status_code == 201, given.text
        await client.post(
            f"/api/v1/referrals/{status_only}/consents",
            json=for_court | {"scope": ["referral_status"]},
            headers=LIAISON,
        )
        await client.post(
            f"/api/v1/referrals/{elsewhere}/consents", json=for_court, headers=LIAISON
        )
        appointment = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        for change in (
            {"status": "accepted"},
            {"status": "appointment_scheduled", "appointment_at": appointment},
            {"status": "attended"},
        ):
            answer = await client.post(f"{url}/status", json=change, headers=LIAISON)
            assert answer.status_code == 200, answer.text

        report = await client.get(
            "/api/v1/agency/progress-report", params={"month": month}, headers=court_token
        )
        assert report.status_code == 200, report.text
        body = report.json()
        assert body["participants"] == [
            {
                "agency_reference": participant_ref,
                "appointments_kept": 1,
                "appointments_missed": 0,
                "engagement": "engaged",
                "consent_expires_on": for_court["expires_on"],
            }
        ]
        assert "42 CFR part 2" in body["redisclosure_notice"]
        # The report tells nothing else: no name, birth date, narrative, status or reason.
        assert set(body["participants"][0]) == {
            "agency_reference",
            "appointments_kept",
            "appointments_missed",
            "engagement",
            "consent_expires_on",
        }

        other_court = await client.get(
            "/api/v1/agency/progress-report", params={"month": month}, headers=OTHER_AGENCY
        )
        assert other_court.json()["participants"] == []
        for bad in ("2026-13", "26-01", "2999-01", "0000-01", "9999-12", "2100-01"):
            refused = await client.get(
                "/api/v1/agency/progress-report", params={"month": bad}, headers=court_token
            )
            assert refused.status_code == 422, bad
        assert (
            await client.get(
                "/api/v1/agency/progress-report", params={"month": month}, headers=LIAISON
            )
        ).status_code == 403

        await client.delete(f"{url}/consents/{given.json()['consent_id']}", headers=LIAISON)
        after = await client.get(
            "/api/v1/agency/progress-report", params={"month": month}, headers=court_token
        )
        assert after.json()["participants"] == []
