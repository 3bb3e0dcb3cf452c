"""Traces: a request's trace continues through an outbox entry, a Kafka record and a batch
consumer; spans carry no personal data; log lines name their trace; nothing is traced unless
tracing is installed."""

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from faststream.kafka import KafkaRouter, TestKafkaBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cmhl_contracts import FollowUpDueV1
from cmhl_servicekit import tracing
from cmhl_servicekit.consuming import BatchProcessor, Delivery
from cmhl_servicekit.kafka import KafkaAccess, make_broker, subscribe_batches
from cmhl_servicekit.logging import JsonFormatter
from cmhl_servicekit.outbox import kafka_publish, outbox_entry

FAMILY_NAME = "Okafor"


def due_event() -> FollowUpDueV1:
    now = datetime.now(UTC)
    return FollowUpDueV1.create(
        about=("a", "1"),
        producer="test",
        correlation_id="corr-1",
        follow_up_id=uuid.uuid4(),
        referral_id=uuid.uuid4(),
        liaison_id="l",
        due_at=now,
        referred_at=now,
    )


def parent_chain(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = [span.name]
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def everything_exported(finished: tuple[ReadableSpan, ...]) -> str:
    return "\n".join(s.to_json() for s in finished)


async def test_a_trace_runs_from_an_outbox_entry_through_kafka_into_a_batch_consumer(
    spans: InMemorySpanExporter,
) -> None:
    broker = make_broker(KafkaAccess("kafka.test:9092", "u", "p", "SASL_PLAINTEXT"), "test")
    applied_under: list[trace.SpanContext] = []

    async def apply(deliveries: list[Delivery[FollowUpDueV1]]) -> None:
        applied_under.append(trace.get_current_span().get_span_context())

    async def dead_letter(record: Any, reason: str) -> None:
        raise AssertionError(reason)

    router = KafkaRouter()
    subscribe_batches(
        router,
        BatchProcessor(FollowUpDueV1, apply, dead_letter),
        topics=[FollowUpDueV1.topic()],
        group_id="test.tracing",
        handler_name="on_follow_up_due",
    )
    broker.include_router(router)
    tracer = trace.get_tracer("test", tracer_provider=tracing._Current())
    with tracer.start_as_current_span("POST /api/v1/referrals") as request:
        entry = outbox_entry(due_event(), 1)
    assert "traceparent" in entry
    async with TestKafkaBroker(broker) as test_broker:
        # The relay publishes later, outside the request.
        await kafka_publish(test_broker.publish)(entry)

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished if s.context}
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in finished if s.context} == {trace_id}
    topic = FollowUpDueV1.topic()
    process = next(s for s in finished if s.name == f"{topic} process")
    # FastStream's producer spans: `create` (whose context the headers carry), then `publish`.
    assert parent_chain(process, by_id) == [
        f"{topic} process",
        f"{topic} receive",
        f"{topic} create",
        "POST /api/v1/referrals",
    ]
    assert applied_under == [process.context]


async def test_an_entry_written_without_a_trace_still_publishes(
    spans: InMemorySpanExporter,
) -> None:
    sent: list[dict[str, Any]] = []

    async def publish(body: bytes, **kwargs: Any) -> None:
        sent.append(kwargs)

    entry = outbox_entry(due_event(), 1)
    assert "traceparent" not in entry
    await kafka_publish(publish)(entry)
    assert sent[0]["topic"] == FollowUpDueV1.topic()


async def test_http_spans_are_named_by_route_and_carry_no_query_or_error_text(
    spans: InMemorySpanExporter,
) -> None:
    app = FastAPI()

    @app.get("/api/v1/referrals/{referral_id}")
    async def read(referral_id: str, family_name: str = "") -> dict[str, str]:
        raise ValueError(f"no referral for {family_name}")

    tracing.instrument_app(app)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://test",
        ) as client,
    ):
        answer = await client.get("/api/v1/referrals/r-1", params={"family_name": FAMILY_NAME})
    assert answer.status_code == 500
    finished = spans.get_finished_spans()
    assert [s.name for s in finished] == ["GET /api/v1/referrals/{referral_id}"]
    attributes = finished[0].attributes or {}
    assert attributes["http.route"] == "/api/v1/referrals/{referral_id}"
    assert not {"http.url", "url.full", "url.query", "http.target", "url.path"} & set(attributes)
    assert FAMILY_NAME not in everything_exported(finished)
    assert "r-1" not in everything_exported(finished)
    # The exception is recorded, by type only: its message quoted the name.
    (exception,) = (e for e in finished[0].events if e.name == "exception")
    assert dict(exception.attributes or {}) == {"exception.type": "ValueError"}


async def test_nothing_is_instrumented_without_a_provider() -> None:
    assert tracing.configure_tracing("test", None) is None
    app = FastAPI()
    tracing.instrument_app(app)
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    assert tracing.publish_middleware() is None
    assert tracing.current_traceparent() is None


def test_log_lines_carry_the_active_trace(spans: InMemorySpanExporter) -> None:
    formatter = JsonFormatter("test")
    record = logging.LogRecord("cmhl", logging.INFO, __file__, 1, "hello", None, None)
    assert "trace_id" not in json.loads(formatter.format(record))
    tracer = trace.get_tracer("test", tracer_provider=tracing._Current())
    with tracer.start_as_current_span("work") as span:
        line = json.loads(formatter.format(record))
    context = span.get_span_context()
    assert line["trace_id"] == trace.format_trace_id(context.trace_id)
    assert line["span_id"] == trace.format_span_id(context.span_id)


def test_a_trace_header_without_a_value_is_ignored_not_a_stuck_batch() -> None:
    """An agency's own producer may send `traceparent` with no value (None in aiokafka): the
    record is read like one without the header, never raising before it is processed."""

    from types import SimpleNamespace

    record = SimpleNamespace(
        headers=[("traceparent", None), ("tracestate", b"vendor=1"), ("other", b"x")]
    )
    assert tracing._headers(record) == {"tracestate": "vendor=1"}
