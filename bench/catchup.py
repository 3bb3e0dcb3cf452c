"""Projection catch-up: a backlog on the projected topics, then the reporting service started
cold, against a deliberately naive projector over the same backlog in the same run.

    python -m bench.catchup [--events 100000] [--naive-events 5000] [--profile]

The stack's own services are stopped first (the follow-up service and the stack's reporting
service would otherwise consume the same backlog and share the two cores); `stack_up` in a later
benchmark starts them again. The reporting process gets a fresh database and consumer-group
prefix, so it starts from offset 0 of every topic: the backlog is everything on those topics.
It is caught up when its groups' committed offsets reach the end offsets taken before it
started. The naive projector (one `$inc` upsert per event, one offset commit per event) runs
over the first `--naive-events` of the same backlog, in a fresh database: it only gets slower
as its collections grow, so the ratio is, if anything, flattering to the naive one."""

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from pymongo import AsyncMongoClient

from bench.common import (
    COUNTIES,
    NEEDS,
    TMP,
    Sampler,
    Stack,
    committed_by_prefix,
    end_offsets,
    free_port,
    load_stack,
    remaining,
    run_id,
    say,
    start_profile,
    stop_services,
    summarize_profile,
    write_result,
)
from cmhl_contracts import (
    FollowUpCompletedV1,
    FollowUpDueV1,
    FollowUpScheduledV1,
    IntegrationEvent,
    ReferralContactAttemptedV1,
    ReferralCreatedV1,
    ReferralStatusChangedV1,
    TrainingCompletedV1,
)
from cmhl_servicekit.testing import kafka_test_access

TOPICS = [
    e.topic()
    for e in (
        ReferralCreatedV1,
        ReferralStatusChangedV1,
        ReferralContactAttemptedV1,
        FollowUpScheduledV1,
        FollowUpDueV1,
        FollowUpCompletedV1,
        TrainingCompletedV1,
    )
]
MODELS: dict[str, type[IntegrationEvent]] = {
    e.topic(): e
    for e in (
        ReferralCreatedV1,
        ReferralStatusChangedV1,
        ReferralContactAttemptedV1,
        FollowUpScheduledV1,
        FollowUpDueV1,
        FollowUpCompletedV1,
        TrainingCompletedV1,
    )
}


def stories(count: int, run: str, seed: int = 7) -> Iterator[IntegrationEvent]:
    """About five events per referral (created, accepted, contact, follow-ups), and a training
    session every 50 referrals, until `count` events."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    produced = 0
    n = 0
    while produced < count:
        n += 1
        referral_id = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-{run}-{n}")
        person = uuid.uuid5(uuid.NAMESPACE_URL, f"person-{run}-{n % 9000}").hex
        referred_at = now - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
        source = rng.choice(["municipal_police"] * 8 + ["sheriff", "court", "other"])
        common: dict[str, Any] = {
            "referral_id": referral_id,
            "liaison_id": "liaison-01",
            "cmhc_id": "cmhc-01",
        }
        about = (str(referral_id),)
        events: list[IntegrationEvent] = [
            ReferralCreatedV1.create(
                about=about,
                producer="bench",
                correlation_id=run,
                person_id=person,
                agency_id="bench-pd",
                source=source,
                court_type="mental_health" if source == "court" else None,
                county_fips=rng.choice(COUNTIES),
                primary_need=rng.choice(NEEDS),
                person_location="community",
                referred_at=referred_at,
                repeat_involvement=False,
                **common,
            ),
            ReferralStatusChangedV1.create(
                about=(*about, "1"),
                producer="bench",
                correlation_id=run,
                person_id=person,
                from_status="received",
                to_status="accepted",
                sequence=1,
                changed_at=referred_at + timedelta(hours=2),
                referred_at=referred_at,
                **common,
            ),
        ]
        if rng.random() < 0.6:
            events.append(
                ReferralContactAttemptedV1.create(
                    about=(*about, "c1"),
                    producer="bench",
                    correlation_id=run,
                    person_id=person,
                    sequence=1,
                    attempted_at=referred_at + timedelta(hours=5),
                    referred_at=referred_at,
                    place="community",
                    reached=rng.random() < 0.7,
                    **common,
                )
            )
        follow_up: dict[str, Any] = {
            "follow_up_id": uuid.uuid5(referral_id, "7"),
            "referral_id": referral_id,
            "liaison_id": "liaison-01",
            "due_at": referred_at + timedelta(days=7),
            "referred_at": referred_at,
        }
        events.append(
            FollowUpScheduledV1.create(
                about=(*about, "f7"),
                producer="bench",
                correlation_id=run,
                person_id=person,
                kind="scheduled_check",
                **follow_up,
            )
        )
        if rng.random() < 0.5:
            events.append(
                FollowUpDueV1.create(
                    about=(*about, "f7due"), producer="bench", correlation_id=run, **follow_up
                )
            )
            if rng.random() < 0.7:
                events.append(
                    FollowUpCompletedV1.create(
                        about=(*about, "f7done"),
                        producer="bench",
                        correlation_id=run,
                        outcome="reached",
                        completed_at=referred_at + timedelta(days=8),
                        overdue=False,
                        **follow_up,
                    )
                )
        if n % 50 == 0:
            officers = [uuid.uuid5(referral_id, f"o{i}").hex for i in range(10)]
            events.append(
                TrainingCompletedV1.create(
                    about=(str(referral_id), "training"),
                    producer="bench",
                    correlation_id=run,
                    session_id=uuid.uuid5(referral_id, "training"),
                    revision=1,
                    course_id="de-escalation",
                    county_fips=rng.choice(COUNTIES),
                    host_agency_id="bench-pd",
                    trainer_liaison_id="liaison-01",
                    held_on=date(2024, 1, 1) + timedelta(days=n % 600),
                    credit_hours=2.0,
                    officer_ids=officers,
                    officer_agency_ids=["bench-pd"] * len(officers),
                )
            )
        yield from events[: count - produced]
        produced += min(len(events), count - produced)


async def produce_backlog(bootstrap: str, count: int, run: str) -> float:
    producer = AIOKafkaProducer(
        **kafka_test_access(bootstrap).client_options(),
        acks="all",
        enable_idempotence=True,
        linger_ms=50,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    started = time.monotonic()
    try:
        pending = []
        for n, event in enumerate(stories(count, run), 1):
            pending.append(
                await producer.send(
                    type(event).topic(), event.model_dump_json().encode(), key=event.kafka_key()
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
            if n % 20000 == 0:
                say(f"backlog: {n:,}/{count:,} events sent")
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


async def wait_caught_up(
    bootstrap: str, prefix: str, targets: dict[TopicPartition, int], process: Any, timeout: float
) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(**kafka_test_access(bootstrap).client_options())
    await admin.start()
    backlog = sum(targets.values())
    started = time.monotonic()
    first_progress: tuple[float, int] | None = None
    left = backlog
    try:
        while time.monotonic() - started < timeout and process.poll() is None:
            left = remaining(targets, await committed_by_prefix(admin, prefix))
            now = time.monotonic() - started
            if first_progress is None and left < backlog:
                first_progress = (now, backlog - left)
            if left == 0:
                break
            if int(now) % 15 == 0 and int(now - 0.5) % 15 != 0:
                say(f"  {backlog - left:,}/{backlog:,} committed after {now:.0f}s")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    elapsed = time.monotonic() - started
    done = backlog - left
    figures: dict[str, Any] = {
        "caught_up": left == 0,
        "seconds": round(elapsed, 1),
        "events": done,
        "events_per_s": round(done / elapsed, 1),
    }
    if first_progress is not None and elapsed > first_progress[0]:
        figures["start_to_first_commit_s"] = round(first_progress[0], 1)
        figures["steady_events_per_s"] = round(
            (done - first_progress[1]) / (elapsed - first_progress[0]), 1
        )
    if left:
        figures["left_uncommitted"] = left
    return figures


async def naive_projector(stack: Stack, run: str, limit: int, timeout: float) -> dict[str, Any]:
    """One `$inc` upsert per event on a per-type daily counter, one commit per event."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    counters = client[f"bench_naive_{run}"]["counters"]
    consumer = AIOKafkaConsumer(
        *TOPICS,
        **kafka_test_access(stack.kafka).client_options(),
        group_id=f"bench-naive-{run}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    started = time.monotonic()
    await consumer.start()
    done = 0
    try:
        while done < limit and time.monotonic() - started < timeout:
            record = await consumer.getone()
            event = MODELS[record.topic].model_validate_json(record.value or b"")
            await counters.update_one(
                {"_id": f"{event.event_type}|{event.occurred_at.date().isoformat()}"},
                {"$inc": {"n": 1}},
                upsert=True,
            )
            await consumer.commit(
                {TopicPartition(record.topic, record.partition): record.offset + 1}
            )
            done += 1
    finally:
        await consumer.stop()
        await client.drop_database(f"bench_naive_{run}")
        await client.close()
    elapsed = time.monotonic() - started
    return {"events": done, "seconds": round(elapsed, 1), "events_per_s": round(done / elapsed, 1)}


def projected_topics() -> list[str]:
    """The topics the reporting service under test consumes (all of ours it knows)."""
    try:
        from cmhl_reporting.domain.projections import PROJECTED_EVENTS

        return [e.topic() for e in PROJECTED_EVENTS]
    except ImportError:
        return TOPICS


def start_reporting(stack: Stack, run: str, log: Path) -> "subprocess.Popen[bytes]":
    env = os.environ | stack.service_env(
        "reporting",
        HTTP_PORT=str(free_port()),
        MONGO_DATABASE=f"bench_catchup_{run}",
        CONSUMER_GROUP_PREFIX=f"bench-{run}",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "cmhl_reporting"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def drop_database(stack: Stack, name: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="backlog to add (1000000 ok)")
    parser.add_argument("--naive-events", type=int, default=5_000)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--profile", action="store_true", help="py-spy the reporting process")
    args = parser.parse_args()
    # A SIGTERM (e.g. `timeout`) unwinds through the `finally` that stops the cold process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench_started = time.monotonic()
    run = run_id()
    stack = load_stack()
    say("stopping the stack's services so the cold projector has the machine to itself")
    stop_services(stack)
    stack = load_stack()
    say(f"producing a backlog of {args.events:,} events")
    produce_s = asyncio.run(produce_backlog(stack.kafka, args.events, run))
    targets = asyncio.run(end_offsets(stack.kafka, projected_topics()))
    backlog = sum(targets.values())
    say(f"backlog on the projected topics: {backlog:,} events; starting reporting cold")
    log = TMP / f"cmhl-bench-catchup-{run}.log"
    profile_out = TMP / f"cmhl-bench-catchup-{run}.pyspy"
    with Sampler(stack.pids) as sampler:
        process = start_reporting(stack, run, log)
        sampler.add("reporting", process.pid)
        # The whole catch-up: the slow part may come late (one topic's group lagging).
        profiler = (
            start_profile(process.pid, int(args.timeout), profile_out) if args.profile else None
        )
        try:
            service = asyncio.run(
                wait_caught_up(stack.kafka, f"bench-{run}.", targets, process, args.timeout)
            )
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
            if profiler:  # py-spy writes its profile when the process it samples exits
                try:
                    profiler.wait(60)
                except subprocess.TimeoutExpired:
                    profiler.send_signal(signal.SIGINT)
                    profiler.wait(30)
    say(f"reporting service: {service}")
    service_resources = sampler.summary()
    with Sampler(stack.pids) as naive_sampler:
        naive = asyncio.run(
            naive_projector(stack, run, min(args.naive_events, backlog), args.timeout)
        )
    say(f"naive projector: {naive}")
    asyncio.run(drop_database(stack, f"bench_catchup_{run}"))
    ratio = service["events_per_s"] / naive["events_per_s"] if naive["events_per_s"] else None
    figures: dict[str, Any] = {
        "backlog_events": backlog,
        "events_added": args.events,
        "produce_events_per_s": round(args.events / produce_s, 1),
        "service": service,
        "naive": naive,
        "ratio_vs_naive": round(ratio, 2) if ratio else None,
        "projected_1m_rebuild_s": (
            round(1_000_000 / service["events_per_s"], 0) if service["events_per_s"] else None
        ),
        "resources_service": service_resources,
        "resources_naive": naive_sampler.summary(),
        "goal": "ratio >= 20x naive; 1,000,000-event rebuild < 180 s",
    }
    if args.profile:
        figures["profile_reporting"] = summarize_profile(profile_out)
    write_result("catchup", figures, bench_started)


if __name__ == "__main__":
    main()
