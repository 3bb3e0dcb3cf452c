"""Composition root of the placement service."""

import logging
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from cmhl_contracts.placement import PLACEMENT_EVENTS
from cmhl_placement.adapters.mongo import (
    MongoFacilityRepository,
    MongoRequestRepository,
    MongoTimerStore,
    ensure_indexes,
)
from cmhl_placement.adapters.referrals import ReferralServiceClient
from cmhl_placement.application.registry import FacilityRegistry
from cmhl_placement.application.service import PlacementService
from cmhl_placement.config import PlacementSettings
from cmhl_placement.domain.demo import DEMO_FACILITIES
from cmhl_placement.entrypoints.http.registry import router as registry_router
from cmhl_placement.entrypoints.http.routes import router as http_router
from cmhl_servicekit.audit import MongoAuditLog
from cmhl_servicekit.clock import Clock, SystemClock
from cmhl_servicekit.http import create_app
from cmhl_servicekit.kafka import make_broker
from cmhl_servicekit.metrics import ServiceMetrics, outbox_probe, timers_probe
from cmhl_servicekit.mongo import make_mongo_client
from cmhl_servicekit.outbox import OutboxRelay, kafka_publish
from cmhl_servicekit.runtime import Runtime
from cmhl_servicekit.timers import run_timers

SERVICE = "placement"
TIMER_BATCH = 200
log = logging.getLogger(__name__)


def build(
    settings: PlacementSettings,
    *,
    clock: Clock | None = None,
    referral_client: httpx.AsyncClient | None = None,
    **_: Any,
) -> FastAPI:
    """`referral_client`: how to reach the referral service (tests pass one bound to an
    in-process referral app); by default an HTTP client of its own, closed on stop."""
    metrics = ServiceMetrics(SERVICE)
    broker = make_broker(settings.kafka_access(), f"cmhl-{SERVICE}", metrics)
    # Publisher objects, so the events this service emits appear in its AsyncAPI document.
    for event in PLACEMENT_EVENTS:
        broker.publisher(event.topic(), schema=event, title=event.topic())
    client = make_mongo_client(settings.mongo_uri, f"cmhl-{SERVICE}")
    db = client[settings.mongo_database]
    relay = OutboxRelay(db, kafka_publish(broker.publish))
    outbox = relay.outbox()
    audit = MongoAuditLog(client[settings.audit_database], SERVICE)
    http = referral_client or httpx.AsyncClient(timeout=10)
    timer_store = MongoTimerStore(db, outbox)
    facilities = MongoFacilityRepository(db, outbox)
    clock = clock or SystemClock()
    stale_after = timedelta(hours=settings.stale_after_hours)
    registry = FacilityRegistry(facilities, timer_store, audit, clock, stale_after)
    service = PlacementService(
        facilities=facilities,
        requests=MongoRequestRepository(db, outbox),
        timers=timer_store,
        audit=audit,
        clock=clock,
        stale_after=stale_after,
        referrals=ReferralServiceClient(http, settings.referral_url),
    )

    async def timer_scan() -> None:
        await run_timers(
            service.emit_due, batch=TIMER_BATCH, interval_seconds=settings.timer_scan_seconds
        )

    async def prepare_database() -> None:
        await ensure_indexes(db)
        if settings.seed_demo_facilities:
            added = await registry.seed(DEMO_FACILITIES)
            if added:
                log.info("demo facilities listed", extra={"count": added})

    metrics.probe("outbox", outbox_probe(metrics, db))
    metrics.probe("timers", timers_probe(metrics, timer_store, "placement"))
    runtime = Runtime(
        broker,
        client,
        background=[relay.run, timer_scan],
        on_start=[prepare_database],
        on_stop=[] if referral_client else [http.aclose],
    )
    return create_app(
        title="CMHL placement service",
        description="Psychiatric facilities' bed availability and liaisons' search for an"
        " inpatient bed within the 96-hour detention.",
        settings=settings,
        runtime=runtime,
        metrics=metrics,
        routers=[http_router, registry_router],
        state={
            "placement": service,
            "registry": registry,
            "relay": relay,
        },
    )
