"""The training API on the real stack: rules named in 4xx answers, who may do what, agency
reads with an API key, certificates, and the audit of every read of an officer's record."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import agency_bearer, bearer, running_app
from cmhl_training.bootstrap import build
from cmhl_training.config import TrainingSettings

pytestmark = pytest.mark.integration

LIAISON = bearer("liaison-31", Role.LIAISON, cmhc_id="cmhc-09")
OTHER_LIAISON = bearer("liaison-32", Role.LIAISON, cmhc_id="cmhc-09")
SUPERVISOR = bearer("sup-09", Role.SUPERVISOR, cmhc_id="cmhc-09")
PRIVACY = bearer("privacy-1", Role.PRIVACY_OFFICER)
AGENCY = agency_bearer("columbia-pd")
TODAY = datetime.now(UTC).date()


def session_body(**overrides: Any) -> dict[str, Any]:
    return {
        "course_id": "civil-detention",
        "held_on": (TODAY - timedelta(days=3)).isoformat(),
        "county_fips": "29019",
        "host_agency_id": "columbia-pd",
        "capacity": 3,
        "roster": [
            {"agency_id": "columbia-pd", "officer_ref": "C-101"},
            {"agency_id": "columbia-pd", "officer_ref": "C-102"},
            {"agency_id": "boone-so", "officer_ref": "S-7"},
        ],
    } | overrides


async def rule_of(client: AsyncClient, body: dict[str, Any], status: int = 422) -> str:
    response = await client.post("/api/v1/training-sessions", json=body, headers=LIAISON)
    assert response.status_code == status, response.text
    rule: str = response.json()["rule"]
    return rule


async def test_bad_sessions_get_the_rule_not_a_500(training_settings: TrainingSettings) -> None:
    async with running_app(build(training_settings)) as client:
        year_ago = (TODAY - timedelta(days=400)).isoformat()
        year_ahead = (TODAY + timedelta(days=400)).isoformat()
        roster = session_body()["roster"]
        assert await rule_of(client, session_body(course_id="basket-weaving")) == "unknown_course"
        assert await rule_of(client, session_body(held_on=year_ago)) == "session_date_out_of_range"
        assert (
            await rule_of(client, session_body(held_on=year_ahead, status="scheduled"))
            == "session_date_out_of_range"
        )
        twice = [*roster[:2], {"agency_id": "COLUMBIA-PD", "officer_ref": " c-101 "}]
        assert await rule_of(client, session_body(roster=twice)) == "officer_listed_twice"
        assert await rule_of(client, session_body(capacity=2)) == "roster_over_capacity"
        assert await rule_of(client, session_body(roster=[])) == "no_officer_attended"
        future = (TODAY + timedelta(days=5)).isoformat()
        assert await rule_of(client, session_body(held_on=future)) == "session_not_yet_held"

        name_like = session_body(roster=[{"agency_id": "x", "officer_ref": "Jane O'Roe"}])
        refused = await client.post("/api/v1/training-sessions", json=name_like, headers=LIAISON)
        assert refused.status_code == 422
        assert "Roe" not in refused.text  # the rejected value is not echoed

        # Supervisors retire a course; it takes no new sessions but keeps its history.
        held = await client.post("/api/v1/training-sessions", json=session_body(), headers=LIAISON)
        assert held.status_code == 201, held.text
        denied = await client.post("/api/v1/courses/civil-detention/retire", headers=LIAISON)
        assert denied.status_code == 403
        retired = await client.post("/api/v1/courses/civil-detention/retire", headers=SUPERVISOR)
        assert retired.json()["retired"] is True
        assert await rule_of(client, session_body()) == "retired_course"
        catalog = await client.get("/api/v1/courses", headers=LIAISON)
        assert len(catalog.json()) == 7
        everything = await client.get("/api/v1/courses?include_retired=true", headers=LIAISON)
        assert len(everything.json()) == 8
        session = await client.get(
            f"/api/v1/training-sessions/{held.json()['session_id']}", headers=LIAISON
        )
        assert session.json()["course_title"].startswith("Understanding Civil Involuntary")

        course = {"course_id": "cit-40", "title": "CIT 40-hour", "category": "skills"}
        added = await client.post(
            "/api/v1/courses", json=course | {"credit_hours": 40}, headers=SUPERVISOR
        )
        assert added.status_code == 201, added.text
        again = await client.post(
            "/api/v1/courses", json=course | {"credit_hours": 40}, headers=SUPERVISOR
        )
        assert (again.status_code, again.json()["rule"]) == (409, "course_exists")


async def test_sessions_belong_to_their_liaison_and_records_are_audited(
    training_settings: TrainingSettings,
) -> None:
    async with running_app(build(training_settings)) as client:
        planned = await client.post(
            "/api/v1/training-sessions",
            json=session_body(course_id="umh", status="scheduled", roster=[]),
            headers=LIAISON,
        )
        assert planned.status_code == 201, planned.text
        url = f"/api/v1/training-sessions/{planned.json()['session_id']}"
        roster = session_body()["roster"]

        assert (await client.get(url, headers=OTHER_LIAISON)).status_code == 404
        registered = await client.put(
            f"{url}/registrations", json={"officers": roster[:2]}, headers=LIAISON
        )
        assert registered.json()["officers_registered"] == 2
        not_yet = await client.put(f"{url}/attendance", json={"officers": roster}, headers=LIAISON)
        assert (not_yet.status_code, not_yet.json()["rule"]) == (409, "session_not_completed")
        by_supervisor = await client.post(
            f"{url}/completion", json={"officers": roster}, headers=SUPERVISOR
        )
        assert by_supervisor.status_code == 403
        done = await client.post(f"{url}/completion", json={"officers": roster}, headers=LIAISON)
        assert done.status_code == 200, done.text
        assert (done.json()["revision"], done.json()["walk_ins"]) == (1, 1)
        different = await client.post(
            f"{url}/completion", json={"officers": roster[:1]}, headers=LIAISON
        )
        assert (different.status_code, different.json()["rule"]) == (
            409,
            "session_already_completed",
        )
        over = await client.put(
            f"{url}/attendance",
            json={"officers": [*roster, {"agency_id": "x", "officer_ref": "9"}]},
            headers=LIAISON,
        )
        assert (over.status_code, over.json()["rule"]) == (422, "roster_over_capacity")

        officer_id = next(
            o["officer_id"] for o in done.json()["attended"] if o["officer_ref"] == "C-101"
        )
        other_ids = [o["officer_id"] for o in done.json()["attended"]][1:]

        # The certificate names the course, date and county, and only its own officer.
        certificate = await client.get(f"{url}/certificates/{officer_id}", headers=LIAISON)
        assert certificate.status_code == 200, certificate.text
        assert certificate.headers["content-type"].startswith("text/html")
        page = certificate.text
        assert "Understanding Mental Health" in page
        assert (TODAY - timedelta(days=3)).isoformat() in page
        assert "Boone County" in page
        assert "C-101" in page
        assert not any(other in page for other in ["C-102", "S-7", *other_ids])
        assert not any(oid[:12] in page for oid in other_ids)

        # The agency reads its own officer by the id it issued; others' are not found.
        record = await client.get("/api/v1/agency/officers/c-101/training", headers=AGENCY)
        assert record.status_code == 200, record.text
        assert record.json()["officer_id"] == officer_id
        [year] = record.json()["hours"]
        assert year["by_category"] == {"interpersonal": 4}
        assert year["remaining"] == 20
        assert (await client.get("/api/v1/agency/officers/c-101/training")).status_code == 401
        mine = await client.get(
            f"/api/v1/agency/officers/C-101/certificates/{planned.json()['session_id']}",
            headers=AGENCY,
        )
        assert mine.status_code == 200
        theirs = await client.get(
            f"/api/v1/agency/officers/S-7/certificates/{planned.json()['session_id']}",
            headers=AGENCY,
        )
        assert theirs.status_code == 404

        assert (
            await client.get(f"/api/v1/officers/{officer_id}/training", headers=LIAISON)
        ).status_code == 403
        staff_read = await client.get(f"/api/v1/officers/{officer_id}/training", headers=SUPERVISOR)
        assert staff_read.json()["hours"] == record.json()["hours"]

        accounting = await client.get(f"/api/v1/officers/{officer_id}/accounting", headers=PRIVACY)
        seen = [(a["actor"], a["action"], a["outcome"]) for a in accounting.json()["accesses"]]
        for expected in [
            ("liaison-31", "session.complete", "changed"),
            ("liaison-31", "certificate.read", "allowed"),
            ("agency:columbia-pd", "officer.read", "allowed"),
            ("agency:columbia-pd", "certificate.read", "allowed"),
            ("liaison-31", "officer.read", "denied"),
            ("sup-09", "officer.read", "allowed"),
        ]:
            assert expected in seen
        assert all(a["at"] for a in accounting.json()["accesses"])
