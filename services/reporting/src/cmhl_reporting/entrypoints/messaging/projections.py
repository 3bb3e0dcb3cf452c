"""Thin subscribers: one consumer group per projected topic, batches applied in bulk.

Offsets are committed only after the handler returns, i.e. after the views' segment is written;
a crash in between replays the batch, and the segment chain skips what was applied."""

from faststream.kafka import KafkaRouter

from cmhl_reporting.application.projector import Projector
from cmhl_reporting.domain.projections import PROJECTED_EVENTS
from cmhl_servicekit.consuming import BatchProcessor, DeadLetterSink
from cmhl_servicekit.kafka import consumer_group, subscribe_batches


def build_router(
    projector: Projector, dead_letter: DeadLetterSink, group_prefix: str
) -> KafkaRouter:
    router = KafkaRouter()
    for event_type in PROJECTED_EVENTS:
        subscribe_batches(
            router,
            BatchProcessor(event_type, projector.apply, dead_letter),
            topics=[event_type.topic()],
            group_id=consumer_group(group_prefix, "reporting", event_type.event_name()),
            handler_name=f"on_{event_type.event_name().replace('-', '_')}",
            max_records=1000,
        )
    return router
