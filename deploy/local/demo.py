"""Demo data through the real paths: the program's history through the referral service's
import (referrals older than 120 days, with how they ended), recent referrals as agency
submissions on Kafka (worked by the liaisons afterwards), and trainings over the API.

    python deploy/local/demo.py [--referrals N] [--trainings N] [--state-dir DIR] [--seed N]
    python deploy/local/demo.py --kafka HOST:PORT --training-url URL --reporting-url URL \
        --referral-url URL [...]

The second form (containers: the `demo` profile of deploy/compose.yaml) reads no state folder;
it signs the demo users in at CMHL_DEMO_ISSUER with the password CMHL_DEMO_PASSWORD.

The defaults reproduce the brochure (DOMAIN.md): 43,431 referrals (sources 76/11/10/3 %, needs
43/39/18 %) over the 31 liaisons' counties, some people referred repeatedly, and 836 trainings
of 12,515 officers. Names are synthetic; each run's references are new, so runs add up.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from aiokafka import AIOKafkaProducer
from demo_activity import record_activity  # type: ignore[import-not-found]  # sibling
from demo_directory import import_directory  # type: ignore[import-not-found]  # sibling
from demo_facilities import load_facilities  # type: ignore[import-not-found]  # sibling
from demo_registry import load_registry  # type: ignore[import-not-found]  # sibling
from pymongo import AsyncMongoClient

from cmhl_contracts import AgencyReferralSubmittedV1
from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_servicekit.kafka import KafkaAccess
from cmhl_servicekit.oidc import SignIn, demo_user

HERE = Path(__file__).resolve().parent
# Counts what the demo loaded, this quarter included: a role that may see records (an analyst
# gets the publication grid, which holds only fiscal quarters that have ended).
METRICS_USER = "privacy-officer"
IMPORT_USER = "program-admin"
# The Kafka principal the demo sends agency submissions as (deploy/kafka-access.toml).
DEMO_SENDER = "demo-seeder"


class DemoSignIns:
    """The demo users signing in (password grant with the local stack's test client); each
    sign-in renews its token before it expires, so long waits never send an expired one."""

    def __init__(self, credentials: dict[str, Any]) -> None:
        self._credentials = credentials
        self._sign_ins: dict[str, SignIn] = {}
        self._pending: dict[str, Future[str]] = {}

    def sign_in_ahead(self, usernames: list[str]) -> None:
        """Starts these users' sign-ins on a few threads while the demo goes on. Each is a
        password hash in Keycloak (a tenth of a second or more while it is warming up); one by
        one, the 31 liaisons' cost the demo several seconds before their first record."""
        pool = ThreadPoolExecutor(max_workers=SIGN_INS_AT_ONCE, thread_name_prefix="sign-in")
        SIGN_IN_POOLS.append(pool)
        for username in dict.fromkeys(usernames):
            if username not in self._sign_ins:
                self._sign_ins[username] = demo_user(self._credentials, username)
                self._pending[username] = pool.submit(self._sign_ins[username].token)
        pool.shutdown(wait=False)

    def headers(self, username: str) -> dict[str, str]:
        if username not in self._sign_ins:
            self._sign_ins[username] = demo_user(self._credentials, username)
        pending = self._pending.pop(username, None)
        if pending is not None:
            pending.result()  # a refused sign-in raises here, naming the user
        return self._sign_ins[username].headers()


# Keycloak hashes on its own threads: two cores are kept busy by three sign-ins at a time.
SIGN_INS_AT_ONCE = 3
# Sign-ins still queued when the demo ends (an error, Ctrl-C) are dropped, not waited for.
SIGN_IN_POOLS: list[ThreadPoolExecutor] = []


SOURCES = [("municipal_police", 76), ("sheriff", 11), ("court", 10), ("other", 3)]
NEEDS = [
    ("threat_to_self_or_others", 43),
    ("behavioral_needs", 39),
    ("substance_use", 10),
    ("other", 8),
]
COURT_TYPES = ["mental_health", "treatment_drug", "veterans", "circuit", "municipal", "juvenile"]
LOCATIONS = ["community", "detention", "hospital_er"]
COURSES = [
    "umh",
    "umh-youth",
    "co-occurring",
    "suicide-warning-signs",
    "civil-detention",
    "de-escalation",
    "resiliency",
    "trauma-ptsd",
]
GIVEN = ["Ann", "Ben", "Cal", "Dee", "Eli", "Fay", "Gus", "Hal", "Ida", "Jo", "Kim", "Lou"]
FAMILY = ["Ash", "Birch", "Cedar", "Dale", "Elm", "Fern", "Glen", "Heath", "Ivy", "Juniper"]
BROCHURE_REFERRALS = 43_431
BROCHURE_TRAININGS = 836
BROCHURE_OFFICERS = 12_515


def pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def progress(label: str, done: int, total: int, started: float) -> None:
    rate = done / max(time.monotonic() - started, 1e-6)
    sys.stdout.write(f"\r[demo] {label}: {done:,}/{total:,} ({rate:,.0f}/s)")
    if done == total:
        sys.stdout.write("\n")
    sys.stdout.flush()


# Referrals older than this are the program's history, imported with how they ended; newer
# ones arrive live from the agencies' systems and are worked by the liaisons.
LIVE_DAYS = 120
IMPORT_SYSTEM = "demo-history"
IMPORT_BATCH = 500


def referrals(
    count: int, rng: random.Random, run: str
) -> tuple[list[dict[str, Any]], list[AgencyReferralSubmittedV1]]:
    """Two years of referrals: the older ones as history-import records (with a status history
    drawn from CLOSINGS), the last LIVE_DAYS as live agency submissions."""
    counties = sorted(MISSOURI_COUNTIES)
    # About one person in six is referred again (DOMAIN.md: many referrals per person).
    people = [
        (
            rng.choice(GIVEN),
            rng.choice(FAMILY) + str(n),
            date(1950, 1, 1) + timedelta(days=rng.randrange(20_000)),
        )
        for n in range(max(1, count * 5 // 6))
    ]
    now = datetime.now(UTC)
    imported: list[dict[str, Any]] = []
    live = []
    for n in range(count):
        source = pick(rng, SOURCES)
        county = rng.choice(counties)
        agency_id = f"{source.replace('_', '-')}-{county}"
        agency = {
            "agency_id": agency_id,
            "source": source,
            "court_type": rng.choice(COURT_TYPES) if source == "court" else None,
        }
        given, family, born = rng.choice(people)
        reference = f"{run}-{n}"
        person = {"given_name": given, "family_name": family, "birth_date": born.isoformat()}
        referred_at = now - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
        common: dict[str, Any] = {
            "agency": agency,
            "agency_reference": reference,
            "county_fips": county,
            "primary_need": pick(rng, NEEDS),
            "person_location": rng.choice(LOCATIONS),
            "person": person,
        }
        if referred_at < now - timedelta(days=LIVE_DAYS):
            imported.append(
                common
                | {
                    "record_id": reference,
                    "referred_at": referred_at.isoformat(),
                    "history": past_statuses(referred_at, rng),
                }
            )
            continue
        live.append(
            AgencyReferralSubmittedV1.create(
                about=(agency_id, reference),
                producer="demo-seeder",
                correlation_id=reference,
                **common,
                referred_at=referred_at,
            )
        )
    return imported, live


def past_statuses(referred_at: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """How an imported referral went, as the lifecycle allows (days after the referral)."""

    def at(days: int, status: str, **more: Any) -> dict[str, Any]:
        return {"status": status, "at": (referred_at + timedelta(days=days)).isoformat()} | more

    if rng.random() < 0.1:
        return [at(1, "declined", reason="not_in_service_area")]
    steps = [at(1, "accepted")]
    match pick(rng, CLOSINGS):
        case "connected_to_treatment":
            appointment = (referred_at + timedelta(days=10)).isoformat()
            steps += [
                at(3, "appointment_scheduled", appointment_at=appointment),
                at(10, "attended"),
                at(20, "connected_to_treatment"),
            ]
        case "open":
            pass
        case closing:
            steps.append(at(rng.randrange(5, 60), closing))
    return steps


# The brochure's history (`--brochure`, what `make demo` loads): every referral up to September
# 30, 2018 and every training, in exactly the brochure's proportions, so that the annual report
# `as_of=2018-09-30` shows its figures. The program's first day is illustrative (the brochure
# does not give it); referrals grow from the first quarter to the last, as a program's do.
BROCHURE_FIRST_DAY = date(2013, 7, 1)
BROCHURE_AS_OF = date(2018, 9, 30)
BROCHURE_SYSTEM = "brochure-history"
CENTRAL = ZoneInfo("America/Chicago")


def exact_shares(weighted: list[tuple[str, int]], count: int, rng: random.Random) -> list[str]:
    """`count` values in exactly the weighted shares (largest remainders), shuffled."""
    total = sum(w for _, w in weighted)
    quotas = {v: count * w // total for v, w in weighted}
    by_remainder = sorted(weighted, key=lambda vw: -(count * vw[1] % total))
    for value, _ in by_remainder[: count - sum(quotas.values())]:
        quotas[value] += 1
    values = [v for v, n in quotas.items() for _ in range(n)]
    rng.shuffle(values)
    return values


def _brochure_moments(count: int, rng: random.Random) -> list[datetime]:
    """`count` moments over the brochure's period, in Missouri time, more of them later."""
    days = (BROCHURE_AS_OF - BROCHURE_FIRST_DAY).days + 1
    chosen = rng.choices(range(days), weights=[1 + n / days for n in range(days)], k=count)
    return sorted(
        datetime.combine(BROCHURE_FIRST_DAY + timedelta(days=d), datetime.min.time(), CENTRAL)
        + timedelta(seconds=rng.randrange(86_400))
        for d in chosen
    )


def brochure_referrals(rng: random.Random) -> list[dict[str, Any]]:
    """The brochure's 43,431 referrals as import records: sources 76/11/10/3 % and needs
    43/39/10/8 % exactly, with how each went; fixed record ids, so a re-run imports nothing."""
    count = BROCHURE_REFERRALS
    counties = sorted(MISSOURI_COUNTIES)
    people = [
        (
            rng.choice(GIVEN),
            rng.choice(FAMILY) + str(n),
            date(1940, 1, 1) + timedelta(days=rng.randrange(24_000)),
        )
        for n in range(count * 5 // 6)
    ]
    sources, needs = exact_shares(SOURCES, count, rng), exact_shares(NEEDS, count, rng)
    records = []
    for n, (referred_at, source, need) in enumerate(
        zip(_brochure_moments(count, rng), sources, needs, strict=True)
    ):
        county = rng.choice(counties)
        given, family, born = rng.choice(people)
        records.append(
            {
                "record_id": f"brochure-{n:05d}",
                "agency": {
                    "agency_id": f"{source.replace('_', '-')}-{county}",
                    "source": source,
                    "court_type": rng.choice(COURT_TYPES) if source == "court" else None,
                },
                "agency_reference": f"brochure-{n:05d}",
                "county_fips": county,
                "primary_need": need,
                "person_location": rng.choice(LOCATIONS),
                "person": {
                    "given_name": given,
                    "family_name": family,
                    "birth_date": born.isoformat(),
                },
                "referred_at": referred_at.isoformat(),
                "history": past_statuses(referred_at, rng),
            }
        )
    return records


def brochure_trainings(rng: random.Random) -> list[dict[str, Any]]:
    """The brochure's 836 trainings with 12,515 different officers (every one on a roster, some
    trained twice), held over the brochure's period, as import records."""
    officers = [
        (f"agency-{n % 400:03d}", f"O-{uuid.UUID(int=rng.getrandbits(128)).hex[:10]}")
        for n in range(BROCHURE_OFFICERS)
    ]
    rng.shuffle(officers)
    held = _brochure_moments(BROCHURE_TRAININGS, rng)
    sessions = []
    for n in range(BROCHURE_TRAININGS):
        first = n * BROCHURE_OFFICERS // BROCHURE_TRAININGS
        last = (n + 1) * BROCHURE_OFFICERS // BROCHURE_TRAININGS
        # An officer trained before comes back for another course now and then.
        again = rng.sample(officers[:first], min(first, rng.randrange(4)))
        roster = officers[first:last] + again
        sessions.append(
            {
                "record_id": f"brochure-t-{n:03d}",
                "course_id": rng.choice(COURSES),
                "held_on": held[n].date().isoformat(),
                "county_fips": rng.choice(sorted(MISSOURI_COUNTIES)),
                "host_agency_id": roster[0][0],
                "trainer_liaison_id": rng.choice(LIAISONS),
                "roster": [{"agency_id": a, "officer_ref": o} for a, o in roster],
            }
        )
    return sessions


async def import_trainings(
    base_url: str, people: DemoSignIns, records: list[dict[str, Any]], system: str
) -> None:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:
        for start in range(0, len(records), 200):
            response = await client.post(
                "/api/v1/imports/trainings",
                headers=people.headers(IMPORT_USER),
                json={"system": system, "records": records[start : start + 200]},
            )
            if response.status_code != 200 or response.json()["rejected"]:
                raise SystemExit(
                    f"training import refused: {response.status_code} {response.text[:300]}"
                )
            done = min(start + 200, len(records))
            progress("past trainings imported", done, len(records), started)


async def show_brochure(base_url: str, people: DemoSignIns) -> None:
    """The brochure's figures as the reporting service publishes them as of September 30, 2018,
    next to the brochure's own."""
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        response = await client.get(
            "/api/v1/metrics/statewide",
            headers=people.headers(METRICS_USER),
            params={"as_of": BROCHURE_AS_OF.isoformat()},
        )
    if response.status_code != 200:
        print(f"[demo] the statewide metrics answered {response.status_code}: {response.text}")
        return
    body = response.json()
    referrals, trainings = body["referrals"], body["trainings"]
    sources = " / ".join(f"{referrals['by_source_percent'].get(s, 0):g}" for s, _ in SOURCES)
    needs = " / ".join(
        f"{referrals['by_presenting_need_percent'].get(n, 0):g}" for n, _ in NEEDS[:2]
    )
    print(f"[demo] as of {BROCHURE_AS_OF:%B %-d, %Y} (brochure's figure in brackets):")
    print(f"[demo]   referrals {referrals['total']:,} [43,431]")
    print(f"[demo]   sources, % (police, sheriffs, courts, other) {sources} [76 / 11 / 10 / 3]")
    print(f"[demo]   needs, % (threat to self or others, behavioral) {needs} [43 / 39]")
    print(
        f"[demo]   trainings {trainings['sessions']:,} [836], officers trained "
        f"{trainings['officers_trained']:,} [12,515]"
    )
    print("[demo] the annual report: /reports/annual?as_of=2018-09-30 on the reporting service")


async def import_history(
    base_url: str, people: DemoSignIns, records: list[dict[str, Any]], system: str = ""
) -> int:
    """The history through the referral service's import (POST /api/v1/imports/referrals, as
    the program admin), in batches; a re-run finds every record imported before. Returns how
    many were imported now."""
    started = time.monotonic()
    totals: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:
        for start in range(0, len(records), IMPORT_BATCH):
            batch = {
                "system": system or IMPORT_SYSTEM,
                "records": records[start : start + IMPORT_BATCH],
            }
            response = await client.post(
                "/api/v1/imports/referrals", json=batch, headers=people.headers(IMPORT_USER)
            )
            if response.status_code != 200:
                raise SystemExit(
                    f"\n[demo] the import was refused: {response.status_code} "
                    f"{response.text[:300]}; see deploy/local/state/logs/referral.log"
                )
            result = response.json()
            totals["imported"] += result["imported"]
            totals["imported before"] += result["already_imported"]
            for rejection in result["rejected"]:
                totals["rejected"] += 1
                print(f"\n[demo] record {rejection['record_id']} rejected: {rejection['reason']}")
            done = min(start + IMPORT_BATCH, len(records))
            progress("past referrals imported", done, len(records), started)
    print("[demo] history import: " + ", ".join(f"{k} {v:,}" for k, v in sorted(totals.items())))
    return totals["imported"]


async def send_referrals(access: KafkaAccess, events: list[AgencyReferralSubmittedV1]) -> None:
    """As the demo's sender principal, which may write the intake topic and nothing else."""
    producer = AIOKafkaProducer(
        **access.client_options(), acks="all", enable_idempotence=True, linger_ms=20
    )
    await producer.start()
    started = time.monotonic()
    try:
        for start in range(0, len(events), 500):
            chunk = events[start : start + 500]
            futures = [
                await producer.send(
                    AgencyReferralSubmittedV1.topic(),
                    e.model_dump_json().encode(),
                    key=e.kafka_key(),
                )
                for e in chunk
            ]
            await asyncio.gather(*futures)
            progress("referrals sent to the agency topic", start + len(chunk), len(events), started)
    finally:
        await producer.stop()


async def post_trainings(
    base_url: str, people: DemoSignIns, sessions: int, officers: int, rng: random.Random
) -> None:
    """Two years of sessions: the past ones through the training import (as the program admin,
    one batch), the last month's through the API as their trainers record them."""
    counties = sorted(MISSOURI_COUNTIES)
    officer_pool = [
        (f"agency-{n % 400:03d}", f"O-{uuid.UUID(int=rng.getrandbits(128)).hex[:10]}")
        for n in range(officers)
    ]
    rng.shuffle(officer_pool)
    today = datetime.now(UTC).date()
    past: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:
        for n in range(sessions):
            # Every officer of the pool on one roster: the unique count is the pool's size.
            first, last = n * officers // sessions, (n + 1) * officers // sessions
            roster = officer_pool[first:last] or [rng.choice(officer_pool)]
            trainer = f"liaison-{rng.randrange(31) + 1:02d}"
            held_on = today - timedelta(days=rng.randrange(2 * 365))
            session = {
                "course_id": rng.choice(COURSES),
                "held_on": held_on.isoformat(),
                "county_fips": rng.choice(counties),
                "host_agency_id": roster[0][0],
                "roster": [{"agency_id": a, "officer_ref": o} for a, o in roster],
            }
            if held_on < today - timedelta(days=30):
                past.append(
                    session | {"record_id": f"t-{n}-{held_on}", "trainer_liaison_id": trainer}
                )
                continue
            response = await client.post(
                "/api/v1/training-sessions",
                headers=people.headers(trainer),
                json=session | {"capacity": max(40, len(roster))},
            )
            if response.status_code not in (200, 201):
                raise SystemExit(
                    f"training session rejected: {response.status_code} {response.text[:300]}"
                )
    await import_trainings(base_url, people, past, IMPORT_SYSTEM)


async def counted_referrals(client: httpx.AsyncClient, people: DemoSignIns) -> int | None:
    """The statewide referral total, or None while the service cannot say (starting, busy)."""
    headers = people.headers(METRICS_USER)  # a refused sign-in stops the demo, naming the user
    try:
        response = await client.get("/api/v1/metrics/statewide", headers=headers)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    shown = response.json()["referrals"]["total"]
    # Published counts of 1-10 are "suppressed" (small-cell rule): not there yet.
    return shown if isinstance(shown, int) else 0


async def referrals_before(base_url: str, people: DemoSignIns) -> int:
    """What earlier runs left counted, so that waiting looks for this run's referrals."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        return await counted_referrals(client, people) or 0


async def wait_for_metrics(
    base_url: str, people: DemoSignIns, target: int, stall_seconds: float
) -> None:
    """Polls the statewide metrics until they count `target` referrals, showing progress; gives
    up (saying so) only when the count has not moved for `stall_seconds`."""
    started = last_move = time.monotonic()
    total = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        while total < target:
            counted = await counted_referrals(client, people)
            now = time.monotonic()
            if counted is not None and counted > total:
                total, last_move = counted, now
            elapsed = now - started
            sys.stdout.write(
                f"\r[demo] referrals counted in the statewide metrics: {total:,}/{target:,} "
                f"({elapsed:.0f}s)"
            )
            sys.stdout.flush()
            if now - last_move > stall_seconds:
                print(
                    f"\n[demo] the count has not moved for {stall_seconds:.0f}s: see "
                    "deploy/local/state/logs/ (reporting.log, referral.log)"
                )
                return
            await asyncio.sleep(1)  # one indexed read: polling often costs nothing
    print(f"\n[demo] all {target:,} referrals counted after {time.monotonic() - started:.0f}s")


# Where referrals end (shares of accepted referrals), and follow-up outcomes: synthetic, chosen
# to look like a program that connects most people it reaches.
CLOSINGS = [
    ("connected_to_treatment", 45),
    ("declined_by_person", 15),
    ("lost_to_follow_up", 15),
    ("unable_to_contact", 10),
    ("open", 15),
]
OUTCOMES = [
    ("engaged_in_treatment", 30),
    ("reached", 20),
    ("appointment_kept", 15),
    ("unable_to_contact", 12),
    ("hospitalized", 8),
    ("arrested_or_jailed", 6),
    ("court_mandated_treatment", 5),
    ("housing_stable", 4),
]
LIAISONS = [f"liaison-{n:02d}" for n in range(1, 32)]


async def _work_caseload(
    client: httpx.AsyncClient, headers: dict[str, str], limit: int, rng: random.Random
) -> Counter[str]:
    """Accepts or declines up to `limit` received referrals, records contacts, closes some."""
    done: Counter[str] = Counter()
    listed = await client.get(
        "/api/v1/referrals", headers=headers, params={"status": "received", "limit": 200}
    )
    if listed.status_code != 200:
        done["caseload_errors"] += 1
        return done
    for row in listed.json()["data"][:limit]:
        url = f"/api/v1/referrals/{row['referral_id']}"
        steps: list[dict[str, Any]] = []
        if rng.random() < 0.1:
            steps.append({"status": "declined", "reason": "not_in_service_area"})
        else:
            steps.append({"status": "accepted"})
            closing = pick(rng, CLOSINGS)
            if closing != "open":
                steps.append({"status": closing})
        for step in steps:
            response = await client.post(f"{url}/status", headers=headers, json=step)
            done[step["status"] if response.status_code == 200 else "status_errors"] += 1
            if step["status"] == "accepted":
                for _ in range(rng.randrange(1, 3)):
                    contact = {"place": rng.choice(LOCATIONS), "reached": rng.random() < 0.7}
                    answer = await client.post(f"{url}/contacts", headers=headers, json=contact)
                    done["contacts" if answer.status_code in (200, 201) else "contact_errors"] += 1
    return done


async def _record_outcomes(
    client: httpx.AsyncClient, headers: dict[str, str], rng: random.Random
) -> Counter[str]:
    done: Counter[str] = Counter()
    listed = await client.get(
        "/api/v1/follow-ups", headers=headers, params={"state": "due", "limit": 500}
    )
    if listed.status_code != 200:
        return done
    for row in listed.json()["data"]:
        if rng.random() < 0.7:
            response = await client.post(
                f"/api/v1/follow-ups/{row['follow_up_id']}/outcome",
                headers=headers,
                json={"outcome": pick(rng, OUTCOMES)},
            )
            done["outcomes" if response.status_code in (200, 201) else "outcome_errors"] += 1
    return done


async def work_lifecycle(
    referral_url: str,
    followup_url: str,
    people: DemoSignIns,
    per_liaison: int,
    rng: random.Random,
    budget_seconds: float,
) -> None:
    """Liaisons work their caseloads through the referral and follow-up APIs: status changes,
    contact attempts and follow-up outcomes, so the funnel and outcomes show on the dashboard.
    Within a time budget: on FerretDB a caseload list scans every referral (MongoDB, in
    production, reads an index), so after the full history each list takes seconds."""
    totals: Counter[str] = Counter()
    started = time.monotonic()
    async with (
        httpx.AsyncClient(base_url=referral_url, timeout=120) as referrals,
        httpx.AsyncClient(base_url=followup_url, timeout=120) as followups,
    ):
        for n, liaison in enumerate(LIAISONS, start=1):
            if time.monotonic() - started > budget_seconds:
                print(f"\n[demo] lifecycle: time budget spent after {n - 1} liaisons' caseloads")
                break
            headers = people.headers(liaison)
            try:
                totals += await _work_caseload(referrals, headers, per_liaison, rng)
                totals += await _record_outcomes(followups, headers, rng)
            except httpx.TimeoutException:
                totals["timeouts"] += 1
            progress("liaisons' caseloads worked", n, len(LIAISONS), started)
    print("[demo] lifecycle: " + ", ".join(f"{k} {v:,}" for k, v in sorted(totals.items())))


class Steps:
    """How long each step of the demo took, printed at the end."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, float]] = []
        self.started = time.monotonic()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.taken.append((name, time.monotonic() - started))

    def report(self) -> None:
        for name, seconds in self.taken:
            print(f"[demo] {seconds:8.1f} s  {name}")
        print(f"[demo] {time.monotonic() - self.started:8.1f} s  in all")


SERVICE_DATABASES = ("cmhl_referral", "cmhl_followup", "cmhl_training", "cmhl_placement")


async def wait_settled(mongo_uri: str, stall_seconds: float) -> None:
    """Until every service's outbox is sent and no durable timer is due: each check is one
    indexed look-up, so waiting costs nothing however long the history."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    started = time.monotonic()
    try:
        while True:
            pending = []
            for name in SERVICE_DATABASES:
                db = client[name]
                if await db["outbox_markers"].find_one({}, {"_id": 1}):
                    pending.append(f"{name} outbox")
                due = {"fire_at": {"$lte": datetime.now(UTC)}}
                if await db["timers"].find_one(due, {"_id": 1}):
                    pending.append(f"{name} timers")
            if not pending:
                return
            if time.monotonic() - started > stall_seconds:
                print(f"[demo] still not settled after {stall_seconds:.0f}s: {pending}")
                return
            sys.stdout.write(
                f"\r[demo] settling: {', '.join(pending)} ({time.monotonic() - started:.0f}s)"
            )
            sys.stdout.flush()
            await asyncio.sleep(1)
    finally:
        await client.close()


def settle(steps: Steps, args: argparse.Namespace) -> None:
    """Waits until every outbox is sent and no timer is due, on the local stack only: its folder
    names the database administrator. The demo's container (compose) has no test helpers."""
    if args.kafka and args.training_url and args.reporting_url:
        return
    from cmhl_servicekit.testing import stack_mongo_uri

    with steps("settled: outboxes sent, due timers fired"):
        asyncio.run(wait_settled(stack_mongo_uri(args.state_dir), 600))


def load_reference_data(steps: Steps, args: argparse.Namespace, people: DemoSignIns) -> None:
    """What a program enters before its first referral, through the services' APIs as its
    admin: the CMHCs' service areas and their liaisons (so referrals, imported ones included,
    are assigned by the registry), the treatment directory and the facilities. A re-run stores
    nothing twice."""
    with steps("registry of CMHCs and liaisons loaded (illustrative service areas)"):
        asyncio.run(load_registry(args.referral_url, people, IMPORT_USER))
    with steps("treatment directory imported (illustrative HSDS package)"):
        asyncio.run(import_directory(args.referral_url, people, IMPORT_USER))
    with steps("demo facilities registered through the placement registry API"):
        asyncio.run(load_facilities(args.state_dir, people, IMPORT_USER))


def brochure(
    args: argparse.Namespace, reporting_url: str, training_url: str, people: DemoSignIns
) -> None:
    """`make demo`: the brochure's history, imported once (a re-run imports nothing), counted,
    and its figures shown as the reporting service publishes them."""
    rng = random.Random(2018 if args.seed is None else args.seed)
    steps = Steps()
    earlier = asyncio.run(referrals_before(reporting_url, people)) if args.wait else 0
    load_reference_data(steps, args, people)
    records = brochure_referrals(rng)
    with steps(f"{len(records):,} referrals of the brochure's history imported"):
        new = asyncio.run(import_history(args.referral_url, people, records, BROCHURE_SYSTEM))
    with steps(f"{BROCHURE_TRAININGS} trainings of {BROCHURE_OFFICERS:,} officers imported"):
        sessions = brochure_trainings(rng)
        asyncio.run(import_trainings(training_url, people, sessions, BROCHURE_SYSTEM))
    if args.wait:
        with steps("every referral counted in the statewide metrics"):
            asyncio.run(wait_for_metrics(reporting_url, people, earlier + new, 600))
        settle(steps, args)
        asyncio.run(show_brochure(reporting_url, people))
        if earlier:
            # Years of empty quarters between 2018 and a few recent referrals make every
            # cumulative total in between equal, so protecting the recent small counts hides
            # them all on the publication grid (ADR 0009).
            print(
                f"[demo] this state folder held {earlier:,} referrals before (from `make up`): "
                "the public annual report may show the 2018 totals as suppressed. For the "
                "brochure's public page, load it into a fresh state folder: `make down`, move "
                "deploy/local/state aside, `make demo`."
            )
    steps.report()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--referrals", type=int, default=BROCHURE_REFERRALS)
    parser.add_argument("--trainings", type=int, default=BROCHURE_TRAININGS)
    parser.add_argument(
        "--officers",
        type=int,
        default=None,
        help="unique officers (default: in the brochure's proportion)",
    )
    parser.add_argument(
        "--lifecycle",
        type=int,
        default=None,
        help="referrals each of the 31 liaisons works through the lifecycle "
        "after --wait (default: a tenth of the referrals over the liaisons, at most 200 each)",
    )
    parser.add_argument(
        "--brochure",
        action="store_true",
        help="load the brochure's history up to September 30, 2018 in its exact proportions "
        "(what `make demo` does; --referrals and --trainings are then ignored)",
    )
    parser.add_argument(
        "--reference-data",
        action="store_true",
        help="load only the registry, the directory and the facilities, no referral (what a "
        "program enters first; the e2e tests' stack)",
    )
    parser.add_argument("--state-dir", type=Path, default=HERE / "state")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--wait", action="store_true", help="wait until the statewide metrics count the referrals"
    )
    parser.add_argument(
        "--lifecycle-seconds",
        type=float,
        default=300,
        help="time budget for working the caseloads after --wait (default: 300)",
    )
    parser.add_argument("--kafka", help="bootstrap servers (default: the local stack's)")
    parser.add_argument("--training-url", help="training service (default: the local stack's)")
    parser.add_argument("--reporting-url", help="reporting service (default: the local stack's)")
    parser.add_argument("--referral-url", help="referral service (default: the local stack's)")
    parser.add_argument("--followup-url", help="follow-up service (default: the local stack's)")
    args = parser.parse_args()
    if args.kafka and args.training_url and args.reporting_url:
        training_url, reporting_url = args.training_url, args.reporting_url
        # Compose's demo service: CMHL_KAFKA_USERNAME / CMHL_KAFKA_PASSWORD name its principal.
        kafka = KafkaAccess.from_env(args.kafka)
        people = DemoSignIns(
            {
                "issuer": os.environ["CMHL_DEMO_ISSUER"],
                "test_client": {"client_id": "cmhl-test"},
                "keys": {"demo_password": os.environ["CMHL_DEMO_PASSWORD"]},
            }
        )
    else:
        stack: dict[str, Any] = json.loads((args.state_dir / "stack.json").read_text())
        creds: dict[str, Any] = json.loads((args.state_dir / "credentials.json").read_text())
        kafka = KafkaAccess(
            f"127.0.0.1:{stack['kafka_port']}",
            DEMO_SENDER,
            creds["kafka_principals"][DEMO_SENDER],
            "SASL_PLAINTEXT",
        )
        training_url = f"http://127.0.0.1:{stack['service_ports']['training']}"
        reporting_url = f"http://127.0.0.1:{stack['service_ports']['reporting']}"
        args.referral_url = args.referral_url or (
            f"http://127.0.0.1:{stack['service_ports']['referral']}"
        )
        args.followup_url = args.followup_url or (
            f"http://127.0.0.1:{stack['service_ports']['followup']}"
        )
        people = DemoSignIns(creds)
    if not args.referral_url:
        parser.error(
            "--referral-url is needed: the history is imported through the referral service"
        )
    if args.reference_data:
        steps = Steps()
        load_reference_data(steps, args, people)
        steps.report()
        return
    if args.brochure:
        brochure(args, reporting_url, training_url, people)
        return
    rng = random.Random(args.seed)
    officers = args.officers or round(args.trainings * BROCHURE_OFFICERS / BROCHURE_TRAININGS)
    run = uuid.uuid4().hex[:8]
    steps = Steps()
    people.sign_in_ahead([METRICS_USER, IMPORT_USER, *LIAISONS])
    earlier = asyncio.run(referrals_before(reporting_url, people)) if args.wait else 0
    past, live = referrals(args.referrals, rng, run)
    load_reference_data(steps, args, people)
    with steps("consultations and barriers recorded (illustrative, the last 60 days)"):
        today = datetime.now(CENTRAL).date()
        asyncio.run(record_activity(args.referral_url, people, today))
    with steps(f"{len(past):,} past referrals imported (history)"):
        asyncio.run(import_history(args.referral_url, people, past))
    with steps(f"{len(live):,} recent referrals sent to the agency topic"):
        asyncio.run(send_referrals(kafka, live))
    with steps("trainings posted"):
        asyncio.run(post_trainings(training_url, people, args.trainings, officers, rng))
    print(
        f"[demo] sent {args.referrals:,} referrals and {args.trainings:,} trainings "
        f"({officers:,} officers)"
    )
    if args.wait:
        with steps("every referral counted in the statewide metrics"):
            asyncio.run(wait_for_metrics(reporting_url, people, earlier + args.referrals, 600))
        settle(steps, args)
        # Referrals exist now: liaisons work part of them through the lifecycle.
        if args.referral_url and args.followup_url:
            per_liaison = args.lifecycle
            if per_liaison is None:
                per_liaison = min(200, max(1, args.referrals // 10 // len(LIAISONS)))
            asyncio.run(
                work_lifecycle(
                    args.referral_url,
                    args.followup_url,
                    people,
                    per_liaison,
                    rng,
                    budget_seconds=args.lifecycle_seconds,
                )
            )
    steps.report()


if __name__ == "__main__":
    try:
        main()
    finally:
        for sign_ins in SIGN_IN_POOLS:
            sign_ins.shutdown(wait=False, cancel_futures=True)
