"""Kafka down while a liaison records a referral: the API still answers 201 (the referral and its
event are durable in MongoDB) and the event is published once the broker is back. The test runs
its own broker, so killing it disturbs no other test."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cmhl_contracts import ReferralCreatedV1
from cmhl_referral.bootstrap import build
from cmhl_referral.config import ReferralSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.testing import KafkaProbe, bearer, infra_settings, running_app

pytestmark = pytest.mark.integration

STACK = [sys.executable, str(Path(__file__).resolve().parents[2] / "deploy" / "local" / "stack.py")]


@pytest.fixture
def own_kafka(tmp_path: Path, mongo_uri: str) -> Iterator[dict[str, Any]]:
    if not os.environ.get("CMHL_TEST_KAFKA_BOOTSTRAP") and not os.environ.get("CI"):
        pytest.skip("run through `make test`, which installs the stack this test starts")
    subprocess.run(
        [*STACK, "up", "--free-ports", "--state-dir", str(tmp_path)], check=True, timeout=300
    )
    try:
        yield {"state_dir": tmp_path, **json.loads((tmp_path / "stack.json").read_text())}
    finally:
        subprocess.run([*STACK, "down", "--state-dir", str(tmp_path)], check=False, timeout=120)


async def test_referral_recorded_while_kafka_is_down_is_published_when_it_returns(
    own_kafka: dict[str, Any], mongo_uri: str
) -> None:
    bootstrap = f"127.0.0.1:{own_kafka['kafka_port']}"
    settings = ReferralSettings(
        **infra_settings(bootstrap, mongo_uri),
        pseudonym_key="p",
        encryption_key="ZGV2LWtleS1kZXYta2V5LWRldi1rZXktZGV2LWtleSE=",
    )
    body = {
        "agency": {"agency_id": "stl-pd", "source": "municipal_police"},
        "county_fips": "29510",
        "primary_need": "behavioral_needs",
        "person_location": "community",
        "person": {"given_name": "Kai", "family_name": "Moor", "birth_date": "1999-09-09"},
    }
    async with running_app(build(settings)) as client:
        os.kill(own_kafka["pids"]["kafka"], signal.SIGKILL)
        await asyncio.sleep(1)
        created = await client.post(
            "/api/v1/referrals", json=body, headers=bearer("liaison-01", Role.LIAISON)
        )
        assert created.status_code == 201, created.text
        ready = await client.get("/health/ready")
        assert ready.status_code == 503  # honest about the broker being gone
        await asyncio.to_thread(
            subprocess.run,
            [*STACK, "up", "--state-dir", str(own_kafka["state_dir"])],
            check=True,
            timeout=300,
        )
        probe = KafkaProbe(bootstrap)
        await probe.start()
        try:
            referral_id = created.json()["referral_id"]
            records = await probe.collect(
                [ReferralCreatedV1.topic()],
                lambda r: r.key == referral_id.encode(),
                expect=1,
                timeout=120,
                settle=2.0,
            )
        finally:
            await probe.stop()
    assert len(records) == 1
