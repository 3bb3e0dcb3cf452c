"""Training and reporting together on the real stack: completed sessions reach the statewide
metrics with officers counted once, and roster corrections replace earlier counts exactly."""

import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from httpx import AsyncClient

from cmhl_contracts import TrainingCompletedV1
from cmhl_reporting.bootstrap import build as build_reporting
from cmhl_reporting.config import ReportingSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.testing import KafkaProbe, bearer, eventually, infra_settings, running_app
from cmhl_training.bootstrap import build as build_training
from cmhl_training.config import TrainingSettings

pytestmark = pytest.mark.integration

# A day's window is a free window: for a role that may see records.
RECORDS_READER = bearer("privacy-officer", Role.PRIVACY_OFFICER)
LIAISON = bearer("liaison-07", Role.LIAISON, cmhc_id="cmhc-07")


def own_day() -> date:
    """A day no other test records trainings on: the reporting app reads every session
    published on the shared topic while it runs, so the queried window must hold only ours.
    The training app's clock is set just after it (sessions must be within a year of today)."""
    return date(2000, 1, 1) + timedelta(days=random.randrange(15 * 365))


def officers(agency: str, refs: list[str]) -> list[dict[str, str]]:
    return [{"agency_id": agency, "officer_ref": ref} for ref in refs]


@contextlib.asynccontextmanager
async def training_and_reporting(
    kafka_bootstrap: str, mongo_uri: str, clock: AdjustableClock | None = None
) -> AsyncIterator[tuple[AsyncClient, AsyncClient]]:
    """The training API and the reporting service, each with its own database; reporting reads
    only what is published after it started."""
    training = build_training(
        TrainingSettings(**infra_settings(kafka_bootstrap, mongo_uri), pseudonym_key="it-key"),
        clock=clock,
    )
    reporting = build_reporting(ReportingSettings(**infra_settings(kafka_bootstrap, mongo_uri)))
    async with (
        running_app(reporting, from_now=True) as metrics,
        running_app(training) as api,
    ):
        yield api, metrics


async def trainings_in(reporting: AsyncClient, day: date) -> dict[str, Any]:
    trainings = await all_trainings_in(reporting, day)
    return {k: trainings[k] for k in ("sessions", "officers_trained")}


async def all_trainings_in(reporting: AsyncClient, day: date) -> dict[str, Any]:
    # The program's day (America/Chicago): the window the metrics count a training's day in.
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo("America/Chicago"))
    response = await reporting.get(
        "/api/v1/metrics/statewide",
        params={
            "start": start.isoformat(),
            "end": (start + timedelta(days=1)).isoformat(),
        },
        headers=RECORDS_READER,
    )
    assert response.status_code == 200, response.text
    trainings: dict[str, Any] = response.json()["trainings"]
    return trainings


async def counted(reporting: AsyncClient, day: date, sessions: int, officers: int) -> None:
    expected = {"sessions": sessions, "officers_trained": officers}

    async def check() -> dict[str, Any] | None:
        found = await trainings_in(reporting, day)
        return found if found == expected else None

    await eventually(check, timeout=90, interval=0.5)


async def test_sessions_and_corrections_reach_statewide_metrics_exactly(
    kafka_bootstrap: str, mongo_uri: str, kafka_probe: KafkaProbe
) -> None:
    day = own_day()
    clock = AdjustableClock(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))
    clock.advance(timedelta(days=20))
    tag = uuid.uuid4().hex[:6]  # officer ids of this run only
    p = [f"P-{tag}-{n}" for n in range(7)]
    async with training_and_reporting(kafka_bootstrap, mongo_uri, clock) as (api, metrics):
        assert await trainings_in(metrics, day) == {"sessions": 0, "officers_trained": 0}

        # Session A, recorded as held: three officers of one agency.
        first = await api.post(
            "/api/v1/training-sessions",
            json={
                "course_id": "de-escalation",
                "held_on": day.isoformat(),
                "county_fips": "29019",
                "host_agency_id": "columbia-pd",
                "capacity": 10,
                "roster": officers("columbia-pd", p[0:3]),
            },
            headers=LIAISON,
        )
        assert first.status_code == 201, first.text
        session_a = first.json()["session_id"]

        # Session B, scheduled, then completed: p1 again (spelled differently, still one
        # officer), a registered officer of another agency and a walk-in.
        scheduled = await api.post(
            "/api/v1/training-sessions",
            json={
                "course_id": "umh",
                "held_on": day.isoformat(),
                "county_fips": "29510",
                "host_agency_id": "boone-so",
                "capacity": 4,
                "roster": officers("columbia-pd", [p[1]]) + officers("boone-so", [p[3]]),
                "status": "scheduled",
            },
            headers=LIAISON,
        )
        assert scheduled.status_code == 201, scheduled.text
        session_b = scheduled.json()["session_id"]
        completed = await api.post(
            f"/api/v1/training-sessions/{session_b}/completion",
            json={
                "officers": officers("COLUMBIA-PD", [f"  {p[1].lower()} "])
                + officers("boone-so", [p[3], p[4]])
            },
            headers=LIAISON,
        )
        assert completed.status_code == 200, completed.text
        assert (completed.json()["revision"], completed.json()["walk_ins"]) == (1, 1)

        # p0..p4: five officers in two sessions, p1 counted once.
        await counted(metrics, day, sessions=2, officers=5)

        # B's roster corrected: p3 and p4 were not there, p5 was.
        correction = officers("columbia-pd", [p[1]]) + officers("boone-so", [p[5]])
        corrected = await api.put(
            f"/api/v1/training-sessions/{session_b}/attendance",
            json={"officers": correction},
            headers=LIAISON,
        )
        assert corrected.status_code == 200, corrected.text
        assert corrected.json()["revision"] == 2
        await counted(metrics, day, sessions=2, officers=4)  # p0, p1, p2, p5

        # The same roster again is no new revision.
        again = await api.put(
            f"/api/v1/training-sessions/{session_b}/attendance",
            json={"officers": list(reversed(correction))},
            headers=LIAISON,
        )
        assert again.status_code == 200, again.text
        assert again.json()["revision"] == 2

        # A shrinks to p0: p2 leaves the count; p1 stays (still in B).
        shrunk = await api.put(
            f"/api/v1/training-sessions/{session_a}/attendance",
            json={"officers": officers("columbia-pd", [p[0]])},
            headers=LIAISON,
        )
        assert shrunk.json()["revision"] == 2
        await counted(metrics, day, sessions=2, officers=3)  # p0, p1, p5

        # Exactly two revisions per session went out, carrying pseudonyms only.
        records = await kafka_probe.collect(
            [TrainingCompletedV1.topic()],
            lambda r: r.key in (session_a.encode(), session_b.encode()),
            expect=4,
            timeout=60,
            settle=3,
        )
        events = [TrainingCompletedV1.model_validate_json(r.value) for r in records]
        revisions = sorted((str(e.session_id), e.revision) for e in events)
        assert revisions == sorted([(session_a, 1), (session_a, 2), (session_b, 1), (session_b, 2)])
        assert not any(ref.lower() in r.value.decode().lower() for r in records for ref in p)

        # Still exact after the settle: nothing more was counted.
        assert await trainings_in(metrics, day) == {"sessions": 2, "officers_trained": 3}


async def test_an_officer_who_moved_agencies_is_counted_once_by_post_license(
    kafka_bootstrap: str, mongo_uri: str, kafka_probe: KafkaProbe
) -> None:
    """Seats filled count every roster line; unique officers count a person once across
    agencies when the rosters give their POST license number (never published in clear)."""
    day = own_day()
    clock = AdjustableClock(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))
    clock.advance(timedelta(days=20))
    tag = uuid.uuid4().hex[:6]
    license_number = f"MO-{tag.upper()}"
    async with training_and_reporting(kafka_bootstrap, mongo_uri, clock) as (api, metrics):
        sessions = []
        for agency, ref in (("columbia-pd", f"C-{tag}"), ("boone-so", f"B-{tag}")):
            roster = [{"agency_id": agency, "officer_ref": ref, "post_license": license_number}]
            roster += officers(agency, [f"X-{tag}-{agency}"])  # a colleague, no license given
            created = await api.post(
                "/api/v1/training-sessions",
                json={
                    "course_id": "de-escalation",
                    "held_on": day.isoformat(),
                    "county_fips": "29019",
                    "host_agency_id": agency,
                    "capacity": 10,
                    "roster": roster,
                },
                headers=LIAISON,
            )
            assert created.status_code == 201, created.text
            sessions.append(created.json()["session_id"])
        # Four seats; three officers: the one who moved, and one colleague at each agency.
        await counted(metrics, day, sessions=2, officers=3)
        seats = (await all_trainings_in(metrics, day))["seats_filled"]
        assert seats == 4
        records = await kafka_probe.collect(
            [TrainingCompletedV1.topic()],
            lambda r: r.key in tuple(s.encode() for s in sessions),
            expect=2,
            timeout=60,
        )
        events = [TrainingCompletedV1.model_validate_json(r.value) for r in records]
        moved = {e.officer_person_ids[0] for e in events}
        assert len(moved) == 1  # one person across the two agencies
        assert {e.officer_ids[0] for e in events} != moved  # their records stay per agency
        assert not any(license_number.lower() in r.value.decode().lower() for r in records)


async def test_past_sessions_are_imported_once_and_counted_in_their_own_days(
    kafka_bootstrap: str, mongo_uri: str
) -> None:
    """A history import of trainings (program admin): sessions years old, with who attended,
    stored and published once; a record that breaks a rule is rejected and the rest go on."""
    day = own_day() - timedelta(days=3 * 365)  # years back: out of the live API's window
    tag = uuid.uuid4().hex[:6]

    def session(record_id: str, held_on: date, refs: list[str], **more: Any) -> dict[str, Any]:
        return {
            "record_id": record_id,
            "course_id": "de-escalation",
            "held_on": held_on.isoformat(),
            "county_fips": "29019",
            "host_agency_id": "columbia-pd",
            "roster": officers("columbia-pd", refs),
        } | more

    batch = {
        "system": f"post-{tag}",
        "records": [
            session("s-1", day, [f"A-{tag}", f"B-{tag}"]),
            session("s-2", day, [f"B-{tag}", f"C-{tag}"]),
            session("s-3", date(2099, 1, 1), [f"D-{tag}"]),  # not held yet
            session("s-4", day, [f"E-{tag}"], course_id="no-such-course"),
            session("s-5", day, [f"F-{tag}", f"F-{tag}"]),  # listed twice
            {"record_id": "s-6", "held_on": day.isoformat()},
        ],
    }
    admin = bearer("program-admin-1", Role.PROGRAM_ADMIN)
    async with training_and_reporting(kafka_bootstrap, mongo_uri) as (api, metrics):
        refused = await api.post("/api/v1/imports/trainings", json=batch, headers=LIAISON)
        assert refused.status_code == 403
        answer = await api.post("/api/v1/imports/trainings", json=batch, headers=admin)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert (result["imported"], result["already_imported"]) == (2, 0)
        reasons = {r["record_id"]: r["reason"] for r in result["rejected"]}
        assert list(reasons) == ["s-3", "s-4", "s-5", "s-6"]
        assert reasons["s-3"].startswith("session_not_yet_held")
        assert reasons["s-4"].startswith("unknown_course")
        assert reasons["s-5"].startswith("officer_listed_twice")
        assert "roster" in reasons["s-6"]
        again = (await api.post("/api/v1/imports/trainings", json=batch, headers=admin)).json()
        assert (again["imported"], again["already_imported"]) == (0, 2)
        # Two sessions, four seats, three officers (B attended both), on their own day.
        await counted(metrics, day, sessions=2, officers=3)
        assert (await all_trainings_in(metrics, day))["seats_filled"] == 4
