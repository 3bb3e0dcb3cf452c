"""Faults around reporting, each ending in an exact match between the statewide metrics and the
distinct events sent: a flood with duplicates and malformed records, two replicas with a
rebalance in the middle, and the database killed during projection."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cmhl_reporting.bootstrap import build
from cmhl_reporting.config import ReportingSettings
from cmhl_servicekit.dlq import read_dead_letters
from cmhl_servicekit.testing import (
    eventually,
    infra_settings,
    kafka_test_access,
    running_app,
    signed_in_to,
    stack_mongo_uri,
)

from .checker import GroundTruth, matches, mixed_stream, published, send_records

pytestmark = pytest.mark.integration

STACK = [sys.executable, str(Path(__file__).resolve().parents[2] / "deploy" / "local" / "stack.py")]
# `make faults` runs the full sizes; `make test` runs the same scenarios smaller.
FULL = os.environ.get("CMHL_FAULTS_FULL") == "1"


def report(scenario: str, truth: GroundTruth, seconds: float, **figures: Any) -> None:
    extra = ", ".join(f"{k} {v}" for k, v in figures.items())
    print(  # noqa: T201 (the figures for the issue note)
        f"\n[{scenario}] {len(truth.records)} records sent ({len(truth.distinct)} distinct, "
        f"{len(truth.malformed)} malformed), {truth.expected()['referrals.total']} referrals "
        f"counted exactly in {seconds:.1f}s{', ' + extra if extra else ''}"
    )


async def caught_up(client: Any, truth: GroundTruth, timeout: float) -> float:
    began = time.monotonic()
    try:
        await eventually(lambda: matches(client, truth), timeout=timeout, interval=1.0)
    except AssertionError:
        raise AssertionError(
            f"views never matched: published {await published(client, truth)}, "
            f"expected {truth.expected()}"
        ) from None
    return time.monotonic() - began


async def test_flood_with_duplicates_and_malformed_records_is_counted_exactly(
    kafka_bootstrap: str, mongo_uri: str
) -> None:
    truth = mixed_stream(10_000)
    settings = ReportingSettings(**infra_settings(kafka_bootstrap, mongo_uri))
    async with running_app(build(settings), from_now=True) as client:
        await send_records(kafka_bootstrap, truth.records)
        seconds = await caught_up(client, truth, timeout=600)
    malformed = {r.key for r in truth.malformed}
    topics = {r.topic for r in truth.malformed}
    letters = [
        letter
        for topic in topics
        for letter in await read_dead_letters(kafka_test_access(kafka_bootstrap), topic)
        if letter.key in malformed
    ]
    assert {letter.key for letter in letters} == malformed  # every malformed record
    # Dead-lettering is at-least-once like any delivery (a rewound batch, or several consumer
    # groups reading the topic, send a record again): the same original position, nothing new.
    originals = {
        tuple(letter.headers[f"dlq-original-{part}"] for part in ("topic", "partition", "offset"))
        for letter in letters
    }
    assert len(originals) == len(malformed)
    assert all(letter.headers.get("dlq-reason") for letter in letters)
    report("flood", truth, seconds, dead_letters=len(letters), dead_lettered=len(originals))


async def test_two_replicas_and_a_rebalance_mid_stream_count_exactly(
    kafka_bootstrap: str, mongo_uri: str
) -> None:
    truth = mixed_stream(6_000 if FULL else 2_000, malformed=0)
    settings = ReportingSettings(**infra_settings(kafka_bootstrap, mongo_uri))
    third = len(truth.records) // 3
    first, second = build(settings), build(settings)
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(running_app(first, from_now=True))
        async with running_app(second):  # both replicas share the partitions
            await send_records(kafka_bootstrap, truth.records[:third])
            await asyncio.sleep(2)
        # The second replica stopped mid-stream: its partitions move to the first.
        await send_records(kafka_bootstrap, truth.records[third : 2 * third])
        await asyncio.sleep(2)
        async with running_app(build(settings)):  # and it comes back: another rebalance
            await send_records(kafka_bootstrap, truth.records[2 * third :])
            seconds = await caught_up(client, truth, timeout=300)
    report("rebalance", truth, seconds, rebalances=3)


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A Kafka and a FerretDB of this test's own, so killing them disturbs no other test."""
    subprocess.run(
        [*STACK, "up", "--free-ports", "--state-dir", str(tmp_path)], check=True, timeout=300
    )
    try:
        with signed_in_to(tmp_path):
            yield {"state_dir": tmp_path, **json.loads((tmp_path / "stack.json").read_text())}
    finally:
        subprocess.run([*STACK, "down", "--state-dir", str(tmp_path)], check=False, timeout=120)


async def test_database_killed_during_projection_never_loses_committed_work(
    own_stack: dict[str, Any],
) -> None:
    bootstrap = f"127.0.0.1:{own_stack['kafka_port']}"
    mongo_uri = stack_mongo_uri(own_stack["state_dir"])
    truth = mixed_stream(6_000 if FULL else 3_000, malformed=0)
    settings = ReportingSettings(**infra_settings(bootstrap, mongo_uri))
    kills = 2 if FULL else 1
    async with running_app(build(settings)) as client:
        await send_records(bootstrap, truth.records)
        for _ in range(kills):
            await asyncio.sleep(3)  # projecting now
            state = json.loads((own_stack["state_dir"] / "stack.json").read_text())
            os.kill(state["pids"]["ferretdb"], signal.SIGKILL)
            await asyncio.sleep(5)  # batches fail, are rewound and wait
            await asyncio.to_thread(
                subprocess.run,
                [*STACK, "up", "--state-dir", str(own_stack["state_dir"])],
                check=True,
                timeout=300,
            )
        seconds = await caught_up(client, truth, timeout=300)
    report("database killed", truth, seconds, ferretdb_kills=kills)
