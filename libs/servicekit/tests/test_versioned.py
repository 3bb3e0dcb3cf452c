"""One optimistic-concurrency policy: conflicts are retried from a fresh read, then given up."""

import asyncio
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_servicekit.outbox import OutboxRelay
from cmhl_servicekit.versioned import CONFLICT, Conflict, retry_on_conflict


class StillBusy(Exception):
    pass


async def test_a_conflict_is_retried_until_the_write_lands() -> None:
    outcomes: list[int | Conflict] = [CONFLICT, CONFLICT, 7]
    tries = 0

    async def attempt() -> int | Conflict:
        nonlocal tries
        tries += 1
        return outcomes.pop(0)

    assert await retry_on_conflict(attempt, StillBusy) == 7
    assert tries == 3


async def test_it_gives_up_with_the_callers_error_and_lets_other_errors_through() -> None:
    tries = 0

    async def always_conflicting() -> int | Conflict:
        nonlocal tries
        tries += 1
        return CONFLICT

    with pytest.raises(StillBusy):
        await retry_on_conflict(always_conflicting, StillBusy, attempts=4)
    assert tries == 4

    async def refused() -> int | Conflict:
        raise ValueError("not allowed from this status")

    with pytest.raises(ValueError, match="status"):
        await retry_on_conflict(refused, StillBusy)


@pytest.mark.integration
async def test_concurrent_changes_of_one_document_all_land_once(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Twenty changes race on one document: each reads, decides and writes guarded by the
    version it read; the losers read again. None is lost and none is applied twice."""
    outbox = OutboxRelay(mongo_db, lambda entry: asyncio.sleep(0)).outbox()
    assert await outbox.insert("counters", {"_id": "c", "n": 0}, [])

    async def increment() -> None:
        async def attempt() -> bool | Conflict:
            current = await mongo_db["counters"].find_one({"_id": "c"})
            assert current is not None
            await asyncio.sleep(0)  # let the others read the same version
            saved = await outbox.update(
                "counters", "c", current["version"], {"n": current["n"] + 1}, []
            )
            return True if saved else CONFLICT

        await retry_on_conflict(attempt, StillBusy, attempts=50)

    await asyncio.gather(*(increment() for _ in range(20)))
    stored = await mongo_db["counters"].find_one({"_id": "c"})
    assert stored is not None
    assert (stored["n"], stored["version"]) == (20, 21)
