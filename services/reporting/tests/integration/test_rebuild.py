"""`python -m cmhl_reporting.rebuild` on the real stack: the live views keep serving while a new
generation is built from the beginning of the topics, then the rebuilt views equal the live
ones, including events sent during the rebuild."""

import asyncio
import contextlib
import os
import random
import re
import sys
import time

import pytest

from cmhl_reporting.bootstrap import build
from cmhl_reporting.config import ReportingSettings
from cmhl_reporting.domain.window import parse_period
from cmhl_servicekit.testing import KafkaProbe, eventually, infra_settings, running_app

from ..conftest import add_trainings, comparable, expected_raw, make_stream, with_duplicates
from .helpers import save_figures, send_all

pytestmark = pytest.mark.integration


async def test_rebuilt_views_equal_the_live_ones(
    kafka_bootstrap: str, mongo_uri: str, kafka_probe: KafkaProbe
) -> None:
    stream = make_stream(referrals=120, seed=random.randrange(10**9))
    add_trainings(stream, sessions=6, seed=random.randrange(10**9))
    sent = with_duplicates(stream.events, share=0.05, seed=5)
    cut = len(sent) * 7 // 10
    settings = infra_settings(kafka_bootstrap, mongo_uri)
    app = build(ReportingSettings(**settings))
    window = parse_period(stream.month)

    async def month_view() -> dict[str, object]:
        return comparable(await app.state.queries.raw_statewide(window))

    async with running_app(app, from_now=True):
        await send_all(kafka_probe, sent[:cut])
        first_part = comparable(expected_raw(sent[:cut]))

        async def live_caught_up() -> bool:
            return await month_view() == first_part

        await eventually(live_caught_up, timeout=240, interval=1)
        env = os.environ | {f"CMHL_REPORTING_{k.upper()}": str(v) for k, v in settings.items()}
        started = time.monotonic()
        rebuild = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cmhl_reporting.rebuild",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            served = []
            await send_all(kafka_probe, sent[cut:])  # arrives while the rebuild runs
            while rebuild.returncode is None:
                body = await app.state.queries.statewide(window)
                served.append(body["generation"])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rebuild.wait(), 1)
            output = (await rebuild.communicate())[0].decode()
        finally:
            if rebuild.returncode is None:
                rebuild.kill()
        seconds = time.monotonic() - started
        assert rebuild.returncode == 0, output[-2000:]
        assert "generation 1 -> 2" in output
        assert served[0] == 1, "the old generation served while the new one was built"
        truth = comparable(expected_raw(stream.events))
        # Agencies with officers trained at any time before the window's end: the rebuilt
        # generation holds every earlier test's trainings, the live one only this test's.
        del truth["trainings"]["referring_agencies_with_trained_officers"]

        async def rebuilt_and_exact() -> bool:
            body = await app.state.queries.statewide(window)
            got = await month_view()
            got["trainings"].pop("referring_agencies_with_trained_officers")  # type: ignore[attr-defined]
            return body["generation"] == 2 and got == truth

        with contextlib.suppress(AssertionError):
            await eventually(rebuilt_and_exact, timeout=120, interval=1)
        assert (await app.state.queries.statewide(window))["generation"] == 2
        got = await month_view()
        got["trainings"].pop("referring_agencies_with_trained_officers")  # type: ignore[attr-defined]
        diff = {
            (section, key): (got[section].get(key), value)  # type: ignore[attr-defined]
            for section, values in truth.items()
            for key, value in values.items()
            if got[section].get(key) != value  # type: ignore[attr-defined]
        }
        assert not diff, diff
        db = app.state.runtime.mongo_client[settings["mongo_database"]]
        names = await db.list_collection_names()
        assert not [n for n in names if n.startswith("g1_")], names
        # Finished: live batches after records the consumers dead-letter are no longer held back.
        assert await db["generations"].find_one({"_id": "rebuilding|2"}) is None
    found = re.search(r"([\d,]+) records \(", output)
    assert found is not None, output[-500:]
    save_figures(
        "reporting-rebuild",
        {"records": int(found.group(1).replace(",", "")), "seconds": round(seconds, 1)},
    )
