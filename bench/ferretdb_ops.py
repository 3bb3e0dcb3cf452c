"""Baseline: what single FerretDB operations cost on this machine, in the same run as the rest.

    python -m bench.ferretdb_ops [--ops 300]

Every service write path is a handful of these operations, so their latency and FerretDB's CPU
per operation are the floor under the other figures. Measured: sequential insert_one, find_one
by `_id`, update_one by `_id` on a small and a ten times larger collection (does an `_id` update
scan?), a query on a non-`_id` field (a scan), inserts from 8 concurrent writers (does
concurrency buy throughput, or does the SQLite backend serialise writers?), and unordered
inserts of 100 keyed documents (servicekit's insert_new: the reporting service's claims), all
new and with a third of their keys taken. The last two are one baseline and its test: an
unordered insert that finds duplicates should cost what one that finds none does, as on MongoDB.
Last, the outbox relay's trim: an update_many that pulls sent entries out of 32 documents.
FerretDB CPU and PostgreSQL CPU (its backends) are reported per operation."""

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import AsyncMongoClient

from bench.common import (
    latency_summary_ms,
    process_tree_cpu,
    run_id,
    say,
    stack_up,
    tree_cpu_seconds,
    wait_quiet,
    write_result,
)
from cmhl_servicekit.mongo import insert_new

Op = Callable[[int], Awaitable[Any]]


def document(n: int) -> dict[str, Any]:
    """About the size of a stored referral (1 KB)."""
    return {"_id": f"doc-{n}", "n": n, "status": "received", "payload": "x" * 900}


def database_cpu(pids: dict[str, int]) -> tuple[float, float]:
    """CPU seconds of FerretDB and of PostgreSQL (the postmaster and its backends)."""
    tree = process_tree_cpu()
    return (
        tree_cpu_seconds(pids["ferretdb"], *tree) or 0.0,
        tree_cpu_seconds(pids["postgresql"], *tree) or 0.0,
    )


BATCH = 100
TRIM = 32  # servicekit.outbox.PULL_CHUNK


def claims(n: int) -> list[dict[str, Any]]:
    """The n-th batch of keyed documents, shaped like the reporting service's claims."""
    return [{"_id": f"p|person-{n}-{i}|county=29{i:03d}|2018", "o": f"e|{n}"} for i in range(BATCH)]


async def timed(op: Op, count: int, pids: dict[str, int], concurrency: int = 1) -> dict[str, Any]:
    latencies: list[float] = []
    ferretdb_before, postgres_before = database_cpu(pids)
    started = time.monotonic()
    queue = iter(range(count))

    async def worker() -> None:
        for n in queue:
            t = time.monotonic()
            await op(n)
            latencies.append(time.monotonic() - t)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    ferretdb_after, postgres_after = database_cpu(pids)
    return {
        "ops_per_s": round(count / elapsed, 1),
        "latency_ms": latency_summary_ms(latencies),
        "ferretdb_cpu_ms_per_op": round(1000 * (ferretdb_after - ferretdb_before) / count, 2),
        "postgres_cpu_ms_per_op": round(1000 * (postgres_after - postgres_before) / count, 2),
    }


async def measure(count: int) -> dict[str, Any]:
    stack = stack_up()
    wait_quiet(stack)
    pids = stack.pids
    run = run_id()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, maxPoolSize=16)
    db = client[f"bench_ops_{run}"]
    small, large, parallel = db["small"], db["large"], db["parallel"]
    fresh, taken, outboxes = db["claims_fresh"], db["claims_taken"], db["outboxes"]
    figures: dict[str, Any] = {}
    try:
        await small.insert_one({"_id": "warm-up"})
        figures["insert_one"] = await timed(lambda n: small.insert_one(document(n)), count, pids)
        figures["find_one_by_id"] = await timed(
            lambda n: small.find_one({"_id": f"doc-{n}"}), count, pids
        )
        figures[f"update_one_by_id_{count}_docs"] = await timed(
            lambda n: small.update_one({"_id": f"doc-{n}"}, {"$set": {"status": "accepted"}}),
            count,
            pids,
        )
        await large.insert_many([document(n) for n in range(count * 10)])
        figures[f"update_one_by_id_{count * 10}_docs"] = await timed(
            lambda n: large.update_one({"_id": f"doc-{n}"}, {"$set": {"status": "accepted"}}),
            count,
            pids,
        )
        figures[f"find_one_by_field_{count * 10}_docs"] = await timed(
            lambda n: large.find_one({"n": n}), max(20, count // 10), pids
        )
        figures["insert_one_8_concurrent"] = await timed(
            lambda n: parallel.insert_one(document(n)), count, pids, concurrency=8
        )
        batches = max(20, count // 3)
        await taken.insert_many(
            [d for n in range(batches) for i, d in enumerate(claims(n)) if i % 3 == 0]
        )
        figures[f"insert_many_unordered_{BATCH}_all_new"] = await timed(
            lambda n: insert_new(fresh, claims(n)), batches, pids
        )
        figures[f"insert_many_unordered_{BATCH}_a_third_taken"] = await timed(
            lambda n: insert_new(taken, claims(n)), batches, pids
        )
        await outboxes.insert_many(
            [document(n) | {"outbox": [f"e{n}-1", f"e{n}-2"]} for n in range(batches * TRIM)]
        )
        figures[f"update_many_pull_from_{TRIM}_docs"] = await timed(
            lambda n: outboxes.update_many(
                {"_id": {"$in": [f"doc-{n * TRIM + i}" for i in range(TRIM)]}},
                {"$pullAll": {"outbox": [f"e{n * TRIM + i}-1" for i in range(TRIM)]}},
            ),
            batches,
            pids,
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
