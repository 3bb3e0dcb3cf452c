"""Agency intake: AgencyReferralSubmittedV1 events (10% of them resent duplicates) on the agency
topic, until every distinct one has come out as referral-created.

    python -m bench.agency_intake [--events 2000] [--profile]

Agency systems retry, so every tenth record repeats an earlier one byte for byte (same event id
and agency reference); the service must publish one referral-created per distinct submission.
The clock runs from the first send to the last distinct referral-created seen on its topic."""

import argparse
import asyncio
import json
import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from bench.common import (
    COUNTIES,
    LOCATIONS,
    NEEDS,
    TMP,
    Sampler,
    committed_by_prefix,
    end_offsets,
    load_stack,
    remaining,
    run_id,
    say,
    stack_up,
    start_profile,
    stop_others,
    summarize_profile,
    wait_quiet,
    write_result,
)
from cmhl_contracts import AgencyReferralSubmittedV1, ReferralCreatedV1
from cmhl_servicekit.correlation import correlation_id_from
from cmhl_servicekit.testing import kafka_test_access

INTAKE_GROUP = "cmhl.referral.agency-intake"


def submissions(count: int, run: str) -> list[bytes]:
    """`count` records: 90% distinct submissions, 10% resends of an earlier one."""
    rng = random.Random(11)
    now = datetime.now(UTC)
    distinct = count - count // 10
    records: list[bytes] = []
    for n in range(distinct):
        reference = f"bench-{run}-{n}"
        event = AgencyReferralSubmittedV1.create(
            about=("bench-pd", reference),
            producer="bench",
            correlation_id=reference,
            agency={"agency_id": "bench-pd", "source": "municipal_police"},
            agency_reference=reference,
            county_fips=rng.choice(COUNTIES),
            primary_need=rng.choice(NEEDS),
            person_location=rng.choice(LOCATIONS),
            person={
                "given_name": "Bench",
                "family_name": f"Intake{run}{n % (distinct * 5 // 6 or 1)}",
                "birth_date": date(1970, 1, 1) + timedelta(days=n % 9000),
            },
            referred_at=now - timedelta(minutes=rng.randrange(60 * 24 * 30)),
        )
        records.append(event.model_dump_json().encode())
        if n % 9 == 8 and len(records) < count:
            records.append(records[rng.randrange(len(records))])
    while len(records) < count:
        records.append(records[rng.randrange(distinct)])
    return records


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    stack = stack_up()
    if args.isolated:
        stop_others(stack, keep="referral")
        stack = load_stack()
    wait_quiet(stack)
    run = run_id()
    records = submissions(args.events, run)
    distinct = len({json.loads(r)["event_id"] for r in records})
    created_topic = ReferralCreatedV1.topic()
    start_offsets = await end_offsets(stack.kafka, [created_topic])
    consumer = AIOKafkaConsumer(
        **kafka_test_access(stack.kafka).client_options(), enable_auto_commit=False
    )
    await consumer.start()
    consumer.assign(list(start_offsets))
    for tp, offset in start_offsets.items():
        consumer.seek(tp, offset)
    producer = AIOKafkaProducer(
        **kafka_test_access(stack.kafka).client_options(), acks="all", enable_idempotence=True
    )
    await producer.start()
    profile_out = TMP / f"cmhl-bench-agency-{run}.pyspy"
    seen: set[str] = set()
    # The service derives a UUID from each submission's correlation id (correlation.py): the
    # referral-created events of this run carry those.
    expected = {correlation_id_from(f"bench-{run}-{n}") for n in range(distinct)}
    idle = idle_cpu_per_second(stack.pids)
    with Sampler(stack.pids) as sampler:
        started = time.monotonic()
        profiler = (
            start_profile(stack.pids["referral"], args.profile_seconds, profile_out)
            if args.profile
            else None
        )
        futures = [
            await producer.send(
                AgencyReferralSubmittedV1.topic(),
                record,
                key=f"bench-pd:{json.loads(record)['agency_reference']}".encode(),
            )
            for record in records
        ]
        await asyncio.gather(*futures)
        sent_s = time.monotonic() - started
        say(f"sent {len(records):,} records ({distinct:,} distinct) in {sent_s:.1f}s")
        last_report = time.monotonic()
        while len(seen) < distinct and time.monotonic() - started < args.timeout:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for message in messages:
                    created = json.loads(message.value) if message.value else {}
                    if created.get("correlation_id") in expected:
                        seen.add(created["referral_id"])
            if time.monotonic() - last_report > 15:
                last_report = time.monotonic()
                say(f"  {len(seen):,}/{distinct:,} referral-created")
        elapsed = time.monotonic() - started
        await producer.stop()
        await consumer.stop()
        all_committed_s = await wait_intake_committed(stack.kafka, started, timeout=60)
        if profiler:
            profiler.wait(args.profile_seconds + 30)
        # The work a referral causes goes on after its referral-created (follow-ups scheduled,
        # views counted, notices): CPU until the stack is quiet again, less its idle rate.
        wait_quiet(stack)
        settled_s = time.monotonic() - started
    settled = settled_cpu(sampler.summary()["cpu_seconds"], idle, settled_s, len(seen))
    figures: dict[str, Any] = {
        "records": len(records),
        "distinct": distinct,
        "referral_created": len(seen),
        "complete": len(seen) == distinct,
        "seconds": round(elapsed, 1),
        "records_per_s": round(len(records) / elapsed, 1),
        "referrals_created_per_s": round(len(seen) / elapsed, 1),
        "send_seconds": round(sent_s, 2),
        "intake_group_committed_after_s": all_committed_s,
        "resources": sampler.summary(),
        "settled_seconds": round(settled_s, 1),
        "cpu_ms_per_referral_settled": settled,
        "isolated": args.isolated,
        "goal": "2,000 events/s",
    }
    if profiler:
        figures["profile_referral"] = summarize_profile(profile_out)
    return figures


def idle_cpu_per_second(pids: dict[str, int], seconds: float = 3.0) -> dict[str, float]:
    """Each process's CPU seconds per second while nothing is sent (polls, scrapes)."""
    with Sampler(pids) as idle:
        time.sleep(seconds)
    return {n: c / idle.elapsed for n, c in idle.summary()["cpu_seconds"].items()}


def settled_cpu(
    cpu_seconds: dict[str, float], idle: dict[str, float], seconds: float, referrals: int
) -> dict[str, float]:
    """CPU milliseconds per referral from the first send until the stack was quiet, per process
    and in all (the bench process left out), less what the processes use idle."""
    per_process = {
        name: round(max(0.0, used - idle.get(name, 0.0) * seconds) * 1000 / max(referrals, 1), 1)
        for name, used in cpu_seconds.items()
        if name != "bench"
    }
    return {"total": round(sum(per_process.values()), 1), **per_process}


async def wait_intake_committed(bootstrap: str, started: float, timeout: float) -> float | None:
    """Seconds from the first send until the intake group has committed every record."""
    targets = await end_offsets(bootstrap, [AgencyReferralSubmittedV1.topic()])
    admin = AIOKafkaAdminClient(**kafka_test_access(bootstrap).client_options())
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if remaining(targets, await committed_by_prefix(admin, INTAKE_GROUP)) == 0:
                return round(time.monotonic() - started, 1)
            await asyncio.sleep(0.5)
        return None
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--profile", action="store_true", help="py-spy the referral service")
    parser.add_argument("--profile-seconds", type=int, default=20)
    parser.add_argument(
        "--isolated",
        action="store_true",
        help="stop the other services first (writes agency_intake_isolated.json)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    name = "agency_intake_isolated" if args.isolated else "agency_intake"
    write_result(name, asyncio.run(measure(args)), started)


if __name__ == "__main__":
    main()
