"""The reads a liaison and DMH make, timed on a stack holding a given history.

    python -m bench.scale --state-dir DIR --size LABEL [--samples 200]

Against a running stack (`make up` or `make demo` state, or a bench stack loaded with
`deploy/local/demo.py --referrals N`), one request at a time, as a person would wait for it:
- a caseload page: 50 rows, a status filter, newest first, as a random one of the 31 liaisons;
- that liaison's due follow-ups;
- one referral by id (ids taken from the caseload pages, read by their liaison);
- the statewide metrics as DMH reads them (`period=all`: the published grid of finished quarters).
Each figure is p50/p95/p99 in milliseconds with the load average around it; the result goes into
bench/results/scale.json under LABEL (10k, 50k, full...), next to the other sizes, with the
number of referrals the stack held (all time, from the statewide metrics), so sizes compare in
one table.
"""

import argparse
import asyncio
import random
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import Sampler, Stack, latency_summary_ms, load_stack, record_size, say

LIAISONS = [f"liaison-{n:02d}" for n in range(1, 32)]
STATUSES = ["received", "accepted", "unable_to_contact", "appointment_scheduled"]


async def timed(
    client: httpx.AsyncClient, samples: int, request: Any
) -> tuple[dict[str, float | None], list[Any]]:
    seconds: list[float] = []
    answers: list[Any] = []
    for _ in range(10):  # warm-up: connections, plans, caches
        await request(client)
    for _ in range(samples):
        started = time.perf_counter()
        answer = await request(client)
        seconds.append(time.perf_counter() - started)
        answers.append(answer)
    return latency_summary_ms(seconds), answers


READS = ("caseload_page", "due_follow_ups", "referral_by_id", "statewide_metrics")


async def measure(stack: Stack, samples: int, reads: tuple[str, ...] = READS) -> dict[str, Any]:
    tokens = {liaison: {"Authorization": f"Bearer {stack.token(liaison)}"} for liaison in LIAISONS}
    metrics = {"Authorization": f"Bearer {stack.token('dmh-analyst')}"}
    rng = random.Random(7)
    seen: list[tuple[str, str]] = []

    async def caseload(client: httpx.AsyncClient) -> int:
        liaison = rng.choice(LIAISONS)
        answer = await client.get(
            f"{stack.url('referral')}/api/v1/referrals",
            params={"status": rng.choice(STATUSES), "limit": 50},
            headers=tokens[liaison],
        )
        answer.raise_for_status()
        rows = answer.json()["data"]
        seen.extend((liaison, row["referral_id"]) for row in rows[:3])
        return len(rows)

    async def due_follow_ups(client: httpx.AsyncClient) -> int:
        answer = await client.get(
            f"{stack.url('followup')}/api/v1/follow-ups",
            params={"state": "due", "limit": 50},
            headers=tokens[rng.choice(LIAISONS)],
        )
        answer.raise_for_status()
        return len(answer.json()["data"])

    async def by_id(client: httpx.AsyncClient) -> int:
        liaison, referral_id = rng.choice(seen)
        answer = await client.get(
            f"{stack.url('referral')}/api/v1/referrals/{referral_id}", headers=tokens[liaison]
        )
        answer.raise_for_status()
        return 1

    async def statewide(client: httpx.AsyncClient) -> int:
        answer = await client.get(
            f"{stack.url('reporting')}/api/v1/metrics/statewide",
            params={"period": "all"},
            headers=metrics,
        )
        answer.raise_for_status()
        return int(answer.json()["referrals"]["total"] or 0)

    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=120) as client:
        for name, request in (
            ("caseload_page", caseload),
            ("due_follow_ups", due_follow_ups),
            ("referral_by_id", by_id),
            ("statewide_metrics", statewide),
        ):
            if name not in reads:
                continue
            load_before = Sampler.load()
            latency, answers = await timed(client, samples, request)
            figures[name] = latency | {"load_avg_1m": round((load_before + Sampler.load()) / 2, 2)}
            if name == "caseload_page":
                figures[name]["mean_rows"] = round(sum(answers) / len(answers), 1)
            say(f"{name}: {figures[name]}")
        figures["referrals_held"] = await referrals_held(client, stack)
    return figures


async def referrals_held(client: httpx.AsyncClient, stack: Stack) -> int:
    """Every referral the stack has counted, as the demo's wait reads it (all time, today
    included). Not the published figure timed above: DMH's grid counts finished fiscal quarters
    only and is rebuilt at most every few minutes (ADR 0009)."""
    answer = await client.get(
        f"{stack.url('reporting')}/api/v1/metrics/statewide",
        headers={"Authorization": f"Bearer {stack.token('privacy-officer')}"},
    )
    answer.raise_for_status()
    return int(answer.json()["referrals"]["total"] or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--size", required=True, help="label: 10k, 50k, full, ...")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument(
        "--reads", default=",".join(READS), help=f"which reads, comma-separated: {READS}"
    )
    args = parser.parse_args()
    stack = load_stack(args.state_dir.resolve())
    figures = asyncio.run(measure(stack, args.samples, tuple(args.reads.split(","))))
    record_size("scale", args.size, figures, args.samples)


if __name__ == "__main__":
    main()
