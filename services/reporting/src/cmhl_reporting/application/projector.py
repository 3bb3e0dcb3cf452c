"""Applies batches of delivered events to the views: claims, then one segment per partition.

Each (topic, partition) has a chain of segments, one per applied batch, keyed by the first
offset they cover: `<topic>|<partition>|<from>` holding the counter increments of offsets
[from, to]. The next segment starts at `to + 1`. A segment is inserted, never updated, so the
insert is a compare-and-set: a second writer of the same partition (a zombie after a rebalance,
a replay after a crash between the write and the offset commit) gets a duplicate key, reads the
winner's segment and skips the offsets it covers. Kafka's committed offset is only a hint; the
chain says what was applied. See docs/adr/0003-reporting-counters.md."""

import asyncio
import logging
import os
import signal
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from cmhl_contracts import IntegrationEvent, TrainingCompletedV1
from cmhl_reporting.domain.projections import (
    Increment,
    PersonSeen,
    TrainingFact,
    project,
    training_fact,
)
from cmhl_servicekit.consuming import Delivery

log = logging.getLogger(__name__)

FAILPOINT_ENV = "CMHL_REPORTING_FAILPOINT_KILL_AFTER_WRITE"


@dataclass(frozen=True)
class Segment:
    topic: str
    partition: int
    first: int
    last: int
    verify_to: int
    """Offsets up to here may hold claims of a crashed attempt: check who owns a lost claim."""
    counts: list[tuple[str, str, int]] = field(default_factory=list)


@dataclass
class ChainHead:
    next_offset: int
    verify_to: int = -1


class GenerationSwitched(ConnectionError):
    """The serving generation changed during a batch (a rebuild switched over): the batch is
    retried, and applied to the new generation (its chain skips what the rebuild covered)."""


class ChainBehind(ConnectionError):
    """A live writer's batch starts past the end of its partition's chain in a generation a
    rebuild is still filling: after a switch, the rebuild is still covering what the live
    consumers committed to the old one. Writing now would make a segment that claims offsets it
    never saw, and the rebuild would then skip them; the batch is retried until the chain
    reaches it. (Outside a rebuild, such a gap is records the consumer dead-lettered: the next
    segment covers them, since they count for nothing.)"""


class ViewStore(Protocol):
    """Where one generation of views is written."""

    async def serving_generation(self) -> int: ...

    async def chain_start(self, gen: int, topic: str, partition: int, first: int) -> int: ...

    async def segment(self, gen: int, topic: str, partition: int, first: int) -> Segment | None: ...

    async def begin(
        self, gen: int, topic: str, partition: int, first: int, last: int
    ) -> int | None:
        """Records an attempt at [first, last]; returns None if it is the first attempt, else
        the highest offset an earlier attempt covered."""
        ...

    async def claim(
        self,
        gen: int,
        claims: dict[str, str],
        verify: bool,
        anchors: Mapping[str, PersonSeen] | None = None,
    ) -> set[str]:
        """Inserts claims (key -> owner); returns the keys `owner` holds (with `verify`, also
        those inserted by an earlier attempt of the same owner). A key in `anchors` is a
        person's anchor: its document also holds that referral's day and traits."""
        ...

    async def people_anchored(self, gen: int) -> bool:
        """Whether the generation counts unique people through anchors: true for one this
        version created; false for one an earlier version created, which writes every claim
        on its own and may still be writing it (a rolling upgrade)."""
        ...

    async def rebuilding(self, gen: int) -> bool:
        """Whether a rebuild is still filling the generation (until it has covered what the
        live consumer groups committed)."""
        ...

    async def people_seen(
        self, gen: int, anchors: Iterable[str]
    ) -> dict[str, tuple[str, tuple[str, ...]]]:
        """The (day, traits) stored in each of these anchors that holds them."""
        ...

    async def append(self, gen: int, segment: Segment) -> bool: ...

    async def save_trainings(self, gen: int, facts: list[TrainingFact]) -> None: ...


class Projector:
    """Single writer per partition by construction: the chain refuses a second segment."""

    def __init__(
        self,
        store: ViewStore,
        *,
        zone: ZoneInfo,
        generation: int | None = None,
        wait_for_other_writer: float = 3.0,
        projected: Callable[[list[datetime]], None] | None = None,
    ) -> None:
        """`projected` hears when each applied batch's events occurred (freshness metrics)."""
        self._store = store
        self._zone = zone  # the program's days: counts are bucketed by the day in this zone
        self._fixed_generation = generation
        self._heads: dict[tuple[int, str, int], ChainHead] = {}
        self._wait = wait_for_other_writer
        self._projected = projected
        self._writes = 0
        kill_after = os.environ.get(FAILPOINT_ENV)
        self._kill_after = int(kill_after) if kill_after else None

    async def generation(self) -> int:
        if self._fixed_generation is not None:
            return self._fixed_generation
        return await self._store.serving_generation()

    async def apply(self, deliveries: list[Delivery[Any]]) -> None:
        gen = await self.generation()
        trainings = [d for d in deliveries if isinstance(d.event, TrainingCompletedV1)]
        if trainings:
            await self._store.save_trainings(gen, [training_fact(d.event) for d in trainings])
        by_partition: dict[tuple[str, int], list[Delivery[Any]]] = defaultdict(list)
        for delivery in deliveries:
            if not isinstance(delivery.event, TrainingCompletedV1):
                by_partition[(delivery.topic, delivery.partition)].append(delivery)
        for (topic, partition), group in by_partition.items():
            await self._apply_partition(gen, topic, partition, sorted(group, key=_offset))
        if self._fixed_generation is None and await self._store.serving_generation() != gen:
            raise GenerationSwitched(f"generation {gen} stopped serving during the batch")
        if self._projected:
            self._projected([d.event.occurred_at for d in deliveries])

    async def _head(self, gen: int, topic: str, partition: int, first: int) -> ChainHead:
        key = (gen, topic, partition)
        head = self._heads.get(key)
        if head is None:
            start = await self._store.chain_start(gen, topic, partition, first)
            head = await self._walk(gen, topic, partition, ChainHead(start))
            self._heads[key] = head
        return head

    async def _walk(self, gen: int, topic: str, partition: int, head: ChainHead) -> ChainHead:
        while (
            seg := await self._store.segment(gen, topic, partition, head.next_offset)
        ) is not None:
            head = ChainHead(seg.last + 1, max(head.verify_to, seg.verify_to))
        return head

    async def _apply_partition(
        self, gen: int, topic: str, partition: int, group: list[Delivery[Any]]
    ) -> None:
        head = await self._head(gen, topic, partition, group[0].offset)
        if self._fixed_generation is None and group[0].offset > head.next_offset:
            # Another writer may have moved the chain on since this process last looked.
            head = await self._walk(gen, topic, partition, head)
            self._heads[(gen, topic, partition)] = head
            if group[0].offset > head.next_offset and await self._store.rebuilding(gen):
                raise ChainBehind(
                    f"generation {gen}'s chain of {topic}[{partition}] ends before offset "
                    f"{head.next_offset}, and the batch starts at {group[0].offset}: retried "
                    "while the rebuild covers the offsets in between; if no rebuild is running "
                    "(one was interrupted), `make rebuild` recounts the views"
                )
        while pending := [d for d in group if d.offset >= head.next_offset]:
            last = pending[-1].offset
            earlier = await self._store.begin(gen, topic, partition, head.next_offset, last)
            verify_to = head.verify_to
            if earlier is not None:
                # Another attempt began here: a live writer finishing (wait for its segment), or a
                # crashed one (take over, checking which of its claims were made for our records).
                found = await self._await_segment(gen, topic, partition, head.next_offset)
                if found is not None:
                    head = ChainHead(found.last + 1, max(head.verify_to, found.verify_to))
                    continue
                verify_to = max(verify_to, earlier)
            verify = pending[0].offset <= verify_to
            counts = await self._derive(gen, pending, verify)
            segment = Segment(topic, partition, head.next_offset, last, verify_to, counts)
            if await self._store.append(gen, segment):
                head = ChainHead(last + 1, verify_to)
                self._after_write()
            else:
                head = await self._walk(gen, topic, partition, head)
        self._heads[(gen, topic, partition)] = head

    async def _await_segment(
        self, gen: int, topic: str, partition: int, first: int
    ) -> Segment | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while True:
            found = await self._store.segment(gen, topic, partition, first)
            if found is not None or loop.time() >= deadline:
                return found
            await asyncio.sleep(0.2)

    async def _derive(
        self, gen: int, pending: list[Delivery[Any]], verify: bool
    ) -> list[tuple[str, str, int]]:
        """Counter increments of the records whose events are new, claims decided by insert."""
        firsts: dict[str, str] = {}
        owners: list[str] = []
        for d in pending:
            owner = f"{d.topic}:{d.partition}:{d.offset}"
            owners.append(owner)
            firsts.setdefault(f"e|{d.event.event_id}", owner)
        new_events = await self._store.claim(gen, firsts, verify)
        anchored = await self._store.people_anchored(gen)
        counts: Counter[Increment] = Counter()
        claims: dict[str, str] = {}
        anchors: dict[str, PersonSeen] = {}
        effects: list[tuple[str, list[tuple[str, list[Increment]]]]] = []
        seen: list[tuple[str, PersonSeen]] = []
        for d, owner in zip(pending, owners, strict=True):
            event: IntegrationEvent = d.event
            key = f"e|{event.event_id}"
            if key not in new_events or firsts[key] != owner:
                continue
            projected = project(event, self._zone)
            counts.update(projected.always)
            claimed = projected.claimed
            if projected.seen is not None and not anchored:
                # Every claim on its own, as the earlier version writes them: an anchor with a
                # day would imply claims that version's writers do not know to leave alone.
                claimed = claimed + projected.seen.claims()
            for claim, _ in claimed:
                claims.setdefault(claim, owner)
            effects.append((owner, claimed))
            if projected.seen is not None and anchored:
                if projected.seen.anchor not in claims:
                    claims[projected.seen.anchor] = owner
                    anchors[projected.seen.anchor] = projected.seen
                seen.append((owner, projected.seen))
        won = await self._store.claim(gen, claims, verify, anchors) if claims else set()
        later: list[tuple[str, PersonSeen]] = []
        for owner, person in seen:
            if person.anchor in won and claims[person.anchor] == owner:
                # The person's first referral: its anchor stands for every claim it implies.
                effects.append((owner, [(person.anchor, inc) for _, inc in person.claims()]))
            else:
                later.append((owner, person))
        if later:
            effects += await self._claim_beyond_first(gen, later, claims, won, verify)
        for owner, claimed in effects:
            for claim, increments in claimed:
                if claim in won and claims[claim] == owner:
                    counts.update(increments)
        return [(metric, day, n) for (metric, day), n in sorted(counts.items())]

    async def _claim_beyond_first(
        self,
        gen: int,
        later: list[tuple[str, PersonSeen]],
        claims: dict[str, str],
        won: set[str],
        verify: bool,
    ) -> list[tuple[str, list[tuple[str, list[Increment]]]]]:
        """Later referrals of a person: the claims their first referral's anchor does not imply
        are inserted one by one (`claims` and `won` gain them); returns their effects."""
        stored = await self._store.people_seen(gen, {person.anchor for _, person in later})
        beyond: dict[str, str] = {}
        effects: list[tuple[str, list[tuple[str, list[Increment]]]]] = []
        for owner, person in later:
            held = stored.get(person.anchor)
            first = None if held is None else PersonSeen(person.person, *held)
            extra = person.claims_beyond(first)
            for claim, _ in extra:
                beyond.setdefault(claim, owner)
            effects.append((owner, extra))
        # A key already claimed in this batch (an anchor a day-less anchor's later referral
        # tries again) keeps its owner there.
        beyond = {k: o for k, o in beyond.items() if k not in claims}
        if beyond:
            claims.update(beyond)
            won |= await self._store.claim(gen, beyond, verify)
        return effects

    def _after_write(self) -> None:
        """The failpoint of the crash tests: die between the views' write and the commit."""
        self._writes += 1
        if self._kill_after is not None and self._writes >= self._kill_after:
            log.warning("failpoint: killing the process after a write, before the commit")
            os.kill(os.getpid(), signal.SIGKILL)


def _offset(delivery: Delivery[Any]) -> int:
    return delivery.offset
