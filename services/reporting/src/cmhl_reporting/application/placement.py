"""Placement use cases: keep each facility's newest bed numbers, and read the placement views.

Counters of placement events are applied by the shared `Projector` (segment chains, claims);
only the latest bed numbers per facility are state of their own, written by the consumer of the
facility's partition (the Kafka key is the facility id), so each document has one writer."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from cmhl_contracts import BedAvailabilityUpdatedV1
from cmhl_reporting.application.queries import ViewReader
from cmhl_reporting.domain.placement import (
    FacilityState,
    facility_state,
    freshness,
    newest,
    publish_placement,
    raw_placement,
)
from cmhl_reporting.domain.window import Window
from cmhl_servicekit.consuming import Delivery


class FacilityStates(Protocol):
    """Latest bed numbers per facility."""

    async def keep_newest(self, states: list[FacilityState]) -> None:
        """Stores each state unless the stored one has an equal or higher sequence."""
        ...

    async def all(self) -> list[FacilityState]: ...


class FacilityFreshnessProjector:
    def __init__(self, states: FacilityStates) -> None:
        self._states = states

    async def apply(self, deliveries: list[Delivery[BedAvailabilityUpdatedV1]]) -> None:
        """A batch is collapsed to its newest update per facility before the write, so a
        replayed batch or an older redelivered update leaves the newest numbers in place."""
        updates = [facility_state(d.event) for d in deliveries]
        await self._states.keep_newest(list(newest(updates).values()))


class PlacementQueries:
    def __init__(
        self,
        reader: ViewReader,
        states: FacilityStates,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._reader = reader
        self._states = states
        self._clock = clock

    async def raw(self, window: Window) -> dict[str, Any]:
        """Unsuppressed: for tests, never served over HTTP."""
        return raw_placement((await self._reader.current()).counters, window)

    async def placement(self, window: Window) -> dict[str, Any]:
        views = await self._reader.current()
        now = self._clock()
        return {
            "as_of": now.isoformat(),
            "generation": views.gen,
            "window": window.describe(),
            **publish_placement(raw_placement(views.counters, window)),
            "bed_availability": await self.bed_availability(window),
        }

    async def bed_availability(self, window: Window) -> list[dict[str, Any]]:
        """Facility data, not about a person: published as it is, for any window."""
        views = await self._reader.current()
        return freshness(await self._states.all(), views.counters, window, self._clock())
