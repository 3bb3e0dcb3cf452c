"""Traces (OpenTelemetry): one trace from an HTTP request through the outbox and Kafka to the
consumers' database writes, exported over OTLP when configured and free of personal data.

Nothing is traced unless a tracer provider is installed (`configure_tracing` with an endpoint in
a service process, `install` in tests): apps and brokers built without one get no
instrumentation at all, so an unconfigured service pays nothing.

Privacy: spans are named by route template or topic, never by a path or a value. Whatever the
instrumentations record, every span passes `PrivateSpans` before it is exported: only attributes
named in `EXPORTED_ATTRIBUTES` leave (no URL, query string, header, body or statement), error
descriptions and exception messages are dropped (a validation error quotes its input), and an
exception event keeps only its type.
"""

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from faststream._internal.basic_types import AsyncFuncAny
from faststream._internal.context.repository import ContextRepo
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.response import KafkaPublishCommand
from faststream.message import StreamMessage
from faststream.opentelemetry.middleware import BaseTelemetryMiddleware
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, NonRecordingSpan, SpanKind, Status
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None

# What a span may carry out of the process: methods, route templates, status codes, topics,
# partitions, offsets, keys (a pseudonymous aggregate id, as on Kafka), event and correlation
# ids, database and collection names, command names, peers, error types. A URL (its query string
# may hold a family name searched for), a header, a statement or a body is never among them.
EXPORTED_ATTRIBUTES = frozenset(
    {
        "http.method",
        "http.request.method",
        "http.route",
        "http.status_code",
        "http.response.status_code",
        "http.scheme",
        "url.scheme",
        "http.flavor",
        "network.protocol.version",
        "messaging.system",
        "messaging.operation",
        "messaging.destination.name",
        "messaging.destination_publish.name",
        "messaging.message.id",
        "messaging.message.conversation_id",
        "messaging.message.payload_size_bytes",
        "messaging.batch.message_count",
        "messaging.kafka.destination.partition",
        "messaging.kafka.message.offset",
        "messaging.kafka.message.key",
        "db.system",
        "db.system.name",
        "db.name",
        "db.namespace",
        "db.operation",
        "db.operation.name",
        "db.operation.batch.size",  # a group commit's number of callers
        "db.mongodb.collection",
        "db.collection.name",
        "db.statement",  # the command's name only: statements are not captured (see install)
        "net.peer.name",
        "net.peer.port",
        "server.address",
        "server.port",
        "error.type",
        "exception.type",
    }
)


def _kept(attributes: Attributes) -> dict[str, Any]:
    # FastStream records a Kafka key as bytes, which not every exporter encodes.
    return {
        k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        for k, v in (attributes or {}).items()
        if k in EXPORTED_ATTRIBUTES
    }


def private(span: ReadableSpan) -> ReadableSpan:
    """The span as it may leave the process (see the module's docstring)."""
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_kept(span.attributes),
        events=[Event(e.name, _kept(e.attributes), e.timestamp) for e in span.events],
        links=[Link(link.context, _kept(link.attributes)) for link in span.links],
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class PrivateSpans(SpanExporter):
    """Exports through another exporter only what `private` keeps of each span."""

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._exporter.export([private(s) for s in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class _NoUnparentedDatabaseCalls(Sampler):
    """Background loops (the outbox relay's and timers' polls) query the database every second
    outside any request: a trace for each poll would bury the traces that matter. A database
    call is traced as part of a request or a message, never on its own."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return ALWAYS_ON.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "NoUnparentedDatabaseCalls"


def tracer_provider(service: str, exporter: SpanExporter, *, batch: bool = True) -> TracerProvider:
    """A provider whose spans reach `exporter` only through `PrivateSpans`. `batch=False`
    exports each span as it ends (tests read them at once)."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"cmhl-{service}"}),
        sampler=ParentBased(root=_NoUnparentedDatabaseCalls()),
    )
    wrapped = PrivateSpans(exporter)
    processor: SpanProcessor = (
        BatchSpanProcessor(wrapped) if batch else SimpleSpanProcessor(wrapped)
    )
    provider.add_span_processor(processor)
    return provider


def configure_tracing(service: str, otlp_endpoint: str | None) -> TracerProvider | None:
    """In a service process: export traces over OTLP/HTTP to `otlp_endpoint` (the collector's
    base URL; spans go to `<endpoint>/v1/traces`), or trace nothing when it is None."""
    if not otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
    provider = tracer_provider(service, exporter)
    trace.set_tracer_provider(provider)
    install(provider)
    return provider


def install(provider: TracerProvider) -> None:
    """Traces apps and brokers built from now on, and every database client's commands."""
    global _provider
    _provider = provider
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    instrumentor = PymongoInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        # The command listener keeps the tracer it is given: `_Current` follows `install`.
        instrumentor.instrument(tracer_provider=_Current(), capture_statement=False)


def uninstall() -> None:
    """Stops tracing (tests): spans end up nowhere; apps built meanwhile keep their hooks."""
    global _provider
    _provider = None


def enabled() -> bool:
    return _provider is not None


class _Current(trace.TracerProvider):
    """The provider installed at the time a span starts (or none): instrumentations that bind
    a tracer once still follow `install` and `uninstall`."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        return _CurrentTracer(instrumenting_module_name, instrumenting_library_version)


class _CurrentTracer(trace.Tracer):
    def __init__(self, name: str, version: str | None) -> None:
        self._name = name
        self._version = version

    def _tracer(self) -> trace.Tracer:
        if _provider is None:
            return trace.NoOpTracer()
        return _provider.get_tracer(self._name, self._version)

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracer().start_span(*args, **kwargs)

    @contextlib.contextmanager  # the API's own decorator is private; the behaviour is the same
    def start_as_current_span(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> Iterator[trace.Span]:
        with self._tracer().start_as_current_span(*args, **kwargs) as span:
            yield span


def _tracer() -> trace.Tracer:
    return _CurrentTracer(__name__, None)


# HTTP


def instrument_app(app: Any) -> None:
    """Server spans for the app's requests, named by route template (`POST
    /api/v1/referrals/{referral_id}`); probes and scrapes are not traced."""
    if not enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_Current(),
        excluded_urls="/health/,/metrics",
        exclude_spans=["receive", "send"],
    )


# Outbox


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, to store with an outbox entry."""
    carrier: dict[str, str] = {}
    if trace.get_current_span().get_span_context().is_valid:
        _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


@contextlib.contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Makes the stored context the active one, so the publish span (and the traceparent the
    message carries) continues the trace that wrote the outbox entry."""
    if not traceparent or not enabled():
        yield
        return
    token = otel_context.attach(_PROPAGATOR.extract({TRACEPARENT: traceparent}, Context()))
    try:
        yield
    finally:
        otel_context.detach(token)


# Kafka


def publish_middleware() -> KafkaTelemetryMiddleware | None:
    """FastStream's telemetry for publishing (a producer span, the traceparent in the message's
    headers); consuming is traced by `consuming` instead (see there)."""
    if not enabled():
        return None
    return _PublishTelemetry(tracer_provider=_Current(), include_messages_counters=False)


class _PublishTelemetry(KafkaTelemetryMiddleware):
    def __call__(
        self, msg: Any | None, /, *, context: ContextRepo
    ) -> BaseTelemetryMiddleware[KafkaPublishCommand]:
        return _PublishOnly(
            msg,
            tracer=self._tracer,
            metrics_container=self._metrics,
            settings_provider_factory=self._settings_provider_factory,
            context=context,
        )


class _PublishOnly(BaseTelemetryMiddleware[KafkaPublishCommand]):
    async def consume_scope(self, call_next: AsyncFuncAny, msg: StreamMessage[Any]) -> Any:
        # FastStream starts a new trace for every batch (linked to the producers): the records'
        # own spans, in `consuming`, keep each record in its producer's trace instead.
        return await call_next(msg)


def _headers(record: Any) -> Mapping[str, str]:
    found: dict[str, str] = {}
    for name, value in record.headers or ():
        # A producer we do not control (an agency) may send a header without a value.
        if (name == TRACEPARENT or name == "tracestate") and isinstance(value, bytes | bytearray):
            found[name] = bytes(value).decode("ascii", "replace")
    return found


@contextlib.contextmanager
def consuming(records: Sequence[Any]) -> Iterator[None]:
    """Spans for a batch of Kafka records: one `<topic> receive` span per record, a child of
    the span that published it (so each record stays in its producer's trace), and one
    `<topic> process` span around the batch's handling and its database writes. The process
    span is the child of the records' trace when the batch holds one; a batch mixing traces
    links to each record's span instead (one write serves them all)."""
    if not enabled() or not records:
        yield
        return
    tracer = _tracer()
    topic = records[0].topic
    received = []
    for record in records:
        producer = _PROPAGATOR.extract(_headers(record), Context())
        if not trace.get_current_span(producer).get_span_context().is_valid:
            continue
        span = tracer.start_span(
            f"{topic} receive",
            context=producer,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation": "receive",
                "messaging.destination.name": topic,
                "messaging.kafka.destination.partition": record.partition,
                "messaging.kafka.message.offset": record.offset,
            },
        )
        span.end()
        received.append(span.get_span_context())
    one_trace = len({r.trace_id for r in received}) == 1
    parent = trace.set_span_in_context(NonRecordingSpan(received[0])) if one_trace else Context()
    with tracer.start_as_current_span(
        f"{topic} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=None if one_trace else [Link(r) for r in received],
        attributes={
            "messaging.system": "kafka",
            "messaging.operation": "process",
            "messaging.destination.name": topic,
            "messaging.batch.message_count": len(records),
        },
    ):
        yield


# Group commit


def caller_span() -> trace.SpanContext | None:
    """The active span, for a batch that will serve this caller among others to link to."""
    span = trace.get_current_span().get_span_context()
    return span if span.is_valid else None


@contextlib.contextmanager
def serving(name: str, callers: Sequence[trace.SpanContext | None]) -> Iterator[None]:
    """A span for one write that serves several callers (a group commit): a trace of its own,
    linked to each caller's span, as `consuming` does for a batch mixing traces. What the write
    stores (outbox entries) continues this span, so each caller's trace reaches the publish
    through its link."""
    if not enabled():
        yield
        return
    with _tracer().start_as_current_span(
        name,
        context=Context(),
        kind=SpanKind.INTERNAL,
        links=[Link(caller) for caller in callers if caller is not None],
        attributes={"db.operation.batch.size": len(callers)},
    ):
        yield
