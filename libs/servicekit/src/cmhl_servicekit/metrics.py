"""Prometheus metrics, one registry per service app, served at `GET /metrics`.

What an operator on call needs to see, for every service the same way:
- HTTP requests: rate, latency and errors by route *template* (`/api/v1/referrals/{referral_id}`,
  never the id itself);
- Kafka consumers: FastStream's own middleware (messages, processing time, errors by handler);
- dead letters by topic and reason;
- consumer lag per group, topic and partition;
- the outbox backlog and the age of its oldest entry;
- timers pending and due, and how late the oldest due one is;
- projection freshness (reporting): how long an event takes to reach the views, and when they
  last took events in.

Gauges that need a database or broker look-up are refreshed when Prometheus scrapes, by the
service's probes, each within a time limit: a slow database makes a probe stale, never the scrape
fail. Labels carry routes, methods, statuses, topics, groups, partitions and reason codes only:
never a value from a record (a test scrapes every service under load and looks for the people's
data in the text).
"""

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pymongo.asynchronous.database import AsyncDatabase
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cmhl_servicekit.mongo import estimated_count
from cmhl_servicekit.outbox import MARKERS
from cmhl_servicekit.timers import TimerStore

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[None]]
PROBE_SECONDS = 2.0
# Latency buckets for an API whose goal is p99 < 100 ms (issue #14), up to the 30 s a client waits.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
"""The route label of a request no route matched (a 404): its path could be anything."""


class ServiceMetrics:
    """One service's metrics. A registry of its own, so that several apps in one process (the
    tests) never share counters."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "cmhl_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "cmhl_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            "cmhl_dead_letters",
            "Records sent to a dead-letter topic, by the topic they came from and the reason code",
            ["topic", "reason"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "cmhl_consumer_lag",
            "Records on a partition this service's consumer has not read yet",
            ["group", "topic", "partition"],
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "cmhl_outbox_backlog",
            "Written changes whose events are not yet published to Kafka",
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "cmhl_outbox_oldest_age_seconds",
            "How long the oldest unpublished change has waited (0 when none waits)",
            registry=r,
        )
        self.timers_pending = Gauge(
            "cmhl_timers_pending",
            "Durable timers scheduled and not yet fired, by timer store",
            ["store"],
            registry=r,
        )
        self.timers_due = Gauge(
            "cmhl_timers_due",
            "Timers whose time has come and that have not fired yet, by timer store",
            ["store"],
            registry=r,
        )
        self.timers_oldest_due = Gauge(
            "cmhl_timers_oldest_due_seconds",
            "How late the oldest due timer is (0 when none is due), by timer store",
            ["store"],
            registry=r,
        )
        self.projection_delay = Histogram(
            "cmhl_projection_delay_seconds",
            "From an event's occurrence to its being in the views (reporting)",
            buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
            registry=r,
        )
        self.projection_applied = Gauge(
            "cmhl_projection_last_applied_timestamp_seconds",
            "When the views last took in a batch of events (Unix time; reporting)",
            registry=r,
        )
        self.probe_failures = Counter(
            "cmhl_metrics_probe_failures",
            "Scrape-time probes that failed or ran out of time, by probe",
            ["probe"],
            registry=r,
        )
        self._probes: dict[str, Probe] = {}

    def dead_lettered(self, topic: str, reason: str) -> None:
        self.dead_letters.labels(topic, reason_code(reason)).inc()

    def projected(self, occurred: list[datetime]) -> None:
        """A batch of events is in the views: how long each took, from its occurrence."""
        now = datetime.now(UTC)
        for at in occurred:
            self.projection_delay.observe(max(0.0, (now - at).total_seconds()))
        self.projection_applied.set(now.timestamp())

    def kafka_middleware(self) -> KafkaPrometheusMiddleware:
        """FastStream's consumer and producer metrics (`faststream_*`), in this registry."""
        return KafkaPrometheusMiddleware(registry=self.registry, app_name=self.service)

    def probe(self, name: str, probe: Probe) -> None:
        """A look-up that refreshes gauges when Prometheus scrapes."""
        self._probes[name] = probe

    async def render(self) -> bytes:
        async def run(name: str, probe: Probe) -> None:
            try:
                await asyncio.wait_for(probe(), PROBE_SECONDS)
            except Exception as exc:
                self.probe_failures.labels(name).inc()
                log.warning("metrics probe failed", extra={"reason": type(exc).__name__})

        await asyncio.gather(*(run(n, p) for n, p in self._probes.items()))
        return generate_latest(self.registry)


def reason_code(reason: str) -> str:
    """A dead letter's reason as a label: the part before its first colon, as a code
    (`invalid event: person.name: …` is `invalid_event`, `ValueError` stays), so a reason's
    details (field paths, counts) never multiply the series."""
    code = re.sub(r"[^a-z0-9]+", "_", reason.split(":", 1)[0].strip().lower()).strip("_")
    return code[:40] or "other"


class HttpMetrics:
    """ASGI middleware: counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            # FastAPI puts the matched route in the scope; its path is the template.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            # Any method string reaches a known path (and gets a 405): only the standard ones
            # become labels, so a client cannot mint series.
            method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
            method = method if route != UNMATCHED else "any"
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)


# Headers a reverse proxy (the ingress controller) adds to what it forwards.
FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


def came_through_a_proxy(request: Request) -> bool:
    """True for a request the ingress forwarded from outside; the operators' own tools reach
    the pods directly."""
    return any(header in request.headers for header in FORWARDED)


def metrics_router(metrics: ServiceMetrics) -> APIRouter:
    """`GET /metrics` in Prometheus's text format. Not in the API's schema: it is for the
    operators' Prometheus, which scrapes the pods directly. A request that came through a proxy
    (the ingress, from the internet) gets a 404, as if there were no such page."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        if came_through_a_proxy(request):
            return Response(status_code=404)
        return Response(await metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router


def consumer_lag_probe(metrics: ServiceMetrics, broker: KafkaBroker) -> Probe:
    """Lag of each partition assigned to this process's consumers: the partition's end offset
    (as the consumer last fetched it) minus the consumer's position."""

    async def probe() -> None:
        # Only the partitions assigned now: one that moved to another pod in a rebalance is
        # that pod's to report.
        metrics.consumer_lag.clear()
        for subscriber in broker.subscribers:
            consumer: Any = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            group = str(getattr(consumer, "_group_id", None) or "")
            for tp in consumer.assignment():
                end = consumer.highwater(tp)
                if end is None:
                    continue
                position = await consumer.position(tp)
                lag = max(0, end - position)
                metrics.consumer_lag.labels(group, tp.topic, str(tp.partition)).set(lag)

    return probe


def outbox_probe(metrics: ServiceMetrics, db: AsyncDatabase[dict[str, Any]]) -> Probe:
    """The outbox's markers (ADR 0005): one per written change not yet published. The relay
    deletes a marker once its events are out, so the first marker in natural order is about the
    oldest; the count is the collection's estimate (`estimated_count`: no scan, whatever the
    backlog)."""
    markers = db[MARKERS]

    async def probe() -> None:
        metrics.outbox_backlog.set(await estimated_count(markers))
        oldest = await markers.find_one({}, {"created_at": 1})
        age = 0.0
        if oldest and isinstance(oldest.get("created_at"), datetime):
            created = oldest["created_at"]
            created = created if created.tzinfo else created.replace(tzinfo=UTC)
            age = max(0.0, (datetime.now(UTC) - created).total_seconds())
        metrics.outbox_oldest_age.set(age)

    return probe


def timers_probe(metrics: ServiceMetrics, store: TimerStore, name: str) -> Probe:
    """A durable timer store's backlog."""

    async def probe() -> None:
        now = datetime.now(UTC)
        backlog = await store.backlog(now)
        metrics.timers_pending.labels(name).set(backlog.pending)
        metrics.timers_due.labels(name).set(backlog.due)
        late = (now - backlog.oldest_due_at).total_seconds() if backlog.oldest_due_at else 0.0
        metrics.timers_oldest_due.labels(name).set(max(0.0, late))

    return probe
