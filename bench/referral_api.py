"""Referral API under open-loop load: POST /api/v1/referrals at fixed rates with a liaison token.

    python -m bench.referral_api [--rates 50,100,200,400] [--duration 30] [--profile]

Requests are scheduled at fixed intervals whatever the answers, and each latency is measured from
its scheduled time, so a server that falls behind shows its queue instead of slowing the client
down (a closed loop would hide it). Between rates the benchmark waits until the referral service
is idle, so one step's leftover work does not land in the next. Once a rate saturates the
service (half the requests fail or the median passes 5 s), higher rates are not run: they could
only pile up more of the same timeouts."""

import argparse
import asyncio
import time
from typing import Any

import httpx

from bench.common import (
    TMP,
    Sampler,
    cpu_delta,
    latency_summary_ms,
    open_loop,
    referral_body,
    run_id,
    say,
    stack_up,
    start_profile,
    summarize_profile,
    wait_idle,
    wait_quiet,
    write_result,
)

PATH = "/api/v1/referrals"
GOAL_P99_MS = 250.0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    stack = stack_up()
    wait_quiet(stack)
    run_tag = run_id()
    referral_pid = stack.pids["referral"]
    headers = {"Authorization": f"Bearer {stack.token('liaison-01')}"}
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=64)
    steps: list[dict[str, Any]] = []
    profile: dict[str, Any] | None = None
    counter = iter(range(10**9))
    async with httpx.AsyncClient(
        base_url=stack.url("referral"), timeout=args.timeout, limits=limits
    ) as client:
        for _ in range(20):  # warm-up: connections, caches, the first FerretDB tables
            await client.post(PATH, json=referral_body(run_tag, next(counter)), headers=headers)
        with Sampler(stack.pids) as sampler:
            saturated_at: float | None = None
            for index, rate in enumerate(args.rates):
                if saturated_at is not None:
                    steps.append({"rate": rate, "skipped": f"saturated at {saturated_at:g}/s"})
                    continue
                wait_idle(referral_pid)
                profiler = None
                out = TMP / f"cmhl-bench-api-{run_tag}.pyspy"
                if args.profile and index == min(1, len(args.rates) - 1):
                    profiler = start_profile(referral_pid, int(args.duration), out)
                load_before = Sampler.load()
                cpu_before = sampler.cpu_snapshot()
                say(f"{rate:g} requests/s for {args.duration:g}s")
                result = await open_loop(
                    client,
                    PATH,
                    rate,
                    args.duration,
                    lambda _n: referral_body(run_tag, next(counter)),
                    headers,
                    drain_timeout=args.timeout + 2,
                )
                drain_s = wait_idle(referral_pid, timeout=60)
                cpu = cpu_delta(cpu_before, sampler.cpu_snapshot())
                ok = len(result.latencies)
                errors = {k: v for k, v in result.statuses.items() if k not in ("200", "201")}
                step = {
                    "rate": rate,
                    "duration_s": args.duration,
                    "scheduled": result.scheduled,
                    "ok": ok,
                    "errors": sum(errors.values()),
                    "error_kinds": errors,
                    "achieved_per_s": round(ok / args.duration, 1),
                    "latency_ms": latency_summary_ms(result.latencies),
                    "cpu_seconds": cpu,
                    "cpu_ms_per_ok_request": {
                        name: round(1000 * cpu[name] / ok, 1)
                        for name in ("referral", "ferretdb", "kafka", "bench")
                        if name in cpu and ok
                    },
                    "server_drain_after_s": drain_s,
                    "load_avg_1m": [load_before, Sampler.load()],
                }
                steps.append(step)
                say(
                    f"  ok {ok}/{result.scheduled}, p99 {step['latency_ms']['p99']} ms, "
                    f"errors {errors or 0}"
                )
                if profiler is not None:
                    profiler.wait(60)
                    profile = {"rate": rate, **summarize_profile(out)}
                p50 = step["latency_ms"]["p50"]
                if sum(errors.values()) > result.scheduled / 2 or (p50 or 0) > 5000:
                    saturated_at = rate
    passing = [
        s["rate"]
        for s in steps
        if "skipped" not in s
        and s["errors"] == 0
        and s["latency_ms"]["p99"] is not None
        and s["latency_ms"]["p99"] < GOAL_P99_MS
    ]
    figures: dict[str, Any] = {
        "steps": steps,
        "highest_rate_p99_under_250ms": max(passing) if passing else None,
        "resources": sampler.summary(),
        "goal": "p99 < 100 ms at 200 requests/s",
    }
    if profile:
        figures["profile_referral"] = profile
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates",
        type=lambda text: [float(r) for r in text.split(",")],
        default=[50.0, 100.0, 200.0, 400.0],
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per rate")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--profile", action="store_true", help="py-spy the service (2nd rate)")
    args = parser.parse_args()
    started = time.monotonic()
    write_result("referral_api", asyncio.run(run(args)), started)


if __name__ == "__main__":
    main()
