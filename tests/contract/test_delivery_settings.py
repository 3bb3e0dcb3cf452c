"""The client settings our delivery guarantees rest on, asserted for every service as built.

Producers: acks=all and idempotence (no acknowledged event lost, no retry written twice).
Consumers: explicit group, earliest reset, NACK_ON_ERROR, and no auto-commit (offsets are
committed only after the handler wrote what it read); and fetches that wait for a batch, the
stack's largest CPU saving per referral (servicekit's kafka.py says why)."""

import base64
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from faststream import AckPolicy

from cmhl_contracts import AgencyReferralSubmittedV1, ReferralFeedbackV1
from cmhl_followup.bootstrap import build as build_followup
from cmhl_followup.config import FollowUpSettings
from cmhl_notifications.bootstrap import build as build_notifications
from cmhl_notifications.config import NotificationSettings
from cmhl_placement.bootstrap import build as build_placement
from cmhl_placement.config import PlacementSettings
from cmhl_referral.bootstrap import build as build_referral
from cmhl_referral.config import ReferralSettings
from cmhl_reporting.bootstrap import build as build_reporting
from cmhl_reporting.config import ReportingSettings
from cmhl_servicekit.kafka import FETCH_MAX_WAIT_MS, FETCH_MIN_BYTES
from cmhl_servicekit.kafka_access import Grant, load, render_plan
from cmhl_servicekit.topics import feedback_agencies
from cmhl_training.bootstrap import build as build_training
from cmhl_training.config import TrainingSettings

COMMON: dict[str, Any] = {
    "kafka_bootstrap": "127.0.0.1:1",
    "kafka_username": "tester",
    "kafka_password": "not-used",
    "mongo_uri": "mongodb://127.0.0.1:1/",
    "auth_issuer": "http://127.0.0.1:1/realms/cmhl",
    "pseudonym_key": "p",
    "encryption_key": base64.b64encode(b"e" * 32).decode(),
    "referral_url": "http://127.0.0.1:1",
    # The agencies on Kafka, as deploy/topics.toml lists them (the referral service reads each
    # one's own intake topic).
    "kafka_feedback_agencies": feedback_agencies(
        tomllib.loads((Path(__file__).resolve().parents[2] / "deploy/topics.toml").read_text())
    ),
}
APPS = {
    "referral": lambda: build_referral(ReferralSettings(**COMMON)),
    "followup": lambda: build_followup(FollowUpSettings(**COMMON)),
    "training": lambda: build_training(TrainingSettings(**COMMON)),
    "reporting": lambda: build_reporting(ReportingSettings(**COMMON)),
    "placement": lambda: build_placement(PlacementSettings(**COMMON)),
    "notifications": lambda: build_notifications(NotificationSettings(**COMMON)),
}


@pytest.mark.parametrize("service", APPS)
def test_producers_wait_for_all_replicas_and_are_idempotent(service: str) -> None:
    app: FastAPI = APPS[service]()
    params = app.state.runtime.broker._connection_kwargs
    assert params["acks"] == "all"
    assert params["enable_idempotence"] is True


@pytest.mark.parametrize("service", ["referral", "followup", "reporting", "notifications"])
def test_consumers_commit_only_after_processing(service: str) -> None:
    app: FastAPI = APPS[service]()
    subscribers = list(app.state.runtime.broker.subscribers)
    assert subscribers
    for subscriber in subscribers:
        assert subscriber.group_id.startswith(f"cmhl.{service}.")
        assert subscriber.ack_policy is AckPolicy.NACK_ON_ERROR
        assert subscriber._connection_args["enable_auto_commit"] is False
        assert subscriber._connection_args["auto_offset_reset"] == "earliest"


@pytest.mark.parametrize("service", ["referral", "followup", "reporting", "notifications"])
def test_consumers_fetch_in_batches(service: str) -> None:
    """A consumer built outside servicekit's subscribe_batches would fetch once per event
    again (aiokafka's default is 1 byte)."""
    assert FETCH_MIN_BYTES > 1
    assert FETCH_MAX_WAIT_MS <= 500  # an event's wait per hop at a trickle
    app: FastAPI = APPS[service]()
    for subscriber in app.state.runtime.broker.subscribers:
        assert subscriber._connection_args["fetch_min_bytes"] == FETCH_MIN_BYTES
        assert subscriber._connection_args["fetch_max_wait_ms"] == FETCH_MAX_WAIT_MS


DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _grants(*, demo: bool = False) -> list[Grant]:
    return load(DEPLOY / "kafka-access.toml", DEPLOY / "topics.toml", demo=demo)


@pytest.mark.parametrize("service", APPS)
def test_each_service_is_granted_exactly_the_topics_it_reads_and_writes(service: str) -> None:
    """A new subscription or event without its grant fails here, not in production (ADR 0010)."""
    broker = APPS[service]().state.runtime.broker
    security = broker._connection_kwargs
    assert security["security_protocol"] == "SASL_SSL"  # the default: never anonymous
    assert security["sasl_mechanism"] == "SCRAM-SHA-512"
    assert security["sasl_plain_username"] == COMMON["kafka_username"]
    reads = {t.name for subscriber in broker.subscribers for t in subscriber.topics}
    mine = [g for g in _grants() if g.principal == service]
    granted_reads = {g.name for g in mine if g.resource == "topic" and g.operation == "read"}
    assert reads == granted_reads
    writes = [g for g in mine if g.resource == "topic" and g.operation == "write"]
    published = {p.topic for p in broker.publishers}
    for topic in published:
        assert any(
            topic.startswith(g.name) if g.pattern == "prefixed" else topic == g.name for g in writes
        ), f"{service} publishes {topic} without a grant"
    # Only its own topics and the dead letters of what it reads: never another's events.
    assert {g.name for g in writes} == {f"cmhl.{service}."} | {f"{t}.dlq" for t in reads}
    assert [g.name for g in mine if g.resource == "group"] == [f"cmhl.{service}."]


def test_nobody_but_the_referral_service_reads_the_agencies_submissions() -> None:
    shared, own = AgencyReferralSubmittedV1.topic(), AgencyReferralSubmittedV1.agency_topic
    for topic in (shared, own("columbia-pd")):
        readers = {
            g.principal for g in _grants(demo=True) if g.name == topic and g.operation == "read"
        }
        assert readers == {"referral"}
    # An agency writes its own topic only; the shared one has no writer but the local demo's.
    writers = {
        (g.principal, g.name)
        for g in _grants()
        if g.operation == "write" and g.name.startswith(shared)
    }
    assert writers == {
        ("agency-columbia-pd", own("columbia-pd")),
        ("referral", f"{own('columbia-pd')}.dlq"),
        ("referral", f"{shared}.dlq"),
    }
    assert ("demo-seeder", shared) in {(g.principal, g.name) for g in _grants(demo=True)}
    # An agency reads its own feedback topic, nobody else's.
    feedback = {
        g.name for g in _grants() if g.principal == "agency-columbia-pd" and g.operation == "read"
    }
    assert feedback == {ReferralFeedbackV1.agency_topic("columbia-pd"), "agency-columbia-pd."}


def test_a_submission_on_an_agency_topic_must_name_that_agency() -> None:
    own = AgencyReferralSubmittedV1.agency_topic("columbia-pd")
    assert AgencyReferralSubmittedV1.sender_of(own) == "columbia-pd"
    assert AgencyReferralSubmittedV1.sender_of(AgencyReferralSubmittedV1.topic()) is None


def test_the_kubernetes_plan_is_generated_from_the_declarations() -> None:
    committed = json.loads((DEPLOY / "k8s" / "base" / "topics" / "kafka-access.json").read_text())
    assert committed == json.loads(render_plan(_grants())), (
        "regenerate: uv run python -m cmhl_servicekit.kafka_access plan "
        "> deploy/k8s/base/topics/kafka-access.json"
    )
