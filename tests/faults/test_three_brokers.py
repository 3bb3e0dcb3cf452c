"""Three Kafka brokers (replication 3, min.insync.replicas 2, acks=all) and one of them
SIGKILLed while liaisons record referrals: nothing is lost. Heavy (three JVMs on the machine):
it runs in `make faults`, not in `make test`."""

import random
import time
import tomllib
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cmhl_referral.bootstrap import build as build_referral
from cmhl_referral.config import ReferralSettings
from cmhl_reporting.bootstrap import build as build_reporting
from cmhl_reporting.config import ReportingSettings
from cmhl_servicekit.testing import infra_settings, kafka_test_access, running_app
from cmhl_servicekit.topics import create_topics, declared_topics

from .checker import CHICAGO, post_at_fixed_rate, verify_answered_referrals
from .cluster import KafkaCluster

pytestmark = [pytest.mark.integration, pytest.mark.heavy]

DECLARATIONS = Path(__file__).resolve().parents[2] / "deploy" / "topics.toml"
RATE, SECONDS, KILL_AT = 20, 40, 10


async def test_one_of_three_brokers_killed_under_load_loses_nothing(
    tmp_path: Path, mongo_uri: str
) -> None:
    cluster = KafkaCluster(tmp_path)
    try:
        cluster.start()
        startup = await cluster.wait_ready(brokers=3)
        topics = declared_topics(tomllib.loads(DECLARATIONS.read_text()))
        await create_topics(
            kafka_test_access(cluster.bootstrap),
            topics,
            replication_factor=3,
            min_insync_replicas=2,
        )
        referral = ReferralSettings(
            **infra_settings(cluster.bootstrap, mongo_uri),
            pseudonym_key="cluster-test",
            encryption_key="ZGV2LWtleS1kZXYta2V5LWRldi1rZXktZGV2LWtleSE=",
        )
        reporting = ReportingSettings(**infra_settings(cluster.bootstrap, mongo_uri))
        day = datetime(2020, 1, 1, tzinfo=CHICAGO) + timedelta(days=random.randrange(365))

        async def kill() -> None:
            cluster.kill(2)

        async with (
            running_app(build_referral(referral)) as client,
            running_app(build_reporting(reporting)) as metrics,
        ):
            began = time.monotonic()
            answers = await post_at_fixed_rate(client, day, RATE, SECONDS, {KILL_AT * RATE: kill})
            load_seconds = time.monotonic() - began
            created, records = await verify_answered_referrals(
                answers, client, metrics, cluster.bootstrap, day
            )
    finally:
        cluster.stop()
    print(  # noqa: T201 (the figures for the issue note)
        f"\n[three brokers] cluster up in {startup:.0f}s; {len(answers)} referrals posted at "
        f"{RATE}/s over {load_seconds:.0f}s, broker 2 SIGKILLed at {KILL_AT}s: answers "
        f"{dict(Counter(s for s, _ in answers))}, {len(created)} published ({records} records) "
        f"and counted"
    )
