"""Composition root of the follow-up service."""

import logging
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from cmhl_contracts import (
    FollowUpCancelledV1,
    FollowUpCompletedV1,
    FollowUpDueV1,
    FollowUpOverdueV1,
    FollowUpReassignedV1,
    FollowUpScheduledV1,
)
from cmhl_followup.adapters.mongo import (
    MongoFollowUpRepository,
    ensure_indexes,
)
from cmhl_followup.application.service import FollowUpService
from cmhl_followup.config import FollowUpSettings
from cmhl_followup.entrypoints.http.routes import router as http_router
from cmhl_followup.entrypoints.messaging.referrals import build_router
from cmhl_servicekit.asyncapi import declare_dead_letter_publishers
from cmhl_servicekit.audit import MongoAuditLog
from cmhl_servicekit.clock import Clock, SystemClock
from cmhl_servicekit.http import create_app
from cmhl_servicekit.kafka import dead_letter_sink, make_broker
from cmhl_servicekit.metrics import ServiceMetrics, outbox_probe, timers_probe
from cmhl_servicekit.mongo import make_mongo_client
from cmhl_servicekit.outbox import OutboxRelay, kafka_publish
from cmhl_servicekit.runtime import Runtime
from cmhl_servicekit.timers import run_timers

SERVICE = "followup"
log = logging.getLogger(__name__)


def build(settings: FollowUpSettings, *, clock: Clock | None = None, **_: Any) -> FastAPI:
    metrics = ServiceMetrics(SERVICE)
    broker = make_broker(settings.kafka_access(), f"cmhl-{SERVICE}", metrics)
    for event in (
        FollowUpScheduledV1,
        FollowUpDueV1,
        FollowUpOverdueV1,
        FollowUpCompletedV1,
        FollowUpCancelledV1,
        FollowUpReassignedV1,
    ):
        broker.publisher(event.topic(), schema=event, title=event.topic())
    client = make_mongo_client(settings.mongo_uri, f"cmhl-{SERVICE}")
    db = client[settings.mongo_database]
    relay = OutboxRelay(db, kafka_publish(broker.publish))
    repository = MongoFollowUpRepository(db, relay.outbox())
    audit = MongoAuditLog(client[settings.audit_database], SERVICE)
    grace = timedelta(hours=settings.grace_hours)
    service = FollowUpService(
        repository, audit, clock or SystemClock(), settings.offsets_days, grace
    )
    broker.include_router(
        build_router(service, dead_letter_sink(broker, metrics), settings.consumer_group_prefix)
    )
    declare_dead_letter_publishers(broker)

    async def due_timer() -> None:
        await run_timers(service.emit_due, batch=500, interval_seconds=settings.due_scan_seconds)

    async def prepare_database() -> None:
        await ensure_indexes(db)

    metrics.probe("outbox", outbox_probe(metrics, db))
    metrics.probe("timers", timers_probe(metrics, repository.timers, "follow_up_due"))
    runtime = Runtime(
        broker, client, background=[relay.run, due_timer], on_start=[prepare_database]
    )
    return create_app(
        title="CMHL follow-up service",
        description="Schedules follow-ups for every referral and says when they come due.",
        settings=settings,
        runtime=runtime,
        metrics=metrics,
        routers=[http_router],
        state={"followups": service, "relay": relay},
    )
