"""Versioned documents: one optimistic-concurrency retry policy for every service.

A change reads the document, decides, and writes guarded by the version it read (the outbox's
`update` does the guarded write with the change's events). When another writer moved the
document on in between, the write matches nothing and the change starts again from a fresh
read; after a few tries the caller gets an error it can show ("changed meanwhile; read it and
retry"). Retries wait a little, with jitter, so two writers that collided do not collide again
in lock-step.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

T = TypeVar("T")

ATTEMPTS: Final = 5
FIRST_WAIT_SECONDS: Final = 0.005


class Conflict:
    """What an attempt returns when its guarded write found the document moved on."""


CONFLICT: Final = Conflict()


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[T | Conflict]],
    give_up: Callable[[], Exception],
    *,
    attempts: int = ATTEMPTS,
) -> T:
    """Runs `attempt` (read, decide, guarded write) until it returns anything but CONFLICT;
    raises `give_up()` after `attempts` conflicts."""
    for n in range(attempts):
        result = await attempt()
        if not isinstance(result, Conflict):
            return result
        if n + 1 < attempts:
            await asyncio.sleep(random.uniform(0, FIRST_WAIT_SECONDS * 2**n))  # noqa: S311
    raise give_up()
