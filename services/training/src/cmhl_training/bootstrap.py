"""Composition root of the training service."""

from typing import Any

from fastapi import FastAPI

from cmhl_contracts import TrainingCompletedV1
from cmhl_servicekit.audit import MongoAuditLog
from cmhl_servicekit.clock import Clock, SystemClock
from cmhl_servicekit.http import create_app
from cmhl_servicekit.kafka import make_broker
from cmhl_servicekit.metrics import ServiceMetrics, outbox_probe
from cmhl_servicekit.mongo import make_mongo_client
from cmhl_servicekit.outbox import OutboxRelay, kafka_publish
from cmhl_servicekit.runtime import Runtime
from cmhl_training.adapters.mongo import (
    MongoCourseCatalog,
    MongoOfficerLedger,
    MongoSessionRepository,
    ensure_indexes,
)
from cmhl_training.application.service import TrainingService
from cmhl_training.config import TrainingSettings
from cmhl_training.entrypoints.http.agency import router as agency_router
from cmhl_training.entrypoints.http.errors import install_error_handlers
from cmhl_training.entrypoints.http.imports import router as imports_router
from cmhl_training.entrypoints.http.routes import router as http_router

SERVICE = "training"


def build(settings: TrainingSettings, *, clock: Clock | None = None, **_: Any) -> FastAPI:
    metrics = ServiceMetrics(SERVICE)
    broker = make_broker(settings.kafka_access(), f"cmhl-{SERVICE}", metrics)
    broker.publisher(
        TrainingCompletedV1.topic(), schema=TrainingCompletedV1, title=TrainingCompletedV1.topic()
    )
    client = make_mongo_client(settings.mongo_uri, f"cmhl-{SERVICE}")
    db = client[settings.mongo_database]
    relay = OutboxRelay(db, kafka_publish(broker.publish))
    audit = MongoAuditLog(client[settings.audit_database], SERVICE)
    service = TrainingService(
        sessions=MongoSessionRepository(db, relay.outbox()),
        courses=MongoCourseCatalog(db),
        ledger=MongoOfficerLedger(db),
        audit=audit,
        clock=clock or SystemClock(),
        pseudonym_key=settings.pseudonym_key.get_secret_value().encode(),
    )

    async def prepare_database() -> None:
        await ensure_indexes(db)
        await service.seed_catalog()

    metrics.probe("outbox", outbox_probe(metrics, db))
    runtime = Runtime(broker, client, background=[relay.run], on_start=[prepare_database])
    app = create_app(
        title="CMHL training service",
        description="POST trainings for officers: course catalog, sessions, attendance, hours and "
        "certificates; publishes training-completed and its corrections.",
        settings=settings,
        runtime=runtime,
        metrics=metrics,
        routers=[http_router, agency_router, imports_router],
        state={
            "trainings": service,
            "relay": relay,
        },
    )
    install_error_handlers(app)
    return app
