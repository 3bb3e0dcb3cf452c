"""Baseline: what single FerretDB operations cost on this machine, in the same run as the rest.

    python -m bench.ferretdb_ops [--ops 300]

Every service write path is a handful of these operations, so their latency and FerretDB's CPU
per operation are the floor under the other figures. Measured: sequential insert_one, find_one
by `_id`, update_one by `_id` on a small and a ten times larger collection (does an `_id` update
scan?), a query on a non-`_id` field (a scan), and inserts from 8 concurrent writers (does
concurrency buy throughput, or does the SQLite backend serialise writers?)."""

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import AsyncMongoClient

from bench.common import (
    cpu_seconds,
    latency_summary_ms,
    run_id,
    say,
    stack_up,
    wait_quiet,
    write_result,
)

Op = Callable[[int], Awaitable[Any]]


def document(n: int) -> dict[str, Any]:
    """About the size of a stored referral (1 KB)."""
    return {"_id": f"doc-{n}", "n": n, "status": "received", "payload": "x" * 900}


async def timed(op: Op, count: int, ferretdb_pid: int, concurrency: int = 1) -> dict[str, Any]:
    latencies: list[float] = []
    cpu_before = cpu_seconds(ferretdb_pid) or 0.0
    started = time.monotonic()
    queue = iter(range(count))

    async def worker() -> None:
        for n in queue:
            t = time.monotonic()
            await op(n)
            latencies.append(time.monotonic() - t)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    cpu = (cpu_seconds(ferretdb_pid) or 0.0) - cpu_before
    return {
        "ops_per_s": round(count / elapsed, 1),
        "latency_ms": latency_summary_ms(latencies),
        "ferretdb_cpu_ms_per_op": round(1000 * cpu / count, 2),
    }


async def measure(count: int) -> dict[str, Any]:
    stack = stack_up()
    wait_quiet(stack)
    pid = stack.pids["ferretdb"]
    run = run_id()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, maxPoolSize=16)
    db = client[f"bench_ops_{run}"]
    small, large, parallel = db["small"], db["large"], db["parallel"]
    figures: dict[str, Any] = {}
    try:
        await small.insert_one({"_id": "warm-up"})
        figures["insert_one"] = await timed(lambda n: small.insert_one(document(n)), count, pid)
        figures["find_one_by_id"] = await timed(
            lambda n: small.find_one({"_id": f"doc-{n}"}), count, pid
        )
        figures[f"update_one_by_id_{count}_docs"] = await timed(
            lambda n: small.update_one({"_id": f"doc-{n}"}, {"$set": {"status": "accepted"}}),
            count,
            pid,
        )
        await large.insert_many([document(n) for n in range(count * 10)])
        figures[f"update_one_by_id_{count * 10}_docs"] = await timed(
            lambda n: large.update_one({"_id": f"doc-{n}"}, {"$set": {"status": "accepted"}}),
            count,
            pid,
        )
        figures[f"find_one_by_field_{count * 10}_docs"] = await timed(
            lambda n: large.find_one({"n": n}), max(20, count // 10), pid
        )
        figures["insert_one_8_concurrent"] = await timed(
            lambda n: parallel.insert_one(document(n)), count, pid, concurrency=8
        )
    finally:
        await client.drop_database(f"bench_ops_{run}")
        await client.close()
    for name, figure in figures.items():
        say(f"{name}: {figure}")
    return {"operations": figures, "ops_per_measure": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=300)
    args = parser.parse_args()
    started = time.monotonic()
    write_result("ferretdb_ops", asyncio.run(measure(args.ops)), started)


if __name__ == "__main__":
    main()
