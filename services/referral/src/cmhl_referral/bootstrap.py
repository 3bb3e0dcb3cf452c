"""Composition root: builds the referral service from settings; tests override parts."""

import logging
from typing import Any

from fastapi import FastAPI

from cmhl_contracts import (
    ReferralContactAttemptedV1,
    ReferralCreatedV1,
    ReferralFeedbackV1,
    ReferralReassignedV1,
    ReferralStatusChangedV1,
)
from cmhl_contracts.activity import BarrierRecordedV1, ConsultationRecordedV1
from cmhl_contracts.directory import ReferralConnectedToServiceV1
from cmhl_contracts.registry import CmhcServiceAreaChangedV1, LiaisonChangedV1
from cmhl_referral.adapters.activity_mongo import MongoActivityRepository, ensure_activity_indexes
from cmhl_referral.adapters.directory_mongo import MongoDirectory, ensure_directory_indexes
from cmhl_referral.adapters.mongo import (
    MongoReferralRepository,
    ensure_indexes,
)
from cmhl_referral.adapters.registry_mongo import MongoRegistryRepository
from cmhl_referral.application.activity import ActivityService
from cmhl_referral.application.directory import Directory
from cmhl_referral.application.registry import RegistryAssignments, RegistryService
from cmhl_referral.application.service import ReferralService
from cmhl_referral.config import ReferralSettings
from cmhl_referral.entrypoints.http.activity import router as activity_router
from cmhl_referral.entrypoints.http.agency import router as agency_router
from cmhl_referral.entrypoints.http.directory import router as directory_router
from cmhl_referral.entrypoints.http.imports import router as imports_router
from cmhl_referral.entrypoints.http.registry import router as registry_router
from cmhl_referral.entrypoints.http.routes import router as http_router
from cmhl_referral.entrypoints.messaging.agency import build_router as agency_intake
from cmhl_referral.entrypoints.messaging.followups import build_router as follow_up_outcomes
from cmhl_servicekit.asyncapi import declare_dead_letter_publishers
from cmhl_servicekit.audit import MongoAuditLog
from cmhl_servicekit.clock import Clock, SystemClock
from cmhl_servicekit.crypto import FieldCipher
from cmhl_servicekit.http import create_app
from cmhl_servicekit.kafka import dead_letter_sink, make_broker
from cmhl_servicekit.metrics import ServiceMetrics, outbox_probe
from cmhl_servicekit.mongo import make_mongo_client
from cmhl_servicekit.outbox import OutboxRelay, kafka_publish
from cmhl_servicekit.runtime import Runtime

SERVICE = "referral"
log = logging.getLogger(__name__)


def build(settings: ReferralSettings, *, clock: Clock | None = None, **_: Any) -> FastAPI:
    metrics = ServiceMetrics(SERVICE)
    broker = make_broker(settings.kafka_access(), f"cmhl-{SERVICE}", metrics)
    # Publisher objects, so the events this service emits appear in its AsyncAPI document.
    for event in (
        ReferralCreatedV1,
        ReferralStatusChangedV1,
        ReferralContactAttemptedV1,
        ReferralReassignedV1,
        ConsultationRecordedV1,
        BarrierRecordedV1,
        CmhcServiceAreaChangedV1,
        LiaisonChangedV1,
        ReferralConnectedToServiceV1,
    ):
        broker.publisher(event.topic(), schema=event, title=event.topic())
    # Feedback goes to each agency's own topic, never the shared one (ADR 0008).
    for agency in sorted(settings.kafka_feedback_agencies):
        feedback = ReferralFeedbackV1.agency_topic(agency)
        broker.publisher(feedback, schema=ReferralFeedbackV1, title=feedback)
    client = make_mongo_client(settings.mongo_uri, f"cmhl-{SERVICE}")
    db = client[settings.mongo_database]
    relay = OutboxRelay(db, kafka_publish(broker.publish))
    audit = MongoAuditLog(client[settings.audit_database], SERVICE)
    repository = MongoReferralRepository(
        db,
        FieldCipher.from_base64(settings.encryption_key.get_secret_value()),
        relay.outbox(),
        search_key=settings.pseudonym_key.get_secret_value().encode(),
    )
    registry = MongoRegistryRepository(db, relay.outbox())
    assignments = RegistryAssignments(registry, settings.assignment_strategy, settings.zone)

    def registry_changed() -> None:
        assignments.forget()  # this replica assigns by the change at once; others within 5 s
        relay.wake()

    service = ReferralService(
        repository=repository,
        audit=audit,
        clock=clock or SystemClock(),
        pseudonym_key=settings.pseudonym_key.get_secret_value().encode(),
        events_written=relay.wake,
        zone=settings.zone,
        feedback_agencies=frozenset(settings.kafka_feedback_agencies),
        assignments=assignments,
    )
    broker.include_router(
        agency_intake(
            service,
            dead_letter_sink(broker, metrics),
            settings.consumer_group_prefix,
            settings.kafka_feedback_agencies,
        )
    )
    broker.include_router(
        follow_up_outcomes(
            service, dead_letter_sink(broker, metrics), settings.consumer_group_prefix
        )
    )
    declare_dead_letter_publishers(broker)

    directory = MongoDirectory(db, relay.outbox())

    async def prepare_database() -> None:
        await ensure_indexes(db)
        await ensure_activity_indexes(db)
        await ensure_directory_indexes(db)
        if indexed := await directory.index_unindexed():
            log.info("directory services given search entries", extra={"count": indexed})
        if keyed := await repository.key_family_names():
            log.info("family names keyed for search", extra={"count": keyed})

    metrics.probe("outbox", outbox_probe(metrics, db))
    runtime = Runtime(broker, client, background=[relay.run], on_start=[prepare_database])
    return create_app(
        title="CMHL referral service",
        description="Liaisons' referral API and agency intake.",
        settings=settings,
        runtime=runtime,
        metrics=metrics,
        routers=[
            http_router,
            agency_router,
            imports_router,
            registry_router,
            activity_router,
            directory_router,
        ],
        state={
            "referrals": service,
            "activity": ActivityService(
                MongoActivityRepository(db, relay.outbox()),
                service,
                audit,
                clock or SystemClock(),
                settings.zone,
                relay.wake,
            ),
            "registry": RegistryService(
                registry, repository, audit, clock or SystemClock(), registry_changed
            ),
            "directory": Directory(directory, service, clock or SystemClock()),
            "relay": relay,
            "zone": settings.zone,
        },
    )
