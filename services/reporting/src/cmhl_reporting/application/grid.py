"""The publication grid's plan, kept current: one plan serves every grid answer until the views
change, and a new one is built off the event loop at most every `refresh_seconds`.

A plan is computed from a copy of the counters (the reader keeps adding to its own) in a worker
thread: at the program's full history it takes seconds (bench/results), too long for a request.
Until the first plan exists, grid requests wait for it; afterwards they answer from the last one
while the next is built, so every grid number of one answer comes from one plan. A new day in
the program's time zone is never put off: it can move a quarter onto the grid."""

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from cmhl_reporting.application.queries import Snapshot, ViewReader, envelope
from cmhl_reporting.domain import grid
from cmhl_reporting.domain.annual import AnnualReport, annual_report
from cmhl_reporting.domain.geography import county_rows
from cmhl_reporting.domain.grid import GridPeriod, Plan
from cmhl_reporting.domain.views import TRAINING_DIMENSIONS, training_rows, trainings_in

log = logging.getLogger(__name__)


class _Frozen:
    def __init__(self, series: Mapping[str, Mapping[str, int]]) -> None:
        self._series = series

    def series(self) -> Mapping[str, Mapping[str, int]]:
        return self._series


@dataclass(frozen=True)
class Published:
    plan: Plan
    views: Snapshot
    version: int  # of the counters it was built from
    built_seconds: float


class PublicationGrid:
    def __init__(
        self,
        reader: ViewReader,
        zone: ZoneInfo,
        refresh_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._reader = reader
        self._zone = zone
        self._refresh = refresh_seconds
        self._clock = clock
        self._current: Published | None = None
        self._key: tuple[int, int, date] | None = None
        self._built_at = float("-inf")
        self._task: asyncio.Task[None] | None = None

    def today(self) -> date:
        return self._clock().astimezone(self._zone).date()

    async def published(self) -> Published:
        views = await self._reader.current()
        today = self.today()
        key = (views.gen, views.counters.version, today)
        first = self._current is None
        new_day = self._current is not None and self._current.plan.today != today
        due = time.monotonic() - self._built_at >= self._refresh
        building = self._task is not None and not self._task.done()
        if key != self._key and (first or new_day or due) and not building:
            self._key = key
            series = views.counters.snapshot()  # a copy: the reader keeps adding to its own
            self._task = asyncio.create_task(self._build(series, views, key[1], today))
        if (first or new_day) and self._task is not None:
            await asyncio.shield(self._task)
        current = self._current
        assert current is not None
        if (
            current.views.gen == views.gen
            and current.version == views.counters.version
            and views.trainings is not current.views.trainings
        ):
            # Only the training sessions moved (they are not on the grid: public servants'
            # figures, never suppressed): served at once. Without this, a session reported after
            # the last referral stayed hidden until another referral rebuilt the plan. When the
            # counters moved too, the sessions come with the next plan, as the referrals do.
            self._current = current = replace(current, views=views)
        return current

    async def _build(
        self, series: Mapping[str, Mapping[str, int]], views: Snapshot, version: int, today: date
    ) -> None:
        started = time.monotonic()
        plan = await asyncio.to_thread(Plan, _Frozen(series), today)
        self._current = Published(plan, views, version, round(time.monotonic() - started, 3))
        self._built_at = time.monotonic()
        log.info(
            "publication grid built",
            extra={
                "nodes": plan.nodes,
                "hidden": plan.hidden,
                "seconds": self._current.built_seconds,
            },
        )

    async def resolve(self, period: str | None, as_of: date | None) -> tuple[Published, GridPeriod]:
        """The plan and the grid period asked for (WindowError names the grid's forms)."""
        published = await self.published()
        return published, grid.resolve(period, as_of, published.plan.quarters, self.today())

    async def statewide(
        self, period: str | None, as_of: date | None, county: str | None
    ) -> dict[str, Any]:
        published, chosen = await self.resolve(period, as_of)
        body = grid.statewide(published.plan, chosen, county)
        body["trainings"] = grid.trainings(
            published.plan, chosen, published.views.trainings, county
        )
        return envelope(published.views, chosen.describe(), county) | body

    async def dimension(self, period: str | None, as_of: date | None, dim: str) -> dict[str, Any]:
        published, chosen = await self.resolve(period, as_of)
        head = envelope(published.views, chosen.describe(), None) | {"dimension": dim}
        if dim in TRAINING_DIMENSIONS:
            sessions = trainings_in(published.views.trainings, chosen.window)
            rows = training_rows(sessions, dim)
            return head | {"rows": [{"key": k} | v for k, v in rows.items()]}
        return head | grid.dimension(published.plan, chosen, dim)

    async def counties(self, period: str | None, as_of: date | None) -> dict[str, Any]:
        """Referrals per county with their rate per 10,000 residents, for the map."""
        published, chosen = await self.resolve(period, as_of)
        cells = published.plan.cells("referrals|county", chosen)
        return envelope(published.views, chosen.describe(), None) | {
            "total": published.plan.count("referrals", chosen),
            "rows": county_rows(cells),
        }

    async def placement(
        self, period: str | None, as_of: date | None
    ) -> tuple[dict[str, Any], GridPeriod]:
        """The placement figures of a grid period, and the period (whose window the facilities'
        bed reports are read for)."""
        published, chosen = await self.resolve(period, as_of)
        body = grid.placement(published.plan, chosen)
        return envelope(published.views, chosen.describe(), None) | body, chosen

    async def annual_report(self, period: str | None, as_of: date | None) -> AnnualReport:
        """The brochure's page for a grid period, from one plan."""
        published, chosen = await self.resolve(period, as_of)
        statewide = grid.statewide(published.plan, chosen, None)
        statewide["trainings"] = grid.trainings(
            published.plan, chosen, published.views.trainings, None
        )
        placement = grid.placement(published.plan, chosen)
        read_at = published.views.read_at.astimezone(self._zone)
        stamp = f"{read_at:%B} {read_at.day}, {read_at.year}, {read_at:%H:%M %Z}"
        return annual_report(chosen, statewide, placement, stamp)
