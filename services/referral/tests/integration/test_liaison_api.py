"""The liaisons' API on the real stack: lifecycle, contacts, reassignment, caseload, privacy."""

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from httpx import AsyncClient

from cmhl_contracts import (
    ReferralContactAttemptedV1,
    ReferralReassignedV1,
    ReferralStatusChangedV1,
)
from cmhl_referral.bootstrap import build
from cmhl_referral.config import ReferralSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import BearerHeaders, KafkaProbe, bearer, running_app

pytestmark = pytest.mark.integration

LIAISON = bearer("liaison-21", Role.LIAISON, cmhc_id="cmhc-17")
OTHER_LIAISON = bearer("liaison-22", Role.LIAISON, cmhc_id="cmhc-17")
SUPERVISOR = bearer("sup-17", Role.SUPERVISOR, cmhc_id="cmhc-17")
PRIVACY = bearer("privacy-1", Role.PRIVACY_OFFICER)
OTHER_CMHC_LIAISON = bearer("liaison-30", Role.LIAISON, cmhc_id="cmhc-24")
OTHER_SUPERVISOR = bearer("sup-24", Role.SUPERVISOR, cmhc_id="cmhc-24")
METRICS = bearer("dmh-1", Role.METRICS_CONSUMER)

APPOINTMENT = "2030-01-01T10:00:00Z"


async def create(client: AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/api/v1/referrals", json=body, headers=LIAISON)
    assert response.status_code == 201, response.text
    referral_id: str = response.json()["referral_id"]
    return referral_id


async def test_lifecycle_transitions_are_checked_and_published_in_order(
    referral_settings: ReferralSettings,
    referral_body: Callable[..., dict[str, Any]],
    kafka_probe: KafkaProbe,
) -> None:
    async with running_app(build(referral_settings), from_now=True) as client:
        referral_id = await create(client, referral_body())
        url = f"/api/v1/referrals/{referral_id}"

        illegal = await client.post(f"{url}/status", json={"status": "attended"}, headers=LIAISON)
        assert illegal.status_code == 409
        assert illegal.json()["allowed"] == ["accepted", "declined", "referred_elsewhere"]
        no_reason = await client.post(f"{url}/status", json={"status": "declined"}, headers=LIAISON)
        assert no_reason.status_code == 422
        stray_time = await client.post(
            f"{url}/status",
            json={"status": "accepted", "appointment_at": "2030-01-01T10:00:00Z"},
            headers=LIAISON,
        )
        assert stray_time.status_code == 422

        steps = [
            ("status", {"status": "accepted"}),
            ("contacts", {"place": "detention", "reached": False}),
            ("status", {"status": "unable_to_contact"}),
            ("contacts", {"place": "hospital_er", "reached": True}),
            ("status", {"status": "appointment_scheduled", "appointment_at": APPOINTMENT}),
            ("status", {"status": "attended"}),
            ("status", {"status": "connected_to_treatment"}),
        ]
        for path, body in steps:
            answer = await client.post(f"{url}/{path}", json=body, headers=LIAISON)
            assert answer.status_code == 200, (path, body, answer.text)
        assert answer.json()["status"] == "connected_to_treatment"
        closed = await client.post(
            f"{url}/contacts", json={"place": "phone", "reached": True}, headers=LIAISON
        )
        assert closed.status_code == 409
        stranger = await client.post(
            f"{url}/status", json={"status": "accepted"}, headers=OTHER_LIAISON
        )
        assert stranger.status_code == 404

        key = referral_id.encode()
        changes = await kafka_probe.collect(
            [ReferralStatusChangedV1.topic(), ReferralContactAttemptedV1.topic()],
            lambda r: r.key == key,
            expect=7,
            settle=1.0,
        )
    sequences = [int(json.loads(r.value)["sequence"]) for r in changes]
    assert sorted(sequences) == [1, 2, 3, 4, 5, 6, 7]
    statuses = [
        ReferralStatusChangedV1.model_validate_json(r.value).to_status
        for r in changes
        if r.topic == ReferralStatusChangedV1.topic()
    ]
    appointments = [
        ReferralStatusChangedV1.model_validate_json(r.value).appointment_at
        for r in changes
        if r.topic == ReferralStatusChangedV1.topic()
    ]
    assert [a.isoformat() if a else None for a in appointments] == [
        None,
        None,
        "2030-01-01T10:00:00+00:00",
        None,
        None,
    ]
    assert statuses == [
        "accepted",
        "unable_to_contact",
        "appointment_scheduled",
        "attended",
        "connected_to_treatment",
    ]


async def test_only_a_supervisor_reassigns_and_the_caseload_follows(
    referral_settings: ReferralSettings,
    referral_body: Callable[..., dict[str, Any]],
    kafka_probe: KafkaProbe,
) -> None:
    async with running_app(build(referral_settings), from_now=True) as client:
        referral_id = await create(client, referral_body())
        url = f"/api/v1/referrals/{referral_id}"
        by_liaison = await client.post(
            f"{url}/assignment", json={"liaison_id": "liaison-22"}, headers=LIAISON
        )
        assert by_liaison.status_code == 403
        elsewhere = await client.post(
            f"{url}/assignment", json={"liaison_id": "liaison-30"}, headers=SUPERVISOR
        )
        assert elsewhere.status_code == 403  # liaison-30 belongs to cmhc-24
        assert "own CMHC" in elsewhere.json()["detail"]
        assert (await client.get(url, headers=OTHER_CMHC_LIAISON)).status_code == 404
        moved = await client.post(
            f"{url}/assignment", json={"liaison_id": "liaison-22"}, headers=SUPERVISOR
        )
        assert moved.status_code == 200, moved.text
        assert (await client.get(url, headers=OTHER_LIAISON)).status_code == 200
        assert (await client.get(url, headers=LIAISON)).status_code == 404
        [event] = await kafka_probe.collect(
            [ReferralReassignedV1.topic()],
            lambda r: r.key == referral_id.encode(),
            expect=1,
            settle=1.0,
        )
    reassigned = ReferralReassignedV1.model_validate_json(event.value)
    assert (reassigned.from_liaison_id, reassigned.to_liaison_id) == ("liaison-21", "liaison-22")


async def test_caseload_pages_without_gaps_and_filters(
    referral_settings: ReferralSettings, referral_body: Callable[..., dict[str, Any]]
) -> None:
    async with running_app(build(referral_settings), from_now=True) as client:
        created = {await create(client, referral_body(county_fips="29019")) for _ in range(5)}
        accepted = next(iter(created))
        await client.post(
            f"/api/v1/referrals/{accepted}/status", json={"status": "accepted"}, headers=LIAISON
        )
        seen: list[str] = []
        cursor = None
        for _ in range(5):
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/api/v1/referrals", params=params, headers=LIAISON)).json()
            seen += [row["referral_id"] for row in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(created)
        filtered = await client.get(
            "/api/v1/referrals", params={"status": "accepted"}, headers=LIAISON
        )
        assert [r["referral_id"] for r in filtered.json()["data"]] == [accepted]
        supervisor = await client.get("/api/v1/referrals", headers=SUPERVISOR)
        # Agency intake may have added other referrals of this CMHC to the test's database.
        assert created <= {r["referral_id"] for r in supervisor.json()["data"]}
        other = await client.get("/api/v1/referrals", headers=OTHER_LIAISON)
        assert not created & {r["referral_id"] for r in other.json()["data"]}
        bad_cursor = await client.get(
            "/api/v1/referrals", params={"cursor": "nonsense"}, headers=LIAISON
        )
        assert bad_cursor.status_code == 400


async def test_privacy_officer_gets_the_accounting_of_disclosures(
    referral_settings: ReferralSettings, referral_body: Callable[..., dict[str, Any]]
) -> None:
    person = {
        "given_name": "Lee",
        "family_name": f"Ray{uuid.uuid4().hex[:6]}",
        "birth_date": "1960-06-06",
    }
    async with running_app(build(referral_settings), from_now=True) as client:
        referral_id = await create(client, referral_body(person=person))
        await client.get(f"/api/v1/referrals/{referral_id}", headers=SUPERVISOR)
        await client.get(f"/api/v1/referrals/{referral_id}", headers=OTHER_LIAISON)
        denied = await client.post("/api/v1/privacy/accounting", json=person, headers=LIAISON)
        report = await client.post("/api/v1/privacy/accounting", json=person, headers=PRIVACY)
    assert denied.status_code == 403
    assert report.status_code == 200
    rows = [(d["actor"], d["action"], d["outcome"]) for d in report.json()["disclosures"]]
    assert rows == [
        ("liaison-21", "create", "created"),
        ("sup-17", "read", "allowed"),
        ("liaison-22", "read", "denied"),
    ]


async def test_a_resubmitted_reference_returns_the_referral_only_to_whom_may_read_it(
    referral_settings: ReferralSettings, referral_body: Callable[..., dict[str, Any]]
) -> None:
    """The duplicate path is a read: another liaison who guesses an agency's reference gets 409
    without the record, and the attempt is in the accounting as a denied read."""
    family = f"Quill{uuid.uuid4().hex[:6]}"
    person = {"given_name": "Ada", "family_name": family, "birth_date": "1971-03-04"}
    body = referral_body(agency_reference=f"STL-{uuid.uuid4().hex[:8]}", person=person)
    async with running_app(build(referral_settings), from_now=True) as client:
        first = await client.post("/api/v1/referrals", json=body, headers=LIAISON)
        assert first.status_code == 201, first.text
        answers = {
            name: await client.post("/api/v1/referrals", json=body, headers=headers)
            for name, headers in {
                "owner": LIAISON,
                "own supervisor": SUPERVISOR,
                "colleague": OTHER_LIAISON,
                "other cmhc liaison": OTHER_CMHC_LIAISON,
                "other supervisor": OTHER_SUPERVISOR,
                "metrics consumer": METRICS,
                "privacy officer": PRIVACY,
            }.items()
        }
        report = await client.post("/api/v1/privacy/accounting", json=person, headers=PRIVACY)
    codes = {name: answer.status_code for name, answer in answers.items()}
    assert codes == {
        "owner": 200,
        "own supervisor": 200,
        "colleague": 409,
        "other cmhc liaison": 409,
        "other supervisor": 409,
        "metrics consumer": 403,
        "privacy officer": 403,
    }
    for name in ("owner", "own supervisor"):
        assert answers[name].json()["referral_id"] == first.json()["referral_id"]
        assert answers[name].json()["person"]["family_name"] == family
    for name, answer in answers.items():
        if answer.status_code != 200:
            assert family not in answer.text, name
            assert "1971" not in answer.text, name
            assert "referral_id" not in answer.text, name
    assert "submitted before" in answers["colleague"].json()["detail"]
    rows = [(d["actor"], d["action"], d["outcome"]) for d in report.json()["disclosures"]]
    assert rows == [
        ("liaison-21", "create", "created"),
        ("liaison-21", "read_resubmitted", "allowed"),
        ("sup-17", "read_resubmitted", "allowed"),
        ("liaison-22", "read_resubmitted", "denied"),
        ("liaison-30", "read_resubmitted", "denied"),
        ("sup-24", "read_resubmitted", "denied"),
    ]


async def test_edge_inputs_get_a_4xx_naming_the_rule_never_a_500(
    referral_settings: ReferralSettings, referral_body: Callable[..., dict[str, Any]]
) -> None:
    year_one = base64.urlsafe_b64encode(
        json.dumps(["0001-01-01T00:00:00+05:00", "x"]).encode()
    ).decode()
    async with running_app(build(referral_settings), from_now=True) as client:
        answers = {
            "received_from year 1": await client.get(
                "/api/v1/referrals",
                params={"received_from": "0001-01-01T00:00:00+05:00"},
                headers=LIAISON,
            ),
            "received_to year 9999": await client.get(
                "/api/v1/referrals",
                params={"received_to": "9999-12-31T23:59:59-05:00"},
                headers=LIAISON,
            ),
            "cursor of year 1": await client.get(
                "/api/v1/referrals", params={"cursor": year_one}, headers=LIAISON
            ),
            "referred_at year 1": await client.post(
                "/api/v1/referrals",
                json=referral_body(referred_at="0001-01-01T00:00:00+05:00"),
                headers=LIAISON,
            ),
            "born tomorrow": await client.post(
                "/api/v1/referrals",
                json=referral_body(
                    person={"given_name": "A", "family_name": "B", "birth_date": "2099-01-01"}
                ),
                headers=LIAISON,
            ),
            "control character": await client.post(
                "/api/v1/referrals",
                json=referral_body(
                    person={"given_name": "A\x07", "family_name": "B", "birth_date": "1990-01-01"}
                ),
                headers=LIAISON,
            ),
        }
        created = await client.post(
            "/api/v1/referrals",
            json=referral_body(),
            headers=LIAISON | {"X-Correlation-Id": "Jane Roe 1990-01-02"},
        )
    codes = {name: answer.status_code for name, answer in answers.items()}
    assert codes == {
        "received_from year 1": 422,
        "received_to year 9999": 422,
        "cursor of year 1": 400,
        "referred_at year 1": 422,
        "born tomorrow": 422,
        "control character": 422,
    }
    assert "1900 and 2100" in answers["received_from year 1"].text
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"


async def test_a_caseload_is_searched_by_family_name_within_what_the_user_may_see(
    referral_settings: ReferralSettings, referral_body: Callable[..., dict[str, Any]]
) -> None:
    family = f"Nakamura{uuid.uuid4().hex[:6]}"

    def person(given: str, family_name: str) -> dict[str, Any]:
        return {"given_name": given, "family_name": family_name, "birth_date": "1979-06-01"}

    async with running_app(build(referral_settings), from_now=True) as client:
        mine = {
            await create(client, referral_body(person=person("Aiko", family))),
            await create(client, referral_body(person=person("Ren", f"  {family.upper()} "))),
        }
        await create(client, referral_body(person=person("Aiko", family + "x")))

        async def search(name: str, headers: BearerHeaders) -> set[str]:
            answer = await client.get(
                "/api/v1/referrals", params={"family_name": name}, headers=headers
            )
            assert answer.status_code == 200, answer.text
            return {row["referral_id"] for row in answer.json()["data"]}

        # Any case and spacing; never a longer or shorter name.
        assert await search(family.lower(), LIAISON) == mine
        assert await search(family[:-1], LIAISON) == set()
        assert await search(family, SUPERVISOR) == mine
        # Names only from one's own caseload: a colleague or another CMHC finds nothing.
        assert await search(family, OTHER_LIAISON) == set()
        assert await search(family, OTHER_SUPERVISOR) == set()
        control = await client.get(
            "/api/v1/referrals", params={"family_name": "Roe\x07"}, headers=LIAISON
        )
        assert control.status_code == 422


async def test_summaries_name_only_the_referrals_the_user_may_see(
    referral_settings: ReferralSettings, referral_body: Callable[..., dict[str, Any]]
) -> None:
    async with running_app(build(referral_settings), from_now=True) as client:
        ids = [await create(client, referral_body()) for _ in range(3)]
        unknown = str(uuid.uuid4())
        asked = {"referral_ids": [ids[2], unknown, ids[0], ids[0]]}

        async def summaries(headers: BearerHeaders) -> Any:
            return await client.post("/api/v1/referrals/summaries", json=asked, headers=headers)

        mine = await summaries(LIAISON)
        assert mine.status_code == 200, mine.text
        assert [r["referral_id"] for r in mine.json()] == [ids[2], ids[0]]
        assert mine.json()[0]["family_name"] == "Roe"
        assert [r["referral_id"] for r in (await summaries(SUPERVISOR)).json()] == [ids[2], ids[0]]
        assert (await summaries(OTHER_LIAISON)).json() == []
        assert (await summaries(OTHER_SUPERVISOR)).json() == []
        assert (await summaries(METRICS)).status_code == 403
        # Each record asked for is in the accounting: read by its liaison, refused to others.
        accounting = await client.post(
            "/api/v1/privacy/accounting",
            json={"given_name": "Jane", "family_name": "Roe", "birth_date": "1990-01-02"},
            headers=PRIVACY,
        )
        entries = {
            (d["actor"], d["record"], d["outcome"])
            for d in accounting.json()["disclosures"]
            if d["action"] == "summary"
        }
        assert ("liaison-21", f"referral/{ids[0]}", "allowed") in entries
        assert ("liaison-22", f"referral/{ids[0]}", "denied") in entries
        assert ("liaison-22", f"referral/{ids[2]}", "denied") in entries
        too_many = await client.post(
            "/api/v1/referrals/summaries",
            json={"referral_ids": [str(uuid.uuid4()) for _ in range(101)]},
            headers=LIAISON,
        )
        assert too_many.status_code == 422


async def test_the_overview_counts_waiting_referrals_per_liaison_without_records(
    referral_settings: ReferralSettings, referral_body: Callable[..., dict[str, Any]]
) -> None:
    async with running_app(build(referral_settings), from_now=True) as client:
        ids = [await create(client, referral_body()) for _ in range(3)]
        await client.post(
            f"/api/v1/referrals/{ids[0]}/status", json={"status": "accepted"}, headers=LIAISON
        )
        mine = await client.get("/api/v1/referrals/overview", headers=LIAISON)
        assert mine.status_code == 200, mine.text
        assert mine.json()["waiting_by_liaison"] == {"liaison-21": 2}
        assert mine.json()["newest_received_at"] is not None
        capped = await client.get("/api/v1/referrals/overview", params={"cap": 1}, headers=LIAISON)
        assert capped.json()["waiting_by_liaison"] == {"liaison-21": 1}
        team = await client.get("/api/v1/referrals/overview", headers=SUPERVISOR)
        assert team.json()["waiting_by_liaison"] == {"liaison-21": 2, "liaison-22": 0}
        assert (await client.get("/api/v1/referrals/overview", headers=METRICS)).status_code == 403
        # A count names nobody: nothing about the person was read.
        accounting = await client.post(
            "/api/v1/privacy/accounting",
            json={"given_name": "Jane", "family_name": "Roe", "birth_date": "1990-01-02"},
            headers=PRIVACY,
        )
        assert "overview" not in {d["action"] for d in accounting.json()["disclosures"]}
