"""Consultation and barrier counts by county for a fiscal year, read from the counter views."""

from datetime import date, timedelta
from typing import Any

from cmhl_contracts.activity import LATE_ENTRY_DAYS
from cmhl_reporting.application.queries import ViewReader
from cmhl_reporting.domain.activity import RawTable, publish_activity, raw_activity
from cmhl_reporting.domain.calendar import fiscal_year_start
from cmhl_reporting.domain.window import Window


def fiscal_year_window(year: int) -> Window:
    """July 1 of `year - 1` up to (not including) July 1 of `year`."""
    start = fiscal_year_start(year)
    return Window(start, date(year, 7, 1))


def published_from(year: int) -> date:
    """The first day a fiscal year's counts are published to those who may not see records: a
    year still running would give away each record as it arrives, asked for day after day, so
    it must have ended, and the late-entry days after it passed (no record can land in it
    afterwards, so its numbers never change)."""
    return date(year, 6, 30) + timedelta(days=LATE_ENTRY_DAYS + 1)


def is_published(year: int, today: date) -> bool:
    return today >= published_from(year)


class ActivityQueries:
    def __init__(self, reader: ViewReader) -> None:
        self._reader = reader

    async def raw(self, year: int) -> dict[str, RawTable]:
        """Unsuppressed: for tests, never served over HTTP."""
        views = await self._reader.current()
        return raw_activity(views.counters.series(), fiscal_year_window(year))

    async def published(self, year: int) -> dict[str, Any]:
        views = await self._reader.current()
        window = fiscal_year_window(year)
        return {
            "as_of": views.read_at.isoformat(),
            "generation": views.gen,
            "fiscal_year": year,
            "window": window.describe(),
            **publish_activity(raw_activity(views.counters.series(), window)),
        }
