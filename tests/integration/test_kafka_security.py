"""Kafka refuses what deploy/kafka-access.toml does not grant (ADR 0010), on the stack's real
broker: no anonymous client, no wrong password, no service reading or writing another's topics,
no agency reading the submissions, no consumer group under another service's name."""

import json
import os
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from cmhl_contracts import (
    AgencyReferralSubmittedV1,
    FollowUpCompletedV1,
    ReferralCreatedV1,
    ReferralFeedbackV1,
)
from cmhl_servicekit.kafka import KafkaAccess
from cmhl_servicekit.kafka_access import Grant, apply, create_grants, current_grants, load
from cmhl_servicekit.testing import kafka_principal_access

pytestmark = pytest.mark.integration

INTAKE = AgencyReferralSubmittedV1.topic()
CREATED = ReferralCreatedV1.topic()


async def _produce(access: KafkaAccess, topic: str) -> None:
    producer = AIOKafkaProducer(
        **access.client_options(), acks="all", enable_idempotence=True, request_timeout_ms=8000
    )
    try:  # stopped even when refused at start, so it leaves no connection behind
        await producer.start()
        await producer.send_and_wait(topic, b"{}", key=b"security-test")
    finally:
        await producer.stop()


async def _read(access: KafkaAccess, topic: str, group: str | None = None) -> None:
    """Subscribes as a service does, reads for a moment and commits. The group is one the
    principal may use unless named: the broker then refuses only for the topic."""
    user = access.username
    own = f"{user}." if user.startswith("agency-") else f"cmhl.{user}."
    consumer = AIOKafkaConsumer(
        topic,
        **access.client_options(),
        group_id=group or f"{own}security-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=8000,
    )
    try:
        await consumer.start()
        await consumer.getmany(timeout_ms=2000)
        await consumer.commit()
    finally:
        await consumer.stop()


async def _start_anonymous(bootstrap: str) -> None:
    anonymous = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await anonymous.start()
    finally:
        await anonymous.stop()


def _as(kafka_bootstrap: str, principal: str) -> KafkaAccess:
    return kafka_principal_access(kafka_bootstrap, principal)


async def test_a_client_without_credentials_or_with_a_wrong_password_is_refused(
    kafka_bootstrap: str,
) -> None:
    with pytest.raises(KafkaError):
        await _start_anonymous(kafka_bootstrap)
    impostor = _as(kafka_bootstrap, "referral").as_user("referral", "not-its-password")
    with pytest.raises(KafkaError):
        await _produce(impostor, CREATED)


async def test_a_service_reads_and_writes_only_what_it_is_granted(kafka_bootstrap: str) -> None:
    referral, training = _as(kafka_bootstrap, "referral"), _as(kafka_bootstrap, "training")
    # Its own topic and what it consumes, in its own consumer groups.
    await _produce(referral, CREATED)
    await _read(referral, INTAKE)
    await _read(referral, FollowUpCompletedV1.topic())
    # Another service's events: neither written nor read by a service not granted them.
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(training, CREATED)
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(training, CREATED)
    # The people in the agencies' submissions: only the referral service reads them.
    for other in ("followup", "reporting", "notifications", "placement", "training"):
        with pytest.raises(TopicAuthorizationFailedError):
            await _read(_as(kafka_bootstrap, other), INTAKE)
    # A consumer group under another service's name is refused (it could move its offsets).
    with pytest.raises(GroupAuthorizationFailedError):
        await _read(referral, INTAKE, "cmhl.reporting.projections")


async def test_an_agency_sends_on_its_own_topic_and_reads_only_its_own_feedback(
    kafka_bootstrap: str,
) -> None:
    agency = _as(kafka_bootstrap, "agency-columbia-pd")
    await _produce(agency, AgencyReferralSubmittedV1.agency_topic("columbia-pd"))
    for elsewhere in (INTAKE, AgencyReferralSubmittedV1.agency_topic("greene-so")):
        with pytest.raises(TopicAuthorizationFailedError):
            await _produce(agency, elsewhere)
    await _read(agency, ReferralFeedbackV1.agency_topic("columbia-pd"))
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(agency, INTAKE)
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(agency, CREATED)
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(agency, CREATED)
    # The demo's sender stands in for agencies on the local stack: it too only writes.
    sender = _as(kafka_bootstrap, "demo-seeder")
    await _produce(sender, INTAKE)
    with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)):
        await _read(sender, INTAKE)  # no consumer group of its own, no read of the topic


def _declared() -> tuple[set[Grant], dict[str, str]]:
    """The local stack's grants (the demo's sender included) and its principals' passwords."""
    deploy = Path(__file__).resolve().parents[2] / "deploy"
    declared = set(load(deploy / "kafka-access.toml", deploy / "topics.toml", demo=True))
    stored = json.loads(Path(os.environ["CMHL_TEST_KAFKA_PRINCIPALS"]).read_text())
    return declared, stored["kafka_principals"]


async def test_the_broker_holds_exactly_the_declared_grants(kafka_access: KafkaAccess) -> None:
    """What deploy/kafka-access.toml no longer says is revoked by the next apply."""
    declared, passwords = _declared()
    admin = AIOKafkaAdminClient(**kafka_access.client_options())
    await admin.start()
    try:
        assert await current_grants(admin) == declared
        stale = Grant("agency-columbia-pd", "write", "topic", INTAKE)
        await create_grants(admin, [stale])
        assert stale in await current_grants(admin)
    finally:
        await admin.close()
    await apply(kafka_access, sorted(declared), passwords)
    admin = AIOKafkaAdminClient(**kafka_access.client_options())
    await admin.start()
    try:
        assert await current_grants(admin) == declared
    finally:
        await admin.close()
