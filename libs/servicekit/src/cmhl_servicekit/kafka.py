"""Kafka broker factory with the delivery settings our guarantees depend on, and the one way
every client (service, tool, test) says who it is to Kafka."""

import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from aiokafka import ConsumerRecord
from aiokafka.helpers import create_ssl_context
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.security import SASLScram512

from cmhl_contracts import IntegrationEvent
from cmhl_servicekit import tracing
from cmhl_servicekit.consuming import (
    BatchProcessor,
    DeadLetterSink,
    Delivery,
    dead_letter_headers,
)

if TYPE_CHECKING:
    from cmhl_servicekit.metrics import ServiceMetrics

# Producer: acks=all and idempotence, so an acknowledged event is on every in-sync replica and a
# producer retry cannot write it twice. Consumers: offsets are committed only after the handler
# returned (NACK_ON_ERROR rewinds the batch on a transient error; poison records never raise,
# they are dead-lettered first). Topics are declared in deploy/, never auto-created.
PRODUCER_ACKS = "all"
ACK_POLICY = AckPolicy.NACK_ON_ERROR
# Consumers' fetches: the broker answers once this many bytes are waiting or the wait is over.
# With aiokafka's defaults (1 byte, 500 ms) every consumer group fetched about once per event
# under load, a round trip on both sides each time (29 groups). 64 KB is a few dozen events; the
# wait stays aiokafka's 500 ms, so an idle consumer polls as often as before. The cost: at a
# trickle, an event waits up to half a second per consumer hop (no reader waits on a hop: a
# liaison's pages read the service that took the write). Measured in bench.pipeline_cpu
# (docs/benchmarks.md): about 76 -> 63 ms of CPU per referral, and the API's p50 fell from
# ~155 to ~40 ms at 25/s on 2 cores, because the cores were no longer busy with fetches.
FETCH_MIN_BYTES = 64 * 1024
FETCH_MAX_WAIT_MS = 500


SecurityProtocol = Literal["SASL_SSL", "SASL_PLAINTEXT"]
SECURITY_PROTOCOLS: tuple[str, ...] = get_args(SecurityProtocol)
SASL_MECHANISM = "SCRAM-SHA-512"
ACCESS_ENV = "CMHL_KAFKA_"


@dataclass(frozen=True)
class KafkaAccess:
    """Where Kafka is and who a client is there (ADR 0010). Every client signs in with its own
    SCRAM-SHA-512 principal: over TLS in production (SASL_SSL), over the loopback interface on
    the local stack (SASL_PLAINTEXT). There is no anonymous access, so there is no PLAINTEXT."""

    bootstrap: str
    username: str
    password: str = field(repr=False)
    security_protocol: SecurityProtocol = "SASL_SSL"
    ssl_cafile: str | None = None

    def __post_init__(self) -> None:
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ValueError(
                f"Kafka security protocol {self.security_protocol!r}: one of "
                f"{', '.join(SECURITY_PROTOCOLS)} (no anonymous access)"
            )
        if not self.username or not self.password:
            raise ValueError("a Kafka client needs its principal's username and password")

    @classmethod
    def from_env(cls, bootstrap: str, prefix: str = ACCESS_ENV) -> "KafkaAccess":
        """For the command-line tools: CMHL_KAFKA_USERNAME, CMHL_KAFKA_PASSWORD,
        CMHL_KAFKA_SECURITY_PROTOCOL (default SASL_SSL), CMHL_KAFKA_SSL_CAFILE."""
        missing = [
            f"{prefix}{n}" for n in ("USERNAME", "PASSWORD") if not os.environ.get(prefix + n)
        ]
        if missing:
            raise SystemExit(
                f"Kafka refuses anonymous clients: set {' and '.join(missing)} (the principal "
                "this tool acts as; the local stack's are in deploy/local/state/credentials.json)"
            )
        protocol = os.environ.get(f"{prefix}SECURITY_PROTOCOL", "SASL_SSL")
        return cls(
            bootstrap,
            os.environ[f"{prefix}USERNAME"],
            os.environ[f"{prefix}PASSWORD"],
            protocol,  # type: ignore[arg-type]  # checked in __post_init__
            os.environ.get(f"{prefix}SSL_CAFILE") or None,
        )

    @property
    def servers(self) -> list[str]:
        """`bootstrap` is `host:port[,host:port...]`: every broker of a cluster may be named."""
        return [server.strip() for server in self.bootstrap.split(",")]

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.security_protocol != "SASL_SSL":
            return None
        # A CA file mounted from an optional Secret may be absent where the brokers' certificates
        # come from a public CA: then the system's CAs verify them.
        cafile = self.ssl_cafile if self.ssl_cafile and os.path.exists(self.ssl_cafile) else None
        context: ssl.SSLContext = create_ssl_context(cafile=cafile)
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        return {
            "bootstrap_servers": self.servers,
            "security_protocol": self.security_protocol,
            "sasl_mechanism": SASL_MECHANISM,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
            "ssl_context": self.ssl_context(),
        }

    def as_user(self, username: str, password: str) -> "KafkaAccess":
        return KafkaAccess(
            self.bootstrap, username, password, self.security_protocol, self.ssl_cafile
        )


def make_broker(
    access: KafkaAccess, client_id: str, metrics: "ServiceMetrics | None" = None
) -> KafkaBroker:
    """A service's broker; with `metrics`, FastStream's consumer and producer metrics go into
    the service's registry; with traces configured, every publish carries its trace context."""
    middlewares: list[Any] = [metrics.kafka_middleware()] if metrics else []
    if (traced := tracing.publish_middleware()) is not None:
        middlewares.append(traced)
    return KafkaBroker(
        access.servers,
        security=SASLScram512(
            access.username,
            access.password,
            use_ssl=access.security_protocol == "SASL_SSL",
            ssl_context=access.ssl_context(),
        ),
        client_id=client_id,
        acks=PRODUCER_ACKS,
        enable_idempotence=True,
        ack_policy=ACK_POLICY,
        allow_auto_create_topics=False,
        logger=logging.getLogger(f"{client_id}.broker"),
        log_level=logging.DEBUG,
        middlewares=middlewares,
    )


def consumer_group(prefix: str, service: str, purpose: str) -> str:
    """`cmhl.<service>.<purpose>` in production."""
    return f"{prefix}.{service}.{purpose}"


async def ping(broker: KafkaBroker) -> bool:
    return await broker.ping(timeout=2.0)


def dead_letter_sink(
    broker: KafkaBroker, metrics: "ServiceMetrics | None" = None
) -> DeadLetterSink:
    """Sends a record's original bytes to `<topic>.dlq` with the reason in its headers (and
    counts it by topic and reason code, with `metrics`)."""

    async def send(record: "ConsumerRecord[Any, Any]", reason: str) -> None:
        await broker.publish(
            record.value or b"",
            topic=f"{record.topic}.dlq",
            key=record.key,
            headers=dead_letter_headers(record, reason),
        )
        if metrics:
            metrics.dead_lettered(record.topic, reason)

    return send


def subscribe_batches(
    router: KafkaRouter,
    processor: BatchProcessor[Any],
    *,
    topics: Sequence[str],
    group_id: str,
    handler_name: str,
    max_records: int = 500,
) -> None:
    """Registers a batch subscriber with the delivery settings every consumer must have.

    The ack policy is set on the subscriber itself: FastStream 0.7.8 decides `enable_auto_commit`
    when a router's subscriber is created, before the broker's policy is known, so a policy set
    only on the broker leaves router subscribers auto-committing (at-most-once)."""

    async def handler(message: KafkaMessage) -> None:
        records = message.raw_message
        # A tuple from aiokafka, a list from FastStream's TestKafkaBroker.
        batch = tuple(records) if isinstance(records, tuple | list) else (records,)
        with tracing.consuming(batch):
            await processor.process(batch)

    handler.__name__ = handler_name
    router.subscriber(
        *topics,
        group_id=group_id,
        auto_offset_reset="earliest",
        batch=True,
        max_records=max_records,
        ack_policy=ACK_POLICY,
        fetch_min_bytes=FETCH_MIN_BYTES,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )(handler)


EventHandler = tuple[type[IntegrationEvent], str, Callable[[list[Any]], Awaitable[Any]]]
"""An event type, the purpose its consumer group is named by, and what takes a batch of them."""


def event_handlers_router(
    service: str,
    handlers: list[EventHandler],
    dead_letter: DeadLetterSink,
    group_prefix: str,
    *,
    max_records: int = 200,
) -> KafkaRouter:
    """A router with one consumer group per handled topic (a backlog on one never holds up the
    others), each handler given the decoded events of a batch."""
    router = KafkaRouter()
    for event_type, purpose, handle in handlers:

        async def apply(
            deliveries: list[Delivery[Any]],
            handle: Callable[[list[Any]], Awaitable[Any]] = handle,
        ) -> None:
            await handle([d.event for d in deliveries])

        subscribe_batches(
            router,
            BatchProcessor(event_type, apply, dead_letter),
            topics=[event_type.topic()],
            group_id=consumer_group(group_prefix, service, purpose),
            handler_name=f"on_{event_type.event_name().replace('-', '_')}",
            max_records=max_records,
        )
    return router
