"""Kafka topics from deploy/topics.toml: the one code path that compose and Kubernetes use.

    python -m cmhl_servicekit.topics plan [--declarations deploy/topics.toml]
    python -m cmhl_servicekit.topics create --bootstrap HOST:PORT --from FILE  (as the admin:
        CMHL_KAFKA_USERNAME, CMHL_KAFKA_PASSWORD, CMHL_KAFKA_SECURITY_PROTOCOL)
        [--replication-factor N] [--min-insync-replicas N] [--config KEY=VALUE ...] [--wait SECONDS]

`plan` prints every topic (each contract topic and its `.dlq`) with its partitions, and the
topics that keep their records only for a while (`retention_hours` in the declarations: the
intake topic, whose records name people) with their retention, as JSON; the
Kubernetes topics Job reads that plan from a ConfigMap (deploy/k8s/base/topics/topics.json),
because kustomize may not read files outside its folder. `create --from` takes either the TOML
declarations or such a plan. Creation is idempotent: existing topics are kept as they are, and a
partition count that differs from the declaration is reported, never changed, since adding
partitions moves keys to other partitions and breaks per-referral ordering. Compose and the Job
pass `--config retention.ms=-1`: the reporting rebuild replays every topic from its beginning;
a declared retention overrides it for its topic and `.dlq`, and is applied to an existing topic
too (a retention can change safely; partitions cannot).
"""

import argparse
import asyncio
import json
import re
import sys
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError

from cmhl_contracts import AGENCY_EVENTS, ALL_EVENTS, AgencyReferralSubmittedV1
from cmhl_servicekit.kafka import KafkaAccess

TOPIC_ALREADY_EXISTS = 36


def say(message: str) -> None:
    sys.stdout.write(f"[topics] {message}\n")
    sys.stdout.flush()


def declared_topics(declarations: Mapping[str, Any]) -> dict[str, int]:
    """Topic -> partitions for every contract topic and its dead letters, from the parsed TOML.
    A contract topic missing from the declarations is an error: topics are never auto-created."""
    default = int(declarations["defaults"]["partitions"])
    declared: Mapping[str, Mapping[str, Any]] = declarations.get("topics", {})
    missing = sorted(e.topic() for e in ALL_EVENTS if e.topic() not in declared)
    if missing:
        raise ValueError(f"contract topics not declared in deploy/topics.toml: {missing}")
    topics: dict[str, int] = {}
    for event in ALL_EVENTS:
        partitions = int(declared[event.topic()].get("partitions", default))
        topics[event.topic()] = partitions
        # A dead-letter topic mirrors its topic's partitions so a re-drive keeps key placement.
        topics[event.dlq_topic()] = partitions
    topics |= agency_topics(declarations)
    return dict(sorted(topics.items()))


def agency_topics(declarations: Mapping[str, Any]) -> dict[str, int]:
    """The topics of each agency on Kafka (`[agency_topics] agencies`). Kafka grants per topic,
    so an agency's own topics are what let it read its own feedback and nobody else's (ADR 0008;
    consumed by the agency's system, so no dead-letter topic) and send submissions that no
    other agency can send in its name (ADR 0010; consumed by the referral service, so with the
    intake's dead-letter topic and partitions)."""
    section: Mapping[str, Any] = declarations.get("agency_topics", {})
    partitions = int(section.get("partitions", 1))
    agencies = feedback_agencies(declarations)
    if unfit := [a for a in agencies if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", a)]:
        raise ValueError(f"agency ids that cannot name a topic (letters, digits, . _ -): {unfit}")
    intake = AgencyReferralSubmittedV1
    intake_partitions = int(declarations["topics"][intake.topic()].get("partitions", partitions))
    topics = {
        event.agency_topic(agency): partitions for event in AGENCY_EVENTS for agency in agencies
    }
    for agency in agencies:
        topics[intake.agency_topic(agency)] = intake_partitions
        topics[f"{intake.agency_topic(agency)}.dlq"] = intake_partitions
    return topics


def feedback_agencies(declarations: Mapping[str, Any]) -> list[str]:
    """The agencies that read their feedback on Kafka."""
    return sorted(declarations.get("agency_topics", {}).get("agencies", []))


def declared_retention(declarations: Mapping[str, Any]) -> dict[str, int]:
    """Topic -> retention in milliseconds, for the topics declared with `retention_hours` and
    their dead letters."""
    retention: dict[str, int] = {}
    for topic, declared in declarations.get("topics", {}).items():
        if "retention_hours" in declared:
            hours = float(declared["retention_hours"])
            if hours <= 0:
                raise ValueError(f"{topic}: retention_hours must be positive")
            retention[topic] = retention[f"{topic}.dlq"] = int(hours * 3_600_000)
    # Each agency's own intake topic keeps what the shared one keeps.
    shared = AgencyReferralSubmittedV1.topic()
    if shared in retention:
        for agency in feedback_agencies(declarations):
            own = AgencyReferralSubmittedV1.agency_topic(agency)
            retention[own] = retention[f"{own}.dlq"] = retention[shared]
    return dict(sorted(retention.items()))


def load_topics(path: Path) -> dict[str, int]:
    """Topics from TOML declarations, or from a JSON plan that `plan` printed."""
    if path.suffix == ".json":
        plan: dict[str, Any] = json.loads(path.read_text())
        return {str(name): int(partitions) for name, partitions in plan["topics"].items()}
    return declared_topics(tomllib.loads(path.read_text()))


def load_retention(path: Path) -> dict[str, int]:
    """Declared retentions, from TOML declarations or a JSON plan."""
    if path.suffix == ".json":
        plan: dict[str, Any] = json.loads(path.read_text())
        return {str(name): int(ms) for name, ms in plan.get("retention_ms", {}).items()}
    return declared_retention(tomllib.loads(path.read_text()))


def render_plan(topics: Mapping[str, int], retention: Mapping[str, int] | None = None) -> str:
    plan = {
        "generated_by": "python -m cmhl_servicekit.topics plan (from deploy/topics.toml)",
        "topics": dict(topics),
        "retention_ms": dict(retention or {}),
    }
    return json.dumps(plan, indent=2) + "\n"


async def create_topics(
    access: KafkaAccess,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    min_insync_replicas: int | None = None,
    configs: Mapping[str, str] | None = None,
    retention_ms: Mapping[str, int] | None = None,
) -> list[str]:
    """Create the missing topics and return their names; existing ones keep their partitions.
    A declared retention is set on its topic, created or existing."""
    retention = dict(retention_ms or {})
    topic_configs = dict(configs or {})
    if min_insync_replicas is not None:
        topic_configs["min.insync.replicas"] = str(min_insync_replicas)
    admin = AIOKafkaAdminClient(**access.client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        for described in await admin.describe_topics(sorted(existing & set(topics))):
            name, found = described["topic"], len(described["partitions"])
            if found != topics[name]:
                say(f"WARNING {name}: {found} partitions, declared {topics[name]}")
        kept = [name for name in sorted(existing & set(retention))]
        if kept:
            # Only retention.ms is named: other configs of the topic are left as they are.
            await admin.alter_configs(
                [
                    ConfigResource(
                        ConfigResourceType.TOPIC, name, {"retention.ms": str(retention[name])}
                    )
                    for name in kept
                ]
            )
        missing = [
            NewTopic(
                name,
                partitions,
                replication_factor,
                topic_configs=topic_configs
                | ({"retention.ms": str(retention[name])} if name in retention else {}),
            )
            for name, partitions in topics.items()
            if name not in existing
        ]
        if not missing:
            return []
        response = await admin.create_topics(missing)
        failed = [
            f"{error[0]}: error {error[1]} {error[2] if len(error) > 2 else ''}".strip()
            for error in response.topic_errors
            # Another creator (a second Job run, the local stack) may have won the race: fine.
            if error[1] not in (0, TOPIC_ALREADY_EXISTS)
        ]
        if failed:
            raise RuntimeError("topic creation failed: " + "; ".join(failed))
        return [topic.name for topic in missing]
    finally:
        await admin.close()


async def create_when_reachable(
    access: KafkaAccess, topics: Mapping[str, int], wait_seconds: float, **options: Any
) -> list[str]:
    """A Job or a compose service may start before the brokers answer: retry until the deadline."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return await create_topics(access, topics, **options)
        except KafkaConnectionError:
            if time.monotonic() > deadline:
                raise
            say(f"waiting for Kafka at {access.bootstrap}")
            await asyncio.sleep(3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m cmhl_servicekit.topics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="print every topic and its partitions as JSON")
    plan.add_argument("--declarations", type=Path, default=Path("deploy/topics.toml"))
    create = commands.add_parser("create", help="create the missing topics")
    create.add_argument("--bootstrap", required=True)
    create.add_argument("--from", dest="source", type=Path, required=True)
    create.add_argument("--replication-factor", type=int, default=1)
    create.add_argument("--min-insync-replicas", type=int, default=None)
    create.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a topic config for new topics, e.g. retention.ms=-1 (repeatable)",
    )
    create.add_argument("--wait", type=float, default=120.0, help="seconds to wait for Kafka")
    args = parser.parse_args(argv)
    if args.command == "plan":
        declarations = tomllib.loads(args.declarations.read_text())
        sys.stdout.write(
            render_plan(declared_topics(declarations), declared_retention(declarations))
        )
        return
    topics = load_topics(args.source)
    created = asyncio.run(
        create_when_reachable(
            KafkaAccess.from_env(args.bootstrap),
            topics,
            args.wait,
            replication_factor=args.replication_factor,
            min_insync_replicas=args.min_insync_replicas,
            configs=dict(item.split("=", 1) for item in args.config),
            retention_ms=load_retention(args.source),
        )
    )
    say(f"{len(created)} created, all {len(topics)} declared topics present")


if __name__ == "__main__":
    main()
