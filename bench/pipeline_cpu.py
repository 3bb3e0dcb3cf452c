"""CPU of the whole stack per created referral, by process, until every consumer has caught up.

    python -m bench.pipeline_cpu [--rate 25] [--duration 20] [--idle 30]

`bench.referral_api` times the API and stops counting CPU when the referral service is idle;
the follow-up, reporting and notification consumers may still be working then. This one
measures, on a quiet stack:
1. idle: every process's CPU over `--idle` seconds with no load (consumers' polling, timers);
2. load: POST /api/v1/referrals at `--rate` per second for `--duration` seconds (open loop),
   then waits until every consumer group of the stack has committed the end of every partition
   it reads, and counts every process's CPU over that whole window.
It reports CPU milliseconds per created referral by process, as measured and net of the idle
rate over the same window (the issue's goal: < 20 ms system-wide)."""

import argparse
import asyncio
import time
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from bench.common import (
    cpu_delta,
    end_offsets,
    latency_summary_ms,
    open_loop,
    process_tree_cpu,
    referral_body,
    run_id,
    say,
    stack_up,
    tree_cpu_seconds,
    wait_quiet,
    write_result,
)
from cmhl_servicekit.testing import kafka_test_access

PATH = "/api/v1/referrals"
GROUP_PREFIX = "cmhl."


def cpu_by_process(pids: dict[str, int]) -> dict[str, float]:
    tree = process_tree_cpu()
    return {name: cpu for name, pid in pids.items() if (cpu := tree_cpu_seconds(pid, *tree))}


async def lag(admin: AIOKafkaAdminClient, bootstrap: str) -> int:
    """Records not yet committed, summed over every consumer group of the stack (each group on
    its own: common.committed_by_prefix keeps the furthest group per partition, which would hide
    a group still behind)."""
    groups = [g[0] for g in await admin.list_consumer_groups() if g[0].startswith(GROUP_PREFIX)]
    committed = {}
    for group in groups:
        for tp, meta in (await admin.list_consumer_group_offsets(group)).items():
            committed[(group, tp)] = meta.offset
    ends = await end_offsets(bootstrap, sorted({tp.topic for _, tp in committed}))
    return sum(max(0, ends.get(tp, 0) - offset) for (_, tp), offset in committed.items())


async def wait_caught_up(bootstrap: str, timeout: float) -> float | None:
    """Seconds until no consumer group lags twice in a row (relays may still be publishing)."""
    started = time.monotonic()
    admin = AIOKafkaAdminClient(**kafka_test_access(bootstrap).client_options())
    await admin.start()
    try:
        clean = 0
        while time.monotonic() - started < timeout:
            clean = clean + 1 if await lag(admin, bootstrap) == 0 else 0
            if clean == 2:
                return round(time.monotonic() - started, 1)
            await asyncio.sleep(0.5)
        return None
    finally:
        await admin.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    stack = stack_up()
    pids = dict(stack.pids)
    headers = {"Authorization": f"Bearer {stack.token('liaison-01')}"}
    run_tag = run_id()
    counter = iter(range(10**9))
    async with httpx.AsyncClient(base_url=stack.url("referral"), timeout=10.0) as client:
        for _ in range(20):  # warm-up: connections, caches, the first tables
            await client.post(PATH, json=referral_body(run_tag, next(counter)), headers=headers)
        await wait_caught_up(stack.kafka, 120)
        wait_quiet(stack)
        say(f"idle for {args.idle:g}s")
        before = cpu_by_process(pids)
        await asyncio.sleep(args.idle)
        idle = {n: cpu / args.idle for n, cpu in cpu_delta(before, cpu_by_process(pids)).items()}
        say(f"  {sum(idle.values()):.3f} cores idle")
        say(f"{args.rate:g} referrals/s for {args.duration:g}s, then until consumers catch up")
        before, started = cpu_by_process(pids), time.monotonic()
        result = await open_loop(
            client,
            PATH,
            args.rate,
            args.duration,
            lambda _n: referral_body(run_tag, next(counter)),
            headers,
        )
        caught_up = await wait_caught_up(stack.kafka, args.timeout)
        window = time.monotonic() - started
        used = cpu_delta(before, cpu_by_process(pids))
    created = len(result.latencies)
    say(f"  {created} created, consumers caught up {caught_up}s after the load")
    per_referral = {n: round(1000 * cpu / created, 1) for n, cpu in used.items()} if created else {}
    net = (
        {n: round(1000 * (cpu - idle.get(n, 0.0) * window) / created, 1) for n, cpu in used.items()}
        if created
        else {}
    )
    say(f"  {sum(per_referral.values()):.1f} ms CPU per referral ({sum(net.values()):.1f} net)")
    return {
        "rate": args.rate,
        "duration_s": args.duration,
        "created": created,
        "errors": {k: v for k, v in result.statuses.items() if k not in ("200", "201")},
        "latency_ms": latency_summary_ms(result.latencies),
        "caught_up_after_load_s": caught_up,
        "window_s": round(window, 1),
        "idle_cores": round(sum(idle.values()), 3),
        "idle_ms_per_s": {n: round(1000 * v, 1) for n, v in sorted(idle.items())},
        "cpu_ms_per_referral": dict(sorted(per_referral.items())),
        "cpu_ms_per_referral_total": round(sum(per_referral.values()), 1),
        "cpu_ms_per_referral_net_of_idle": dict(sorted(net.items())),
        "cpu_ms_per_referral_net_total": round(sum(net.values()), 1),
        "goal": "CPU per created referral, system-wide: < 20 ms",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=25.0, help="referrals per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle measurement")
    parser.add_argument("--timeout", type=float, default=300.0, help="for consumers to catch up")
    args = parser.parse_args()
    started = time.monotonic()
    figures = asyncio.run(run(args))
    write_result("pipeline_cpu", figures, started)


if __name__ == "__main__":
    main()
