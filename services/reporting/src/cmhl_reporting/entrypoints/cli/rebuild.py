"""Rebuilds every view from the beginning of the topics into a new generation, then switches.

The serving generation keeps answering (and the live consumers keep writing it) while the new
one is built. When the new one has caught up with the topics' ends, the pointer document is
switched (one single-document write); the rebuild keeps applying until it also covers what the
live consumer groups committed, since live writers move to the new generation at their next
batch (a batch caught mid-switch is retried there: `GenerationSwitched`; one that starts past
what the rebuild has covered so far is retried until it has: `ChainBehind`, while the
generation is marked as being rebuilt). Both may then write the same partitions for a moment:
the segment chains accept one segment per offset range, so the result is the same whoever
writes it. Finally the old generation is dropped."""

import asyncio
import logging
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_contracts import IntegrationEvent
from cmhl_reporting.adapters.mongo import (
    MongoViewStore,
    drop_generation,
    mark_people_anchored,
    mark_rebuilding,
    mark_rebuilt,
    read_serving_generation,
    switch_generation,
)
from cmhl_reporting.application.projector import Projector
from cmhl_reporting.config import ReportingSettings
from cmhl_reporting.domain.projections import PROJECTED_EVENTS
from cmhl_servicekit.consuming import decode
from cmhl_servicekit.kafka import KafkaAccess, consumer_group
from cmhl_servicekit.logging import configure_logging
from cmhl_servicekit.mongo import make_mongo_client
from cmhl_servicekit.settings import load_settings

log = logging.getLogger(__name__)
MODELS: dict[str, type[IntegrationEvent]] = {e.topic(): e for e in PROJECTED_EVENTS}


@dataclass
class RebuildReport:
    old_generation: int
    new_generation: int
    records: int
    invalid: int
    seconds: float


class Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.started = time.monotonic()

    def advance(self, count: int) -> None:
        self.done += count
        if self.enabled:
            width = 30
            share = min(1.0, self.done / self.total) if self.total else 1.0
            bar = "#" * int(share * width) + "-" * (width - int(share * width))
            rate = self.done / max(time.monotonic() - self.started, 1e-6)
            sys.stdout.write(
                f"\r[rebuild] [{bar}] {self.done:,}/{self.total:,} records ({rate:,.0f}/s)"
            )
            sys.stdout.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stdout.write("\n")
            sys.stdout.flush()


async def _partitions(admin: AIOKafkaAdminClient) -> list[TopicPartition]:
    described = await admin.describe_topics(list(MODELS))
    return [
        TopicPartition(topic["topic"], p["partition"])
        for topic in described
        for p in topic["partitions"]
    ]


async def _live_committed(
    admin: AIOKafkaAdminClient, prefix: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """What the live consumer groups committed: the offsets live writers may have applied."""
    committed: dict[TopicPartition, int] = {}
    for event_type in PROJECTED_EVENTS:
        group = consumer_group(prefix, "reporting", event_type.event_name())
        offsets = await admin.list_consumer_group_offsets(group)
        for tp, meta in offsets.items():
            if tp in partitions and meta.offset >= 0:
                committed[tp] = meta.offset
    return committed


async def _apply(projector: Projector, records: list["ConsumerRecord[Any, Any]"]) -> int:
    by_topic: dict[str, list[ConsumerRecord[Any, Any]]] = defaultdict(list)
    for record in records:
        by_topic[record.topic].append(record)
    invalid = 0
    for topic, topic_records in by_topic.items():
        # Invalid records were dead-lettered by the live consumers already: skipped here.
        deliveries, rejected = decode(topic_records, MODELS[topic])
        invalid += len(rejected)
        if deliveries:
            await projector.apply(deliveries)
    return invalid


async def rebuild(
    db: AsyncDatabase[dict[str, Any]],
    access: KafkaAccess,
    group_prefix: str,
    *,
    zone: ZoneInfo,
    show_progress: bool = True,
    handover_grace: float = 5.0,
) -> RebuildReport:
    started = time.monotonic()
    old = await read_serving_generation(db)
    new = old + 1
    await drop_generation(db, new)  # leftovers of an interrupted rebuild
    await mark_people_anchored(db, new)
    await mark_rebuilding(db, new)
    store = MongoViewStore(db)
    projector = Projector(store, zone=zone, generation=new)
    admin = AIOKafkaAdminClient(**access.client_options())
    consumer = AIOKafkaConsumer(
        **access.client_options(), enable_auto_commit=False, max_poll_records=2000
    )
    await admin.start()
    await consumer.start()
    records = invalid = 0
    try:
        partitions = await _partitions(admin)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        first = await consumer.beginning_offsets(partitions)
        # Every chain starts where its partition does, before the switch: a live writer that
        # reaches the new generation first finds the chain behind its batch and waits for this
        # rebuild, instead of starting the chain at its own offset past what is not counted yet.
        for tp in partitions:
            await store.chain_start(new, tp.topic, tp.partition, first[tp])
        targets = dict(await consumer.end_offsets(partitions))
        progress = Progress(sum(targets[tp] - first[tp] for tp in partitions), show_progress)

        async def catch_up(goal: dict[TopicPartition, int]) -> None:
            nonlocal records, invalid

            async def behind() -> bool:
                return any([await consumer.position(tp) < goal.get(tp, 0) for tp in partitions])

            while await behind():
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                batch = [r for rs in batches.values() for r in rs]
                if batch:
                    invalid += await _apply(projector, batch)
                    records += len(batch)
                    progress.advance(len(batch))

        await catch_up(targets)
        progress.finish()
        await switch_generation(db, new)
        log.info("switched the serving generation", extra={"generation": new})
        # Live batches that read the old pointer finish within the grace; then cover them too.
        await asyncio.sleep(handover_grace)
        await catch_up(await _live_committed(admin, group_prefix, partitions))
        await mark_rebuilt(db, new)
    finally:
        await consumer.stop()
        await admin.close()
    await drop_generation(db, old)
    return RebuildReport(old, new, records, invalid, time.monotonic() - started)


async def _main(settings: ReportingSettings) -> RebuildReport:
    client = make_mongo_client(settings.mongo_uri, "cmhl-reporting-rebuild")
    try:
        return await rebuild(
            client[settings.mongo_database],
            settings.kafka_access(),
            settings.consumer_group_prefix,
            zone=settings.zone,
        )
    finally:
        await client.close()


def main() -> None:
    settings = load_settings(ReportingSettings)
    configure_logging("reporting-rebuild", settings.log_level)
    report = asyncio.run(_main(settings))
    sys.stdout.write(
        f"[rebuild] generation {report.old_generation} -> {report.new_generation}: "
        f"{report.records:,} records ({report.invalid} invalid, skipped) "
        f"in {report.seconds:.1f} s\n"
    )
