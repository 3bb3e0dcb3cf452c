"""Read use cases: exact counts from the views, published with small-cell suppression."""

from datetime import UTC, datetime
from typing import Any, Protocol

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


class ViewReader(Protocol):
    async def current(self) -> tuple[int, Counters, list[TrainingFact]]: ...


class MetricsQueries:
    def __init__(self, reader: ViewReader) -> None:
        self._reader = reader

    async def raw_statewide(self, window: Window, county: str | None = None) -> dict[str, Any]:
        """Unsuppressed: for tests and the rebuild check, never served over HTTP."""
        _, counters, trainings = await self._reader.current()
        return raw_statewide(counters, trainings, window, county)

    async def raw_dimension(self, window: Window, dimension: str) -> dict[str, Any]:
        _, counters, trainings = await self._reader.current()
        if dimension in ("course", "training_county", "training_agency"):
            return {"rows": training_rows(trainings_in(trainings, window), dimension)}
        return raw_dimension(counters, window, dimension)

    async def statewide(self, window: Window, county: str | None = None) -> dict[str, Any]:
        gen, counters, trainings = await self._reader.current()
        published = publish_statewide(raw_statewide(counters, trainings, window, county))
        return _envelope(gen, window, county) | published

    async def dimension(self, window: Window, dimension: str) -> dict[str, Any]:
        gen = (await self._reader.current())[0]
        raw = await self.raw_dimension(window, dimension)
        if dimension in ("course", "training_county", "training_agency"):
            rows = [{"key": k} | v for k, v in raw["rows"].items()]
            return _envelope(gen, window, None) | {"dimension": dimension, "rows": rows}
        return _envelope(gen, window, None) | {"dimension": dimension} | publish_dimension(raw)


def _envelope(gen: int, window: Window, county: str | None) -> dict[str, Any]:
    return {
        "as_of": datetime.now(UTC).isoformat(),
        "generation": gen,
        "window": window.describe(),
        "county": county,
    }
