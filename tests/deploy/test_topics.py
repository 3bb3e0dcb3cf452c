"""cmhl_servicekit.topics: the one path from deploy/topics.toml to Kafka topics for compose and
Kubernetes. Unit tests on the declarations, and an integration test on the real broker."""

import json
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from cmhl_contracts import (
    AGENCY_EVENTS,
    ALL_EVENTS,
    AgencyReferralSubmittedV1,
    ReferralFeedbackV1,
)
from cmhl_servicekit.testing import eventually, kafka_test_access
from cmhl_servicekit.topics import (
    create_topics,
    declared_retention,
    declared_topics,
    load_retention,
    load_topics,
    main,
    render_plan,
)

REPO = Path(__file__).resolve().parents[2]
DECLARATIONS = REPO / "deploy" / "topics.toml"


def test_every_contract_topic_and_its_dead_letters_with_declared_partitions() -> None:
    declarations = tomllib.loads(DECLARATIONS.read_text())
    topics = declared_topics(declarations)
    agencies = declarations["agency_topics"]["agencies"]
    # Each agency on Kafka: its feedback topic(s), its own intake topic and that one's dead letters.
    assert len(topics) == 2 * len(ALL_EVENTS) + (len(AGENCY_EVENTS) + 2) * len(agencies)
    for agency in agencies:
        own = AgencyReferralSubmittedV1.agency_topic(agency)
        assert topics[own] == topics[f"{own}.dlq"] == topics[AgencyReferralSubmittedV1.topic()]
    for event in ALL_EVENTS:
        declared = declarations["topics"][event.topic()]
        expected = declared.get("partitions", declarations["defaults"]["partitions"])
        assert topics[event.topic()] == expected
        assert topics[event.dlq_topic()] == expected


def test_each_agency_that_reads_feedback_on_kafka_gets_its_own_topic_and_only_that() -> None:
    declarations: dict[str, Any] = tomllib.loads(DECLARATIONS.read_text())
    declarations["agency_topics"]["agencies"] = ["boone-so", "columbia-pd"]
    topics = declared_topics(declarations)
    feedback = sorted(t for t in topics if t.startswith(ReferralFeedbackV1.topic()))
    assert feedback == [
        "cmhl.referral.referral-feedback.v1.boone-so",
        "cmhl.referral.referral-feedback.v1.columbia-pd",
    ]
    assert ReferralFeedbackV1.topic() not in topics  # no shared topic anyone could read
    declarations["agency_topics"]["agencies"] = ["a:b"]
    with pytest.raises(ValueError, match="cannot name a topic"):
        declared_topics(declarations)


def test_the_referral_service_is_told_the_agencies_that_have_a_topic() -> None:
    declared = tomllib.loads(DECLARATIONS.read_text())["agency_topics"]["agencies"]
    platform = yaml.safe_load((REPO / "deploy" / "k8s" / "base" / "platform.yaml").read_text())
    compose = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())
    referral_env = compose["services"]["referral"]["environment"]
    assert json.loads(platform["data"]["kafka-feedback-agencies"]) == declared
    assert json.loads(referral_env["CMHL_REFERRAL_KAFKA_FEEDBACK_AGENCIES"]) == declared


def test_an_undeclared_contract_topic_is_refused() -> None:
    declarations: dict[str, Any] = tomllib.loads(DECLARATIONS.read_text())
    forgotten = ALL_EVENTS[0].topic()
    del declarations["topics"][forgotten]
    with pytest.raises(ValueError, match=forgotten):
        declared_topics(declarations)


def test_a_plan_reads_back_as_the_declarations(tmp_path: Path) -> None:
    plan = tmp_path / "topics.json"
    plan.write_text(render_plan(load_topics(DECLARATIONS), load_retention(DECLARATIONS)))
    assert load_topics(plan) == load_topics(DECLARATIONS)
    assert load_retention(plan) == load_retention(DECLARATIONS)


def test_the_intake_topic_and_its_dead_letters_keep_records_a_week_only() -> None:
    """Agencies' submissions name people: their topic is not kept forever like the others."""
    retention = load_retention(DECLARATIONS)
    intake = AgencyReferralSubmittedV1.topic()
    week = 7 * 24 * 3_600_000
    own = AgencyReferralSubmittedV1.agency_topic("columbia-pd")  # an agency's own intake topic
    assert retention == {intake: week, f"{intake}.dlq": week, own: week, f"{own}.dlq": week}
    declarations: dict[str, Any] = tomllib.loads(DECLARATIONS.read_text())
    declarations["topics"][intake]["retention_hours"] = 0
    with pytest.raises(ValueError, match="retention_hours must be positive"):
        declared_retention(declarations)


def test_the_plan_command_prints_the_committed_plan(capsys: pytest.CaptureFixture[str]) -> None:
    main(["plan", "--declarations", str(DECLARATIONS)])
    committed = REPO / "deploy" / "k8s" / "base" / "topics" / "topics.json"
    assert capsys.readouterr().out == committed.read_text(), (
        "regenerate: uv run python -m cmhl_servicekit.topics plan > " + str(committed)
    )


@pytest.mark.integration
async def test_creation_is_idempotent_and_sets_the_topic_configs(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = uuid.uuid4().hex[:8]
    topics = {f"cmhl-test.topics-{run}.a": 2, f"cmhl-test.topics-{run}.a.dlq": 2}
    admin = AIOKafkaAdminClient(**kafka_test_access(kafka_bootstrap).client_options())
    await admin.start()
    try:
        created = await create_topics(
            kafka_test_access(kafka_bootstrap),
            topics,
            min_insync_replicas=1,
            configs={"retention.ms": "-1"},
        )
        assert sorted(created) == sorted(topics)
        described = await admin.describe_topics(list(topics))
        assert {d["topic"]: len(d["partitions"]) for d in described} == topics
        [config] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, next(iter(topics)))]
        )
        entries = {entry[0]: entry[1] for entry in config.resources[0][4]}
        assert entries["min.insync.replicas"] == "1"
        assert entries["retention.ms"] == "-1"
        assert await create_topics(kafka_test_access(kafka_bootstrap), topics) == [], (
            "a second run changes nothing"
        )
        # A retention declared later is applied to the existing topic; its other configs stay.
        hours = {name: 3_600_000 for name in topics}
        assert (
            await create_topics(kafka_test_access(kafka_bootstrap), topics, retention_ms=hours)
            == []
        )

        async def configs() -> dict[str, str]:
            [config] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, next(iter(topics)))]
            )
            return {entry[0]: entry[1] for entry in config.resources[0][4]}

        # The controller applies a change and the broker learns it from the metadata log a
        # moment later: under load, a describe right after may still show the old value.
        async def retention_applied() -> dict[str, str] | None:
            entries = await configs()
            return entries if entries["retention.ms"] == "3600000" else None

        entries = await eventually(retention_applied, timeout=30, interval=0.5)
        assert entries["min.insync.replicas"] == "1"
        # A declaration that no longer matches an existing topic is reported, never applied:
        # adding partitions would move keys and break per-referral ordering.
        capsys.readouterr()
        grown = {name: 4 for name in topics}
        assert await create_topics(kafka_test_access(kafka_bootstrap), grown) == []
        assert "WARNING" in capsys.readouterr().out
        described = await admin.describe_topics(list(topics))
        assert {d["topic"]: len(d["partitions"]) for d in described} == topics
    finally:
        await admin.delete_topics(list(topics))
        await admin.close()
