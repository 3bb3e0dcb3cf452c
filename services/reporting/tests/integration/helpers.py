"""Helpers of the reporting integration tests: send a stream, read the views like the API."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from cmhl_contracts import IntegrationEvent
from cmhl_reporting.adapters.mongo import MongoViewReader
from cmhl_reporting.application.queries import MetricsQueries
from cmhl_reporting.domain.window import parse_period
from cmhl_servicekit.testing import KafkaProbe

from ..conftest import comparable


async def send_all(probe: KafkaProbe, events: list[IntegrationEvent]) -> None:
    for event in events:
        await probe.send(
            type(event).topic(), event.model_dump_json().encode(), key=event.kafka_key()
        )


@contextlib.asynccontextmanager
async def views(mongo_uri: str, database: str) -> AsyncIterator[MetricsQueries]:
    """The views of a database as the API reads them, without suppression."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    reader = MongoViewReader(client[database], min_interval=0)
    try:
        yield MetricsQueries(reader)
    finally:
        await reader.close()
        await client.close()


async def month_view(queries: MetricsQueries, month: str) -> dict[str, Any]:
    return comparable(await queries.raw_statewide(parse_period(month)))


def save_figures(name: str, figures: dict[str, Any]) -> Path:
    """Writes a run's figures to $CMHL_TEST_ARTIFACTS (or a temp dir), never into the repo."""
    folder = Path(os.environ.get("CMHL_TEST_ARTIFACTS") or tempfile.mkdtemp(prefix="cmhl-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2))
    return path


def artifacts() -> Path:
    folder = Path(os.environ.get("CMHL_TEST_ARTIFACTS") or tempfile.mkdtemp(prefix="cmhl-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


PREFIX = "CMHL_REPORTING_"


class Reporting:
    """`python -m cmhl_reporting` as its own process, configured through its environment."""

    def __init__(self, settings: dict[str, Any], log: Path) -> None:
        self._env = os.environ | {f"{PREFIX}{k.upper()}": str(v) for k, v in settings.items()}
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, **extra: str) -> None:
        env = self._env | {f"{PREFIX}{k.upper()}": v for k, v in extra.items()}
        with self._log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cmhl_reporting"], env=env, stdout=out, stderr=out
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None
