"""Freshness: under a fixed offered load of referrals, the time from the API's 201 to the referral
being counted in GET /api/v1/metrics/statewide.

    python -m bench.freshness [--rate 100] [--duration 30]

Every referral of a run is dated inside one day of its own, years back (the metrics window), so
the window's total counts only this run's referrals. The window is polled every 0.25 s; when its
total reaches k, the k-th referral to get its 201 is taken as counted then. That pairing is exact
when referrals are projected in the order they were created and otherwise off by the reordering
across partitions (well under the polling interval at these rates). The statewide API is being
reworked: `counted_in_window` is the only function that knows its shape."""

import argparse
import asyncio
import contextlib
import json
import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from bench.common import (
    Sampler,
    end_offsets,
    latency_summary_ms,
    open_loop,
    referral_body,
    run_id,
    say,
    stack_up,
    wait_quiet,
    write_result,
)
from cmhl_contracts import ReferralCreatedV1
from cmhl_servicekit.correlation import correlation_id_from
from cmhl_servicekit.testing import kafka_test_access

# More requests than any run sends (rate x duration): how far correlation ids are derived.
MAX_REQUESTS = 50_000
WARM_UP = 12  # past small-cell suppression (counts 1-10 are hidden) before measuring


async def counted_in_window(client: httpx.AsyncClient, token: str, day: date) -> int | None:
    """Referrals the statewide metrics count with `referred_at` in [day, day + 1); None while
    the figure is not available (error, or suppressed as a small cell)."""
    headers = {"Authorization": f"Bearer {token}"}
    end = day + timedelta(days=1)
    for start_text, end_text in (
        (f"{day.isoformat()}T00:00:00Z", f"{end.isoformat()}T00:00:00Z"),
        (day.isoformat(), end.isoformat()),
    ):
        try:
            response = await client.get(
                "/api/v1/metrics/statewide",
                params={"start": start_text, "end": end_text},
                headers=headers,
            )
        except httpx.HTTPError:
            return None
        if response.status_code == 422:
            continue  # the other window format
        if response.status_code != 200:
            return None
        total = response.json().get("referrals", {}).get("total")
        if isinstance(total, dict):
            total = total.get("value", total.get("count"))
        return total if isinstance(total, int) else None
    return None


async def watch_published(
    bootstrap: str, run: str, seen: dict[int, float], stop: asyncio.Event
) -> None:
    """When each of this run's referral-created events reaches Kafka (the outbox relay's part),
    matched by the correlation id the benchmark sent with the request."""
    topic = ReferralCreatedV1.topic()
    start = await end_offsets(bootstrap, [topic])
    consumer = AIOKafkaConsumer(
        **kafka_test_access(bootstrap).client_options(), enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        # The service derives a UUID from each request's X-Correlation-ID (correlation.py):
        # request n's event carries the one derived from `bench-<run>-<n>`.
        numbers: dict[str, int] = {}
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            now = time.monotonic()
            for messages in batch.values():
                for message in messages:
                    created = json.loads(message.value) if message.value else {}
                    correlation = created.get("correlation_id")
                    if correlation is None:
                        continue
                    while len(numbers) < MAX_REQUESTS and correlation not in numbers:
                        n = len(numbers)
                        numbers[correlation_id_from(f"bench-{run}-{n}")] = n
                    if correlation in numbers:
                        seen.setdefault(numbers[correlation], now)
    finally:
        await consumer.stop()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    stack = stack_up()
    run = run_id()
    rng = random.Random()
    day = datetime.now(UTC).date() - timedelta(days=rng.randrange(6 * 365, 9 * 365))
    day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    liaison = stack.token("liaison-01")
    # A day years back is a free window: for a role that may see records (analysts get the
    # publication grid of ended fiscal quarters).
    metrics = stack.token("privacy-officer")
    headers = {"Authorization": f"Bearer {liaison}"}
    polls: list[tuple[float, int]] = []
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with (
        httpx.AsyncClient(base_url=stack.url("referral"), timeout=30, limits=limits) as api,
        httpx.AsyncClient(base_url=stack.url("reporting"), timeout=120) as reporting,
    ):
        wait_quiet(stack, timeout=60)
        t = time.monotonic()
        baseline = await counted_in_window(reporting, metrics, day)
        first_call_s = time.monotonic() - t
        if baseline is None:
            return {"error": f"the statewide metrics did not answer ({first_call_s:.0f} s)"}

        def body(n: int) -> dict[str, Any]:
            return referral_body(run, n, day_start + timedelta(seconds=n))

        for n in range(WARM_UP):
            # Numbered past the load's requests, and still inside the window's day.
            await api.post("/api/v1/referrals", json=body(80_000 + n), headers=headers)
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            seen = await counted_in_window(reporting, metrics, day)
            if seen is not None and seen >= baseline + WARM_UP:
                break
            await asyncio.sleep(0.5)
        baseline += WARM_UP

        stop = asyncio.Event()
        all_counted = asyncio.Event()
        target: list[int] = []  # set once the load is over: how many got their 201

        call_seconds: list[float] = []

        async def poll() -> None:
            while not stop.is_set():
                t = time.monotonic()
                seen = await counted_in_window(reporting, metrics, day)
                call_seconds.append(time.monotonic() - t)
                if seen is not None:
                    polls.append((time.monotonic(), seen - baseline))
                    if target and seen - baseline >= target[0]:
                        all_counted.set()
                await asyncio.sleep(0.25)

        published: dict[int, float] = {}
        watcher = asyncio.create_task(watch_published(stack.kafka, run, published, stop))
        await asyncio.sleep(1.0)  # the watcher is assigned and positioned before the load
        with Sampler(stack.pids) as sampler:
            poller = asyncio.create_task(poll())
            say(f"{args.rate:g} referrals/s offered for {args.duration:g}s; window {day}")
            result = await open_loop(
                api,
                "/api/v1/referrals",
                args.rate,
                args.duration,
                body,
                headers,
                headers_for=lambda n: {"X-Correlation-ID": f"bench-{run}-{n}"},
                drain_timeout=30,
            )
            expected = len(result.completions)
            target.append(expected)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_counted.wait(), args.settle)
            stop.set()
            await poller
            await watcher
    answered = sorted(t for t, _ in result.completions)
    freshness: list[float] = []
    poll_index = 0
    for k, t201 in enumerate(answered, 1):
        while poll_index < len(polls) and polls[poll_index][1] < k:
            poll_index += 1
        if poll_index == len(polls):
            break
        freshness.append(max(0.0, polls[poll_index][0] - t201))
    answered_at = {n: t for t, n in result.completions}
    to_kafka = [published[n] - t for n, t in answered_at.items() if n in published]
    return {
        "offered_per_s": args.rate,
        "duration_s": args.duration,
        "scheduled": result.scheduled,
        "created": expected,
        "created_per_s": round(expected / args.duration, 1),
        "api_errors": {k: v for k, v in result.statuses.items() if k not in ("200", "201")},
        "api_latency_ms": latency_summary_ms(result.latencies),
        "counted": len(freshness),
        "not_counted_in_time": expected - len(freshness),
        "freshness_ms": latency_summary_ms(freshness),
        "201_to_referral_created_on_kafka_ms": latency_summary_ms(to_kafka),
        "window_total_at_end": polls[-1][1] if polls else None,
        "polls": len(polls),
        "statewide_call_ms": latency_summary_ms(call_seconds),
        "mean_poll_interval_ms": (
            round(1000 * (polls[-1][0] - polls[0][0]) / (len(polls) - 1))
            if len(polls) > 1
            else None
        ),
        "resources": sampler.summary(),
        "goal": "freshness p99 < 2 s at 100 referrals/s",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="referrals/s offered")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=60.0, help="max wait after the load")
    parser.add_argument(
        "--name", default="freshness", help="result name (bench/results/<name>.json)"
    )
    args = parser.parse_args()
    started = time.monotonic()
    write_result(args.name, asyncio.run(measure(args)), started)


if __name__ == "__main__":
    main()
