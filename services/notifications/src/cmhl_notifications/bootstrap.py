"""Composition root of the notifications service; tests override the clock and the mailer."""

from typing import Any

from fastapi import FastAPI

from cmhl_notifications.adapters.mongo import MongoNotificationStore, ensure_indexes
from cmhl_notifications.adapters.smtp import SmtpMailer
from cmhl_notifications.application.ports import Mailer
from cmhl_notifications.application.service import NotificationService
from cmhl_notifications.config import NotificationSettings
from cmhl_notifications.entrypoints.http.routes import router as http_router
from cmhl_notifications.entrypoints.messaging.events import build_router
from cmhl_servicekit.asyncapi import declare_dead_letter_publishers
from cmhl_servicekit.audit import MongoAuditLog
from cmhl_servicekit.clock import Clock, SystemClock
from cmhl_servicekit.http import create_app
from cmhl_servicekit.kafka import dead_letter_sink, make_broker
from cmhl_servicekit.metrics import ServiceMetrics, timers_probe
from cmhl_servicekit.mongo import make_mongo_client
from cmhl_servicekit.runtime import Runtime
from cmhl_servicekit.timers import run_timers

SERVICE = "notifications"


def build(
    settings: NotificationSettings,
    *,
    clock: Clock | None = None,
    mailer: Mailer | None = None,
    **_: Any,
) -> FastAPI:
    metrics = ServiceMetrics(SERVICE)
    broker = make_broker(settings.kafka_access(), f"cmhl-{SERVICE}", metrics)
    client = make_mongo_client(settings.mongo_uri, f"cmhl-{SERVICE}")
    db = client[settings.mongo_database]
    audit = MongoAuditLog(client[settings.audit_database], SERVICE)
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    store = MongoNotificationStore(db)
    service = NotificationService(
        store,
        mailer
        or SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            settings.mail_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=password,
        ),
        audit,
        clock or SystemClock(),
        settings.link_base_url,
        settings.mail_from,
    )
    broker.include_router(
        build_router(service, dead_letter_sink(broker, metrics), settings.consumer_group_prefix)
    )
    declare_dead_letter_publishers(broker)

    async def mail_timer() -> None:
        await run_timers(
            service.send_due_mail, batch=100, interval_seconds=settings.mail_scan_seconds
        )

    async def prepare_database() -> None:
        await ensure_indexes(db)

    metrics.probe("timers", timers_probe(metrics, store.timers, "mail"))
    runtime = Runtime(broker, client, background=[mail_timer], on_start=[prepare_database])
    return create_app(
        title="CMHL notifications service",
        description="Tells liaisons of new referrals and follow-ups due, in the app and by email.",
        settings=settings,
        runtime=runtime,
        metrics=metrics,
        routers=[http_router],
        state={"notifications": service},
    )
