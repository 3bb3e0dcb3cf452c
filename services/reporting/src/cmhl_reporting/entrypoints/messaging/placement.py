"""Thin subscriber of bed-availability updates that keeps each facility's newest numbers.

A consumer group of its own (the counters of the same topic are applied by the projection
groups): the Kafka key is the facility id, so one facility's updates are written by the one
consumer holding its partition. Offsets are committed after the write; a replay rewrites nothing."""

from faststream.kafka import KafkaRouter

from cmhl_contracts import BedAvailabilityUpdatedV1
from cmhl_reporting.application.placement import FacilityFreshnessProjector
from cmhl_servicekit.consuming import BatchProcessor, DeadLetterSink
from cmhl_servicekit.kafka import consumer_group, subscribe_batches


def build_facility_router(
    projector: FacilityFreshnessProjector, dead_letter: DeadLetterSink, group_prefix: str
) -> KafkaRouter:
    router = KafkaRouter()
    subscribe_batches(
        router,
        BatchProcessor(BedAvailabilityUpdatedV1, projector.apply, dead_letter),
        topics=[BedAvailabilityUpdatedV1.topic()],
        group_id=consumer_group(group_prefix, "reporting", "facility-freshness"),
        handler_name="on_bed_availability_updated_freshness",
        max_records=500,
    )
    return router
