"""The MongoDB helpers on the real local database."""

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_servicekit.mongo import COUNTED_EXACTLY_UP_TO, estimated_count
from cmhl_servicekit.testing import eventually

pytestmark = pytest.mark.integration


async def test_a_gauge_count_is_exact_while_small_and_close_beyond(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Exact up to COUNTED_EXACTLY_UP_TO (a fresh table has no statistics yet), the statistics'
    estimate beyond it, never less than what was counted; a collection not yet made holds 0."""
    timers = mongo_db["timers"]
    assert await estimated_count(timers) == 0
    await timers.insert_many({"_id": f"t-{n}"} for n in range(7))
    assert await estimated_count(timers) == 7
    await timers.insert_many({"_id": f"u-{n}"} for n in range(3 * COUNTED_EXACTLY_UP_TO))
    held = 3 * COUNTED_EXACTLY_UP_TO + 7
    assert COUNTED_EXACTLY_UP_TO <= await estimated_count(timers) <= held

    async def close_to_what_is_held() -> bool:
        # PostgreSQL's autovacuum analyses the table within seconds (the stack's settings).
        return abs(await estimated_count(timers) - held) <= held // 10

    await eventually(close_to_what_is_held)
