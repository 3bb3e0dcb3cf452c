"""In-memory views with the Mongo adapter's rules: inserts keyed by `_id`, first one wins."""

import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from cmhl_contracts import IntegrationEvent
from cmhl_reporting.application.projector import Segment
from cmhl_reporting.domain.projections import PersonSeen, TrainingFact
from cmhl_reporting.domain.views import Counters
from cmhl_servicekit.consuming import Delivery


class Crash(Exception):
    """Stands for SIGKILL at a chosen point of a write."""


class InMemoryViewStore:
    def __init__(self) -> None:
        self.gen = 1
        self.chains: dict[tuple[int, str, int], int] = {}
        self.segments: dict[tuple[int, str, int, int], Segment] = {}
        self.intents: dict[tuple[int, str, int, int], int] = {}
        self.claims: dict[tuple[int, str], str] = {}
        self.anchors: dict[tuple[int, str], tuple[str, tuple[str, ...]]] = {}
        self.trainings: dict[tuple[int, str], TrainingFact] = {}
        self.crash_after_claims = False
        # Generations this version created; another is one an earlier version created.
        self.anchored_generations = {1}
        # Generations a rebuild is still filling.
        self.rebuilding_generations: set[int] = set()

    async def serving_generation(self) -> int:
        return self.gen

    async def chain_start(self, gen: int, topic: str, partition: int, first: int) -> int:
        return self.chains.setdefault((gen, topic, partition), first)

    async def segment(self, gen: int, topic: str, partition: int, first: int) -> Segment | None:
        return self.segments.get((gen, topic, partition, first))

    async def begin(
        self, gen: int, topic: str, partition: int, first: int, last: int
    ) -> int | None:
        key = (gen, topic, partition, first)
        if key in self.intents:
            return self.intents[key]
        self.intents[key] = last
        return None

    async def claim(
        self,
        gen: int,
        claims: dict[str, str],
        verify: bool,
        anchors: Mapping[str, PersonSeen] | None = None,
    ) -> set[str]:
        won = set()
        for key, owner in claims.items():
            held = self.claims.get((gen, key))
            if held is None:
                self.claims[(gen, key)] = owner
                if anchors and key in anchors:
                    self.anchors[(gen, key)] = (anchors[key].day, anchors[key].traits)
                won.add(key)
            elif verify and held == owner:
                won.add(key)
        if self.crash_after_claims:
            raise Crash("after claims, before the segment")
        return won

    async def people_anchored(self, gen: int) -> bool:
        return gen in self.anchored_generations

    async def rebuilding(self, gen: int) -> bool:
        return gen in self.rebuilding_generations

    async def people_seen(
        self, gen: int, anchors: Iterable[str]
    ) -> dict[str, tuple[str, tuple[str, ...]]]:
        return {a: self.anchors[(gen, a)] for a in anchors if (gen, a) in self.anchors}

    async def append(self, gen: int, segment: Segment) -> bool:
        key = (gen, segment.topic, segment.partition, segment.first)
        if key in self.segments:
            return False
        self.segments[key] = segment
        return True

    async def save_trainings(self, gen: int, facts: list[TrainingFact]) -> None:
        for fact in facts:
            current = self.trainings.get((gen, fact.session_id))
            if current is None or current.revision < fact.revision:
                self.trainings[(gen, fact.session_id)] = fact

    def counters(self, gen: int = 1) -> Counters:
        """What a reader sees: each chain followed from its start."""
        counters = Counters()
        for (g, topic, partition), start in self.chains.items():
            if g != gen:
                continue
            head = start
            while (seg := self.segments.get((g, topic, partition, head))) is not None:
                counters.add(seg.counts)
                head = seg.last + 1
        return counters

    def training_facts(self, gen: int = 1) -> list[TrainingFact]:
        return [f for (g, _), f in self.trainings.items() if g == gen]


def deliveries(events: list[IntegrationEvent], partitions: int = 3) -> list[Delivery[Any]]:
    """Each event at the next offset of its topic's partition (by key, as Kafka places it)."""
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    out: list[Delivery[Any]] = []
    for event in events:
        topic = type(event).topic()
        partition = zlib.crc32(event.kafka_key()) % partitions
        out.append(Delivery(event, topic, partition, offsets[(topic, partition)]))
        offsets[(topic, partition)] += 1
    return out


def by_topic(items: list[Delivery[Any]]) -> dict[str, list[Delivery[Any]]]:
    grouped: dict[str, list[Delivery[Any]]] = defaultdict(list)
    for d in items:
        grouped[d.topic].append(d)
    return grouped
