"""The fault suite's ground truth: a mixed event stream with duplicates and malformed records,
the counts its distinct events imply, and the comparison with what reporting publishes.

Every stream lives in a time window of its own (one day, years before any other test's data), so
the statewide metrics of that window are about this stream alone, whatever else the shared topics
hold. Counts are kept large so no cell falls under small-cell suppression."""

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaProducer
from httpx import AsyncClient

from cmhl_contracts import (
    FollowUpDueV1,
    FollowUpScheduledV1,
    IntegrationEvent,
    ReferralCreatedV1,
    TrainingCompletedV1,
)
from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import KafkaProbe, bearer, eventually, kafka_test_access

SOURCES = ["municipal_police"] * 76 + ["sheriff"] * 11 + ["court"] * 10 + ["other"] * 3
NEEDS = ["threat_to_self_or_others"] * 43 + ["behavioral_needs"] * 39 + ["substance_use"] * 18
# The streams' windows are free windows: for a role that may see records.
CHICAGO = ZoneInfo("America/Chicago")
RECORDS_READER = bearer("fault-checker", Role.PRIVACY_OFFICER)
LIAISON = bearer("liaison-01", Role.LIAISON, cmhc_id="cmhc-01")


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes


@dataclass
class GroundTruth:
    window_start: datetime
    distinct: list[IntegrationEvent] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    malformed: list[Record] = field(default_factory=list)
    by_source: Counter[str] = field(default_factory=Counter)
    by_need: Counter[str] = field(default_factory=Counter)
    due: int = 0
    sessions: int = 0
    officers: set[str] = field(default_factory=set)

    @property
    def window(self) -> dict[str, str]:
        end = self.window_start + timedelta(days=1)
        return {"start": self.window_start.isoformat(), "end": end.isoformat()}

    def expected(self) -> dict[str, Any]:
        return {
            "referrals.total": sum(self.by_source.values()),
            "referrals.by_source": dict(self.by_source),
            "referrals.by_presenting_need": dict(self.by_need),
            "follow_ups.due": self.due,
            "trainings.sessions": self.sessions,
            "trainings.officers_trained": len(self.officers),
        }


def mixed_stream(
    events: int, *, duplicates: float = 0.05, malformed: float = 0.01, seed: int | None = None
) -> GroundTruth:
    """About `events` records: referrals with follow-ups due, a few trainings, then `duplicates`
    of them again (same event id, later offset) and `malformed` broken records."""
    rng = random.Random(seed)
    day = date(1995, 1, 1) + timedelta(days=rng.randrange(3650))
    # A day of the program (America/Chicago): the metrics count whole days there.
    truth = GroundTruth(datetime(day.year, day.month, day.day, tzinfo=CHICAGO))
    counties = sorted(MISSOURI_COUNTIES)
    people = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(events // 3)]
    officers = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(60)]
    target = int(events / (1 + duplicates + malformed))
    while len(truth.distinct) < target:
        if rng.random() < 0.01:
            _add_training(truth, rng, officers)
        else:
            _add_referral(truth, rng, rng.choice(people), rng.choice(counties))
    records = [_record(e) for e in truth.distinct]
    records += [rng.choice(records) for _ in range(int(target * duplicates))]
    truth.malformed = [_malformed(rng, n) for n in range(int(target * malformed))]
    records += truth.malformed
    rng.shuffle(records)
    truth.records = records
    return truth


def _add_referral(truth: GroundTruth, rng: random.Random, person: str, county: str) -> None:
    referral_id = uuid.UUID(int=rng.getrandbits(128))
    source, need = rng.choice(SOURCES), rng.choice(NEEDS)
    referred_at = truth.window_start + timedelta(seconds=rng.randrange(86_400))
    truth.distinct.append(
        ReferralCreatedV1.create(
            about=(str(referral_id),),
            producer="fault-suite",
            correlation_id=f"fault-{referral_id}",
            referral_id=referral_id,
            person_id=person,
            agency_id="fault-pd",
            source=source,
            court_type="mental_health" if source == "court" else None,
            county_fips=county,
            primary_need=need,
            person_location="community",
            liaison_id="liaison-01",
            cmhc_id="cmhc-01",
            referred_at=referred_at,
            repeat_involvement=False,
        )
    )
    truth.by_source[source] += 1
    truth.by_need[need] += 1
    follow_up: dict[str, Any] = {
        "follow_up_id": uuid.UUID(int=rng.getrandbits(128)),
        "referral_id": referral_id,
        "liaison_id": "liaison-01",
        "due_at": referred_at + timedelta(days=7),
        "referred_at": referred_at,
    }
    about = (str(follow_up["follow_up_id"]),)
    truth.distinct.append(
        FollowUpScheduledV1.create(
            about=about,
            producer="fault-suite",
            correlation_id="fault",
            person_id=person,
            kind="scheduled_check",
            **follow_up,
        )
    )
    if rng.random() < 0.6:
        truth.distinct.append(
            FollowUpDueV1.create(
                about=about, producer="fault-suite", correlation_id="fault", **follow_up
            )
        )
        truth.due += 1


def _add_training(truth: GroundTruth, rng: random.Random, officers: list[str]) -> None:
    session_id = uuid.UUID(int=rng.getrandbits(128))
    roster = rng.sample(officers, 8)
    truth.distinct.append(
        TrainingCompletedV1.create(
            about=(str(session_id), "1"),
            producer="fault-suite",
            correlation_id="fault",
            session_id=session_id,
            revision=1,
            course_id="de-escalation",
            county_fips="29019",
            host_agency_id="fault-pd",
            trainer_liaison_id="liaison-01",
            held_on=truth.window_start.date(),
            credit_hours=4,
            officer_ids=roster,
            officer_agency_ids=["fault-pd"] * len(roster),
        )
    )
    truth.sessions += 1
    truth.officers.update(roster)


def _record(event: IntegrationEvent) -> Record:
    return Record(type(event).topic(), event.kafka_key(), event.model_dump_json().encode())


def _malformed(rng: random.Random, n: int) -> Record:
    """Broken in the ways agency and producer bugs break things: not JSON, a missing field,
    a value outside the vocabulary."""
    key = f"malformed-{uuid.UUID(int=rng.getrandbits(128))}".encode()
    kind = n % 3
    if kind == 0:
        return Record(ReferralCreatedV1.topic(), key, b"{not json")
    if kind == 1:
        return Record(FollowUpDueV1.topic(), key, b'{"event_type": "follow-up-due"}')
    return Record(
        ReferralCreatedV1.topic(),
        key,
        b'{"event_id": "00000000-0000-0000-0000-000000000000", "source": "neighbour"}',
    )


async def send_records(bootstrap: str, records: list[Record]) -> None:
    """Sends in pipelined batches (acks=all, idempotent), much faster than one by one."""
    producer = AIOKafkaProducer(
        **kafka_test_access(bootstrap).client_options(),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )
    await producer.start()
    try:
        for start in range(0, len(records), 500):
            batch = records[start : start + 500]
            sent = [await producer.send(r.topic, r.value, key=r.key) for r in batch]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _pick(metrics: dict[str, Any], path: str) -> Any:
    value: Any = metrics
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


async def published(client: AsyncClient, truth: GroundTruth) -> dict[str, Any]:
    """What reporting publishes for the stream's window, in the shape of `expected()`."""
    answer = await client.get(
        "/api/v1/metrics/statewide", params=truth.window, headers=RECORDS_READER
    )
    if answer.status_code != 200:
        return {"status": answer.status_code}
    metrics = answer.json()
    return {path: _pick(metrics, path) for path in truth.expected()}


async def matches(client: AsyncClient, truth: GroundTruth) -> bool:
    return await published(client, truth) == truth.expected()


def body(n: int, referred_at: datetime) -> dict[str, Any]:
    return {
        "agency": {"agency_id": "stl-pd", "source": "municipal_police"},
        "county_fips": "29510",
        "primary_need": "behavioral_needs",
        "person_location": "community",
        "person": {"given_name": f"Test{n}", "family_name": "Outage", "birth_date": "1990-01-01"},
        "referred_at": referred_at.isoformat(),
    }


async def post_at_fixed_rate(
    client: AsyncClient,
    window_start: datetime,
    rate: int,
    seconds: int,
    on_tick: Mapping[int, Callable[[], Awaitable[None]]],
) -> list[tuple[int, str | None]]:
    """Open loop: request n starts at n/rate seconds whatever earlier answers took (a closed loop
    would slow down with the server and hide the queueing); `on_tick[n]` runs just before
    request n. Referral n is referred at window_start + n seconds. Returns (status, id)s."""
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def one(n: int) -> tuple[int, str | None]:
        referred_at = window_start + timedelta(seconds=n)
        answer = await client.post("/api/v1/referrals", json=body(n, referred_at), headers=LIAISON)
        referral_id = answer.json().get("referral_id") if answer.status_code == 201 else None
        return answer.status_code, referral_id

    tasks = []
    for n in range(rate * seconds):
        await asyncio.sleep(max(0.0, began + n / rate - loop.time()))
        if n in on_tick:
            await on_tick[n]()
        tasks.append(asyncio.create_task(one(n)))
    return await asyncio.gather(*tasks)


async def verify_answered_referrals(
    answers: list[tuple[int, str | None]],
    referrals: AsyncClient,
    metrics: AsyncClient,
    bootstrap: str,
    window_start: datetime,
) -> tuple[set[str], int]:
    """The guarantees under a broker fault: only 201 or an honest 503, never a 500; every 201
    is stored, published once as an event (repeats share its id) and counted by reporting.
    Returns the created referral ids and how many records carried them."""
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {201, 503}, statuses
    created = {referral_id for status, referral_id in answers if status == 201 and referral_id}
    for referral_id in created:
        stored = await referrals.get(f"/api/v1/referrals/{referral_id}", headers=LIAISON)
        assert stored.status_code == 200, referral_id
    probe = KafkaProbe(bootstrap)
    await probe.start()
    try:
        keys = {r.encode() for r in created}
        records = await probe.collect(
            [ReferralCreatedV1.topic()],
            lambda r: r.key in keys,
            expect=len(created),
            distinct=lambda r: r.key,  # a relay retry repeats a referral's event
            timeout=300,
            settle=2.0,
        )
    finally:
        await probe.stop()
    published = {str(ReferralCreatedV1.model_validate_json(r.value).referral_id) for r in records}
    assert published == created  # every answered referral, and none other
    window = {
        "start": window_start.isoformat(),
        "end": (window_start + timedelta(days=1)).isoformat(),
    }

    async def counted() -> bool:
        answer = await metrics.get(
            "/api/v1/metrics/statewide", params=window, headers=RECORDS_READER
        )
        return bool(
            answer.status_code == 200 and _pick(answer.json(), "referrals.total") == len(created)
        )

    await eventually(counted, timeout=300, interval=1.0)
    return created, len(records)


def referral_created(referral_id: uuid.UUID, referred_at: datetime) -> ReferralCreatedV1:
    """One referral event about a new pseudonymous person, for scenarios that need only that."""
    return ReferralCreatedV1.create(
        about=(str(referral_id),),
        producer="fault-suite",
        correlation_id=f"fault-{referral_id}",
        referral_id=referral_id,
        person_id=uuid.uuid4().hex,
        agency_id="stl-pd",
        source="municipal_police",
        county_fips="29510",
        primary_need="threat_to_self_or_others",
        person_location="detention",
        liaison_id="liaison-07",
        cmhc_id="cmhc-03",
        referred_at=referred_at,
        repeat_involvement=False,
    )
