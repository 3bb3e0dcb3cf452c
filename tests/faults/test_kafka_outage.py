"""Kafka SIGKILLed while liaisons record referrals at a fixed rate: the API keeps answering 201
(the referral and its event are durable in MongoDB first), never 201 for a referral it has not
stored, and once the broker is back every answered referral is published and counted, and
nothing stays stuck. The test runs its own broker, so killing it disturbs no other test."""

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cmhl_referral.bootstrap import build as build_referral
from cmhl_referral.config import ReferralSettings
from cmhl_reporting.bootstrap import build as build_reporting
from cmhl_reporting.config import ReportingSettings
from cmhl_servicekit.testing import infra_settings, running_app, signed_in_to

from .checker import CHICAGO, post_at_fixed_rate, verify_answered_referrals

pytestmark = pytest.mark.integration

STACK = [sys.executable, str(Path(__file__).resolve().parents[2] / "deploy" / "local" / "stack.py")]
FULL = os.environ.get("CMHL_FAULTS_FULL") == "1"
# (requests per second, seconds of load, second the broker dies, seconds it stays dead)
RATE, DURATION, KILL_AT, OUTAGE = (50, 45, 5, 30) if FULL else (10, 24, 4, 12)


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[dict[str, Any]]:
    subprocess.run(
        [*STACK, "up", "--free-ports", "--state-dir", str(tmp_path)], check=True, timeout=300
    )
    try:
        with signed_in_to(tmp_path):
            yield {"state_dir": tmp_path, **json.loads((tmp_path / "stack.json").read_text())}
    finally:
        subprocess.run([*STACK, "down", "--state-dir", str(tmp_path)], check=False, timeout=120)


async def test_every_referral_answered_201_during_a_kafka_outage_is_published_and_counted(
    own_kafka: dict[str, Any], mongo_uri: str
) -> None:
    bootstrap = f"127.0.0.1:{own_kafka['kafka_port']}"
    referral = ReferralSettings(
        **infra_settings(bootstrap, mongo_uri),
        pseudonym_key="outage-test",
        encryption_key="ZGV2LWtleS1kZXYta2V5LWRldi1rZXktZGV2LWtleSE=",
    )
    reporting = ReportingSettings(**infra_settings(bootstrap, mongo_uri))
    day = datetime(2019, 1, 1, tzinfo=CHICAGO) + timedelta(days=random.randrange(365))

    async def kill() -> None:
        os.kill(own_kafka["pids"]["kafka"], signal.SIGKILL)

    revived: list[asyncio.Future[Any]] = []

    async def revive() -> None:
        # Started in the background: the load goes on while the broker boots.
        revived.append(
            asyncio.get_running_loop().run_in_executor(
                None,
                lambda: subprocess.run(
                    [*STACK, "up", "--state-dir", str(own_kafka["state_dir"])],
                    check=True,
                    timeout=300,
                ),
            )
        )

    ticks = {KILL_AT * RATE: kill, (KILL_AT + OUTAGE) * RATE: revive}
    async with (
        running_app(build_referral(referral)) as client,
        running_app(build_reporting(reporting)) as metrics,
    ):
        began = time.monotonic()
        answers = await post_at_fixed_rate(client, day, RATE, DURATION, ticks)
        load_seconds = time.monotonic() - began
        await asyncio.gather(*revived)
        created, records = await verify_answered_referrals(answers, client, metrics, bootstrap, day)
        ready = await client.get("/health/ready")
        assert ready.status_code == 200  # nothing stuck: the service is whole again
    print(  # noqa: T201 (the figures for the issue note)
        f"\n[kafka outage] {len(answers)} referrals posted at {RATE}/s over {load_seconds:.0f}s, "
        f"Kafka dead for {OUTAGE}s: answers {dict(Counter(s for s, _ in answers))}, "
        f"{len(created)} published ({records} records) and counted"
    )
