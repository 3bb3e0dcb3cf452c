"""The registry on the real stack: CMHCs, liaisons and coverage over HTTP with real tokens, their
events on Kafka, assignment by the service area in force when a referral is received, round-robin
across two instances, least-loaded, and a county nobody serves."""

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from cmhl_contracts import CmhcServiceAreaChangedV1, LiaisonChangedV1, ReferralCreatedV1
from cmhl_referral.application.service import IMPORT_NAMESPACE
from cmhl_referral.bootstrap import build
from cmhl_referral.config import ReferralSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.testing import KafkaProbe, agency_bearer, bearer, running_app

pytestmark = pytest.mark.integration

ADMIN = bearer("admin-registry", Role.PROGRAM_ADMIN)
LIAISON = bearer("liaison-registry", Role.LIAISON, cmhc_id="cmhc-registry")
METRICS = bearer("dmh-registry", Role.METRICS_CONSUMER)
AGENCY = agency_bearer("greene-so")
BOONE, CALLAWAY, COLE, ST_LOUIS_CITY = "29019", "29027", "29051", "29510"


def submission(reference: str, county: str, referred_at: datetime) -> dict[str, Any]:
    return {
        "agency": {"agency_id": "greene-so", "source": "sheriff"},
        "agency_reference": reference,
        "county_fips": county,
        "primary_need": "behavioral_needs",
        "person_location": "community",
        "person": {"given_name": "Al", "family_name": "Fox", "birth_date": "1975-05-05"},
        "referred_at": referred_at.isoformat(),
    }


async def submit(client: AsyncClient, reference: str, county: str, at: datetime) -> str:
    answer = await client.post(
        "/api/v1/agency/referrals",
        headers=AGENCY,
        json={"submissions": [submission(reference, county, at)]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 1, answer.text
    referral_id: str = answer.json()["results"][0]["referral_id"]
    return referral_id


async def ok(client: AsyncClient, method: str, url: str, body: dict[str, Any]) -> Any:
    answer = await client.request(method, url, json=body, headers=ADMIN)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


async def test_cmhcs_liaisons_and_coverage_keep_their_rules_and_publish_changes(
    referral_settings: ReferralSettings, kafka_probe: KafkaProbe
) -> None:
    run = uuid.uuid4().hex[:8]
    a, b = f"cmhc-a-{run}", f"cmhc-b-{run}"
    async with running_app(build(referral_settings), from_now=True) as client:
        cmhc_a = {"cmhc_id": a, "name": "Mid-Missouri A", "counties": [BOONE, COLE]}
        by_supervisor = await client.post(
            "/api/v1/cmhcs",
            json=cmhc_a | {"effective_from": "2026-01-01"},
            headers=bearer("sup-registry", Role.SUPERVISOR, cmhc_id=a),
        )
        assert by_supervisor.status_code == 403
        await ok(client, "POST", "/api/v1/cmhcs", cmhc_a | {"effective_from": "2026-01-01"})
        again = await client.post(
            "/api/v1/cmhcs", json=cmhc_a | {"effective_from": "2026-01-01"}, headers=ADMIN
        )
        assert again.status_code == 409
        overlap = await client.post(
            "/api/v1/cmhcs",
            json={"cmhc_id": b, "name": "B", "counties": [CALLAWAY, COLE]}
            | {"effective_from": "2026-01-01"},
            headers=ADMIN,
        )
        assert overlap.status_code == 409
        assert f"county {COLE} is served by CMHC {a}" in overlap.json()["detail"]
        unknown = await client.post(
            "/api/v1/cmhcs",
            json={"cmhc_id": b, "name": "B", "counties": ["29999"], "effective_from": "2026-01-01"},
            headers=ADMIN,
        )
        assert unknown.status_code == 422
        assert "county 29999 is not a Missouri county" in unknown.json()["detail"]
        body_b = {"cmhc_id": b, "name": "B", "counties": [CALLAWAY], "effective_from": "2026-01-01"}
        await ok(client, "POST", "/api/v1/cmhcs", body_b)
        # From July, Cole moves from A to B: A gives it up first.
        moved = {"counties": [BOONE], "effective_from": "2026-07-01"}
        await ok(client, "PUT", f"/api/v1/cmhcs/{a}/service-area", moved)
        await ok(
            client,
            "PUT",
            f"/api/v1/cmhcs/{b}/service-area",
            {"counties": [CALLAWAY, COLE], "effective_from": "2026-07-01"},
        )
        backdated = await client.put(
            f"/api/v1/cmhcs/{a}/service-area",
            json={"counties": [BOONE], "effective_from": "2026-03-01"},
            headers=ADMIN,
        )
        assert backdated.status_code == 422
        assert "history is not rewritten" in backdated.json()["detail"]
        missing = await client.put(
            "/api/v1/cmhcs/cmhc-nobody/service-area", json=moved, headers=ADMIN
        )
        assert missing.status_code == 404

        june = await client.get("/api/v1/cmhcs?as_of=2026-06-30", headers=LIAISON)
        july = await client.get("/api/v1/cmhcs?as_of=2026-07-01", headers=LIAISON)
        assert {c["cmhc_id"]: c["counties"] for c in june.json()["data"]} == {
            a: [BOONE, COLE],
            b: [CALLAWAY],
        }
        assert {c["cmhc_id"]: c["counties"] for c in july.json()["data"]} == {
            a: [BOONE],
            b: [CALLAWAY, COLE],
        }
        assert (await client.get("/api/v1/cmhcs", headers=METRICS)).status_code == 403
        bad_day = await client.get("/api/v1/cmhcs?as_of=2026-13-01", headers=LIAISON)
        assert bad_day.status_code == 422

        outside = await client.post(
            "/api/v1/liaisons",
            json={
                "liaison_id": f"liaison-x-{run}",
                "cmhc_id": a,
                "status": "active",
                "coverage": [CALLAWAY],
                "effective_from": "2026-01-01",
            },
            headers=ADMIN,
        )
        assert outside.status_code == 422
        assert f"county {CALLAWAY} is outside CMHC {a}" in outside.json()["detail"]
        no_cmhc = await client.post(
            "/api/v1/liaisons",
            json={
                "liaison_id": f"liaison-x-{run}",
                "cmhc_id": "cmhc-nobody",
                "status": "active",
                "effective_from": "2026-01-01",
            },
            headers=ADMIN,
        )
        assert no_cmhc.status_code == 422
        liaison = f"liaison-1-{run}"
        await ok(
            client,
            "POST",
            "/api/v1/liaisons",
            {"liaison_id": liaison, "cmhc_id": a, "status": "active"}
            | {"coverage": [COLE], "effective_from": "2026-01-01"},
        )
        await ok(
            client,
            "PUT",
            f"/api/v1/liaisons/{liaison}",
            {"cmhc_id": b, "status": "on_leave", "effective_from": "2026-07-01"},
        )
        in_june = await client.get(
            f"/api/v1/liaisons?cmhc_id={a}&as_of=2026-06-30", headers=LIAISON
        )
        in_july = await client.get(
            f"/api/v1/liaisons?cmhc_id={a}&as_of=2026-07-01", headers=LIAISON
        )
        assert [row["liaison_id"] for row in in_june.json()["data"]] == [liaison]
        assert in_june.json()["data"][0]["current"]["coverage"] == [COLE]
        assert in_july.json()["data"] == []

        coverage = await client.get(
            "/api/v1/service-areas/coverage?as_of=2026-07-01", headers=ADMIN
        )
        assert coverage.status_code == 200, coverage.text
        report = coverage.json()
        assert len(report["uncovered_counties"]) == 115 - 3
        assert ST_LOUIS_CITY in report["uncovered_counties"]
        assert report["overlaps"] == {}
        # Nobody is active in July: every served county lacks a liaison.
        assert report["counties_without_liaison"] == [BOONE, CALLAWAY, COLE]
        assert (
            await client.get("/api/v1/service-areas/coverage", headers=LIAISON)
        ).status_code == 403

        changes = await kafka_probe.collect(
            [CmhcServiceAreaChangedV1.topic()], lambda r: r.key == a.encode(), expect=2
        )
        liaison_changes = await kafka_probe.collect(
            [LiaisonChangedV1.topic()], lambda r: r.key == liaison.encode(), expect=2
        )
    areas = [CmhcServiceAreaChangedV1.model_validate_json(r.value) for r in changes]
    assert [(e.sequence, str(e.effective_from), e.counties) for e in areas] == [
        (1, "2026-01-01", [BOONE, COLE]),
        (2, "2026-07-01", [BOONE]),
    ]
    terms = [LiaisonChangedV1.model_validate_json(r.value) for r in liaison_changes]
    assert [(e.cmhc_id, e.status.value, str(e.effective_from)) for e in terms] == [
        (a, "active", "2026-01-01"),
        (b, "on_leave", "2026-07-01"),
    ]


async def _registry(client: AsyncClient, run: str, effective_from: str) -> tuple[str, str]:
    """CMHC A serves Boone and Cole until July 1st 2026, then B takes Cole; a liaison each."""
    a, b = f"cmhc-a-{run}", f"cmhc-b-{run}"
    for cmhc, counties in ((a, [BOONE, COLE]), (b, [CALLAWAY])):
        body = {"cmhc_id": cmhc, "name": cmhc, "counties": counties}
        await ok(client, "POST", "/api/v1/cmhcs", body | {"effective_from": effective_from})
        await ok(
            client,
            "POST",
            "/api/v1/liaisons",
            {"liaison_id": f"liaison-{cmhc}", "cmhc_id": cmhc, "status": "active"}
            | {"effective_from": effective_from},
        )
    await ok(
        client,
        "PUT",
        f"/api/v1/cmhcs/{a}/service-area",
        {"counties": [BOONE], "effective_from": "2026-07-01"},
    )
    await ok(
        client,
        "PUT",
        f"/api/v1/cmhcs/{b}/service-area",
        {"counties": [CALLAWAY, COLE], "effective_from": "2026-07-01"},
    )
    return a, b


async def test_a_referral_goes_to_the_cmhc_that_serves_its_county_the_day_it_is_received(
    referral_settings: ReferralSettings, kafka_probe: KafkaProbe
) -> None:
    run = uuid.uuid4().hex[:8]
    # 20:00 in Missouri on June 30th is already July 1st in UTC: the program's day counts.
    clock = AdjustableClock(datetime(2026, 7, 1, 1, tzinfo=UTC))
    async with running_app(build(referral_settings, clock=clock), from_now=True) as client:
        a, b = await _registry(client, run, "2026-01-01")
        before = await submit(client, f"{run}-june", COLE, clock.now())
        clock.advance(timedelta(days=1))
        after = await submit(client, f"{run}-july", COLE, clock.now())
        # A later change does not move referrals assigned before it.
        await ok(
            client,
            "PUT",
            f"/api/v1/cmhcs/{b}/service-area",
            {"counties": [CALLAWAY], "effective_from": "2026-08-01"},
        )
        # History imports are assigned by the registry of the day they were referred.
        system = f"sys-{run}"
        records = [
            submission(f"{run}-old-{n}", COLE, at) | {"record_id": f"R-{n}"}
            for n, at in enumerate(
                [datetime(2026, 6, 15, 15, tzinfo=UTC), datetime(2026, 7, 1, 17, tzinfo=UTC)]
            )
        ]
        for record in records:
            del record["agency_reference"]
        imported = await ok(
            client, "POST", "/api/v1/imports/referrals", {"system": system, "records": records}
        )
        assert imported["imported"] == 2, imported
        past = [str(uuid.uuid5(IMPORT_NAMESPACE, f"{system}\x1fR-{n}")) for n in range(2)]
        supervisor_a = bearer(f"sup-{a}", Role.SUPERVISOR, cmhc_id=a)
        stored = await client.get(f"/api/v1/referrals/{before}", headers=supervisor_a)
        assert stored.status_code == 200, stored.text
        assert (stored.json()["cmhc_id"], stored.json()["liaison_id"]) == (a, f"liaison-{a}")
        created = await kafka_probe.collect(
            [ReferralCreatedV1.topic()],
            lambda r: r.key in {before.encode(), after.encode(), *(p.encode() for p in past)},
            expect=4,
        )
    events = {
        str(e.referral_id): e
        for e in map(ReferralCreatedV1.model_validate_json, (r.value for r in created))
    }
    # Reporting attributes each referral to the cmhc_id its referral-created event carries.
    assert (events[before].cmhc_id, events[before].liaison_id) == (a, f"liaison-{a}")
    assert (events[after].cmhc_id, events[after].liaison_id) == (b, f"liaison-{b}")
    assert [events[p].cmhc_id for p in past] == [a, b]


async def test_round_robin_is_fair_across_two_instances(
    referral_settings: ReferralSettings,
) -> None:
    run = uuid.uuid4().hex[:8]
    cmhc = f"cmhc-rr-{run}"
    team = [f"liaison-rr{n}-{run}" for n in range(3)]
    supervisor = bearer(f"sup-rr-{run}", Role.SUPERVISOR, cmhc_id=cmhc)
    # Two instances on one database. Each consumes in groups of its own: this test is about
    # the HTTP path, and a rebalance between two starting apps would only slow it down.
    other = referral_settings.model_copy(
        update={"consumer_group_prefix": f"{referral_settings.consumer_group_prefix}-2"}
    )
    async with (
        running_app(build(referral_settings), from_now=True) as one,
        running_app(build(other), from_now=True) as two,
    ):
        body = {"cmhc_id": cmhc, "name": "RR", "counties": [BOONE], "effective_from": "2020-01-01"}
        await ok(one, "POST", "/api/v1/cmhcs", body)
        for liaison in team:
            await ok(
                two,
                "POST",
                "/api/v1/liaisons",
                {"liaison_id": liaison, "cmhc_id": cmhc, "status": "active"}
                | {"effective_from": "2020-01-01"},
            )
        now = datetime.now(UTC)
        await asyncio.gather(
            *(
                submit((one, two)[n % 2], f"{run}-{n}", BOONE, now - timedelta(minutes=1))
                for n in range(12)
            )
        )
        overview = await one.get("/api/v1/referrals/overview", headers=supervisor)
    assert overview.status_code == 200, overview.text
    assert overview.json()["waiting_by_liaison"] == dict.fromkeys(team, 4)


async def test_least_loaded_gives_a_new_referral_to_the_liaison_with_fewest_open(
    referral_settings: ReferralSettings,
) -> None:
    run = uuid.uuid4().hex[:8]
    cmhc = f"cmhc-ll-{run}"
    settings = referral_settings.model_copy(update={"assignment_strategy": "least_loaded"})
    supervisor = bearer(f"sup-ll-{run}", Role.SUPERVISOR, cmhc_id=cmhc)
    busy, free = f"liaison-ll0-{run}", f"liaison-ll1-{run}"
    async with running_app(build(settings), from_now=True) as client:
        body = {"cmhc_id": cmhc, "name": "LL", "counties": [BOONE], "effective_from": "2020-01-01"}
        await ok(client, "POST", "/api/v1/cmhcs", body)
        await ok(
            client,
            "POST",
            "/api/v1/liaisons",
            {"liaison_id": busy, "cmhc_id": cmhc, "status": "active"}
            | {"effective_from": "2020-01-01"},
        )
        now = datetime.now(UTC) - timedelta(minutes=1)
        for n in range(2):
            await submit(client, f"{run}-busy-{n}", BOONE, now)
        await ok(
            client,
            "POST",
            "/api/v1/liaisons",
            {"liaison_id": free, "cmhc_id": cmhc, "status": "active"}
            | {"effective_from": "2020-01-01"},
        )
        for n in range(3):
            await submit(client, f"{run}-next-{n}", BOONE, now)
        overview = await client.get("/api/v1/referrals/overview", headers=supervisor)
    # Free takes turns until level, then the tie goes to the first in id order.
    assert Counter(overview.json()["waiting_by_liaison"]) == Counter({busy: 3, free: 2})


async def test_a_referral_of_a_county_nobody_serves_is_kept_listed_and_taken_by_a_supervisor(
    referral_settings: ReferralSettings,
) -> None:
    run = uuid.uuid4().hex[:8]
    cmhc = f"cmhc-gap-{run}"
    liaison = f"liaison-gap-{run}"
    supervisor = bearer(f"sup-gap-{run}", Role.SUPERVISOR, cmhc_id=cmhc)
    async with running_app(build(referral_settings), from_now=True) as client:
        body = {"cmhc_id": cmhc, "name": "Gap", "counties": [BOONE], "effective_from": "2020-01-01"}
        await ok(client, "POST", "/api/v1/cmhcs", body)
        await ok(
            client,
            "POST",
            "/api/v1/liaisons",
            {"liaison_id": liaison, "cmhc_id": cmhc, "status": "active"}
            | {"effective_from": "2020-01-01"},
        )
        referral_id = await submit(
            client, f"{run}-gap", ST_LOUIS_CITY, datetime.now(UTC) - timedelta(minutes=1)
        )
        listed = await client.get("/api/v1/unassigned-referrals", headers=ADMIN)
        assert listed.status_code == 200, listed.text
        [row] = listed.json()["data"]
        assert (row["referral_id"], row["county_fips"], row["cmhc_id"]) == (
            referral_id,
            ST_LOUIS_CITY,
            "unassigned",
        )
        assert "family_name" not in row  # the list names no person
        for_supervisor = await client.get("/api/v1/unassigned-referrals", headers=supervisor)
        assert [r["referral_id"] for r in for_supervisor.json()["data"]] == [referral_id]
        denied = await client.get("/api/v1/unassigned-referrals", headers=LIAISON)
        assert denied.status_code == 403
        report = await client.get("/api/v1/service-areas/coverage", headers=ADMIN)
        assert report.json()["unassigned_open_referrals"] == 1
        assert ST_LOUIS_CITY in report.json()["uncovered_counties"]

        # Nobody's record yet: no supervisor reads it before taking it into their CMHC.
        unread = await client.get(f"/api/v1/referrals/{referral_id}", headers=supervisor)
        assert unread.status_code == 404
        taken = await client.post(
            f"/api/v1/referrals/{referral_id}/assignment",
            json={"liaison_id": liaison},
            headers=supervisor,
        )
        assert taken.status_code == 200, taken.text
        assert (taken.json()["cmhc_id"], taken.json()["liaison_id"]) == (cmhc, liaison)
        assert (await client.get(f"/api/v1/referrals/{referral_id}", headers=supervisor)).is_success
        after = await client.get("/api/v1/unassigned-referrals", headers=ADMIN)
        assert after.json()["data"] == []
        report = await client.get("/api/v1/service-areas/coverage", headers=ADMIN)
        assert report.json()["unassigned_open_referrals"] == 0
