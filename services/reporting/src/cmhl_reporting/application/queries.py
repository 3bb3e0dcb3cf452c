"""Read use cases: exact counts from the views, published with small-cell suppression."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from cmhl_reporting.domain.projections import TrainingFact
from cmhl_reporting.domain.views import (
    DIMENSIONS,
    Counters,
    publish_dimension,
    publish_statewide,
    raw_dimension,
    raw_statewide,
    training_rows,
    trainings_in,
)
from cmhl_reporting.domain.window import Window

METRIC_DIMENSIONS = (*DIMENSIONS, "course", "training_county", "training_agency")


class Snapshot(NamedTuple):
    """The views as one read of them saw them; `read_at` is when that read began."""

    gen: int
    counters: Counters
    trainings: list[TrainingFact]
    read_at: datetime


class ViewReader(Protocol):
    async def current(self) -> Snapshot: ...


class MetricsQueries:
    def __init__(self, reader: ViewReader) -> None:
        self._reader = reader

    async def raw_statewide(self, window: Window, county: str | None = None) -> dict[str, Any]:
        """Unsuppressed: for tests and the rebuild check, never served over HTTP."""
        views = await self._reader.current()
        return raw_statewide(views.counters, views.trainings, window, county)

    async def raw_dimension(self, window: Window, dimension: str) -> dict[str, Any]:
        return _raw_dimension(await self._reader.current(), window, dimension)

    async def statewide(self, window: Window, county: str | None = None) -> dict[str, Any]:
        views = await self._reader.current()
        raw = raw_statewide(views.counters, views.trainings, window, county)
        return envelope(views, window.describe(), county) | publish_statewide(raw)

    async def dimension(self, window: Window, dimension: str) -> dict[str, Any]:
        views = await self._reader.current()
        raw = _raw_dimension(views, window, dimension)
        head = envelope(views, window.describe(), None) | {"dimension": dimension}
        if dimension in ("course", "training_county", "training_agency"):
            return head | {"rows": [{"key": k} | v for k, v in raw["rows"].items()]}
        return head | publish_dimension(raw)


def _raw_dimension(views: Snapshot, window: Window, dimension: str) -> dict[str, Any]:
    if dimension in ("course", "training_county", "training_agency"):
        return {"rows": training_rows(trainings_in(views.trainings, window), dimension)}
    return raw_dimension(views.counters, window, dimension)


def envelope(views: Snapshot, window: Mapping[str, Any], county: str | None) -> dict[str, Any]:
    return {
        # What the numbers are as of: the start of the read they come from, not this request.
        "as_of": views.read_at.isoformat(),
        "generation": views.gen,
        "window": dict(window),
        "county": county,
    }
