"""The reporting process killed (SIGKILL) again and again, at random moments and at the
failpoint between the views' write and the offset commit: the views stay exact."""

import asyncio
import random
import time

import pytest

from cmhl_reporting.bootstrap import build
from cmhl_reporting.config import ReportingSettings
from cmhl_servicekit.testing import KafkaProbe, eventually, free_port, infra_settings, skip_history

from ..conftest import add_trainings, comparable, expected_raw, make_stream, with_duplicates
from .helpers import Reporting, artifacts, month_view, save_figures, send_all, views

pytestmark = pytest.mark.integration


async def test_views_stay_exact_when_the_process_is_killed_again_and_again(
    kafka_bootstrap: str, mongo_uri: str, kafka_probe: KafkaProbe
) -> None:
    rng = random.Random()
    stream = make_stream(referrals=240, seed=rng.randrange(10**9))
    add_trainings(stream, sessions=10, seed=rng.randrange(10**9))
    sent = with_duplicates(stream.events, share=0.05, seed=rng.randrange(10**9))
    truth = comparable(expected_raw(stream.events))
    settings = infra_settings(kafka_bootstrap, mongo_uri) | {"http_port": free_port()}
    # The process's consumer groups start at the topics' ends: it sees this test's events only.
    await skip_history(build(ReportingSettings(**settings)))
    folder = artifacts()
    service = Reporting(settings, folder / "reporting-crashes.log")
    size = len(sent) // 6 + 1
    chunks = [sent[i : i + size] for i in range(0, len(sent), size)]
    random_kills = failpoint_kills = 0
    started = time.monotonic()
    try:
        for n, chunk in enumerate(chunks):
            at_failpoint = n % 2 == 1
            if at_failpoint:
                # Dies by itself right after its first (or second) segment write.
                service.start(failpoint_kill_after_write=str(1 + n % 3))
            else:
                service.start()
            await send_all(kafka_probe, chunk)
            if at_failpoint:

                async def died() -> bool:
                    return not service.alive()

                await eventually(died, timeout=90)
                failpoint_kills += 1
                service.process = None
            else:
                await asyncio.sleep(rng.uniform(4, 12))  # mid-batch, mid-join or idle
                service.kill()
                random_kills += 1
        service.start()
        async with views(mongo_uri, settings["mongo_database"]) as queries:

            async def exact() -> bool:
                return await month_view(queries, stream.month) == truth

            await eventually(exact, timeout=240, interval=2)
            final = await month_view(queries, stream.month)
    finally:
        service.kill()
    assert final == truth
    assert random_kills + failpoint_kills >= 5
    assert failpoint_kills >= 2
    save_figures(
        "reporting-crashes",
        {
            "events_sent": len(sent),
            "distinct_events": len(stream.events),
            "referrals": truth["referrals"]["total"],
            "random_kills": random_kills,
            "failpoint_kills": failpoint_kills,
            "seconds": round(time.monotonic() - started, 1),
        },
    )
