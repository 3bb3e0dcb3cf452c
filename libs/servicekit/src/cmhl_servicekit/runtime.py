"""What a running service owns (broker, database client, background loops) and its lifecycle.

FastAPI and FastStream meet in the app's lifespan: the broker starts and stops there."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from cmhl_servicekit import kafka, mongo

log = logging.getLogger(__name__)


async def stop_tasks(tasks: list[asyncio.Task[None]], *, again_after: float = 1.0) -> None:
    """Cancels the background loops and waits until each has ended. A loop whose cancellation
    was swallowed is cancelled again: Python 3.11's `asyncio.wait_for` can lose a cancellation
    that arrives just as the awaited event is set (the relay's wake-up after a write, say), and
    a single cancel then leaves the loop running and the shutdown waiting forever."""
    for task in tasks:
        task.cancel()
    pending = {task for task in tasks if not task.done()}
    while pending:
        _, pending = await asyncio.wait(pending, timeout=again_after)
        for task in pending:
            task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class Runtime:
    broker: KafkaBroker
    mongo_client: AsyncMongoClient[dict[str, Any]]
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        for hook in self.on_start:
            await hook()
        await self.broker.start()
        self._tasks = [asyncio.create_task(loop()) for loop in self.background]

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
        self._tasks = []
        await self.broker.stop()
        for hook in self.on_stop:
            await hook()
        await self.mongo_client.close()

    async def readiness(self) -> dict[str, bool]:
        checks = {"kafka": False, "mongodb": False}
        checks["kafka"] = await kafka.ping(self.broker)
        try:
            await asyncio.wait_for(mongo.ping(self.mongo_client), 3.0)
            checks["mongodb"] = True
        except Exception as exc:
            log.warning("mongodb not ready", extra={"reason": type(exc).__name__})
        for task in self._tasks:
            if task.done():
                checks["background"] = False
        return checks
