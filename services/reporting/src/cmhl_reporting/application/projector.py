"""Applies batches of delivered events to the fact store."""

from typing import Any, Protocol

from cmhl_contracts import IntegrationEvent
from cmhl_reporting.domain.projections import FactWrite, project
from cmhl_servicekit.consuming import Delivery


class FactStore(Protocol):
    async def apply(self, writes: list[tuple[FactWrite, dict[str, Any]]]) -> None: ...


class Projector:
    def __init__(self, store: FactStore) -> None:
        self._store = store

    async def apply(self, deliveries: list[Delivery[Any]]) -> None:
        writes: list[tuple[FactWrite, dict[str, Any]]] = []
        for delivery in deliveries:
            event: IntegrationEvent = delivery.event
            source = {
                "topic": delivery.topic,
                "partition": delivery.partition,
                "offset": delivery.offset,
                "event_id": str(event.event_id),
            }
            writes.extend((write, source) for write in project(event))
        await self._store.apply(writes)
