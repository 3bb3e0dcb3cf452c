"""Kafka's principals and grants from deploy/kafka-access.toml (ADR 0010): the one code path the
local stack, compose and Kubernetes use.

    python -m cmhl_servicekit.kafka_access plan > deploy/k8s/base/topics/kafka-access.json
    python -m cmhl_servicekit.kafka_access apply --bootstrap HOST:PORT --passwords PATH
        [--plan kafka-access.json]

`plan` prints every principal and grant as JSON (the Kubernetes Job reads it from a ConfigMap,
since kustomize may not read files outside its folder; tests/deploy fails when they differ).
`apply` runs as the cluster's admin principal (CMHL_KAFKA_USERNAME / CMHL_KAFKA_PASSWORD, a
`super.users` entry of the brokers): it sets each principal's SCRAM-SHA-512 credential from
PATH (a JSON object principal -> password, or a folder with one file per principal: a mounted
Secret) and creates the grants. Both are idempotent: a credential is replaced by the one
in FILE, and a grant that exists already is left as it is. A principal missing from FILE is an
error, so a deployment never runs with a principal it forgot.

aiokafka's admin client has no call for either, so the two admin requests are built here from
its protocol types: CreateAcls (API key 30) and AlterUserScramCredentials (API key 51, KIP-554).
"""

import argparse
import asyncio
import hashlib
import json
import secrets
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeAlias

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from cmhl_contracts import AGENCY_EVENTS, AgencyReferralSubmittedV1
from cmhl_servicekit.kafka import KafkaAccess
from cmhl_servicekit.passwords import read_passwords
from cmhl_servicekit.topics import feedback_agencies

ADMIN = "admin"
# The SCRAM iteration count Kafka's own tools use by default (RFC 7677 asks for at least 4096).
SCRAM_ITERATIONS = 8192
SCRAM_SHA_512 = 2  # the mechanism's id in AlterUserScramCredentials

# Kafka's wire codes (org.apache.kafka.common.acl / resource).
RESOURCE = {"topic": 2, "group": 3}
PATTERN = {"literal": 3, "prefixed": 4}
OPERATION = {"read": 3, "write": 4, "describe": 8}
ALLOW = 3
ANY = 1  # a filter's "any" for resource type, pattern type, operation and permission


@dataclass(frozen=True, order=True)
class Grant:
    """One ACL: `principal` may `operation` the topic or group named (or any whose name starts
    with it, for a prefixed grant)."""

    principal: str
    operation: str
    resource: str
    name: str
    pattern: str = "literal"

    def binding(self) -> tuple[int, str, int, str, str, int, int]:
        """The ACL binding as CreateAcls and DeleteAcls take it: resource type, name, pattern
        type, principal, host, operation, permission."""
        return (
            RESOURCE[self.resource],
            self.name,
            PATTERN[self.pattern],
            f"User:{self.principal}",
            "*",
            OPERATION[self.operation],
            ALLOW,
        )


def service_principal(service: str) -> str:
    return service


def agency_principal(agency_id: str) -> str:
    return f"agency-{agency_id}"


def service_reads(declarations: Mapping[str, Any]) -> dict[str, list[str]]:
    return {s: sorted(t) for s, t in declarations["services"].items()}


def plan(
    access: Mapping[str, Any], topics: Mapping[str, Any], *, demo: bool = False
) -> list[Grant]:
    """Every grant, from the parsed kafka-access.toml and topics.toml; `demo` adds the local
    demo's sender, which a deployment never has."""
    grants: list[Grant] = []
    for service, reads in service_reads(access).items():
        who = service_principal(service)
        grants += [
            Grant(who, "write", "topic", f"cmhl.{service}.", "prefixed"),
            Grant(who, "read", "group", f"cmhl.{service}.", "prefixed"),
        ]
        for topic in reads:
            grants += [
                Grant(who, "read", "topic", topic),
                Grant(who, "write", "topic", f"{topic}.dlq"),
            ]
    intake = AgencyReferralSubmittedV1
    for agency in feedback_agencies(topics):
        who, own = agency_principal(agency), intake.agency_topic(agency)
        # It sends on its own topic only (which the referral service reads and checks against
        # the agency each submission names), and reads its own feedback.
        grants += [
            Grant(who, "write", "topic", own),
            Grant("referral", "read", "topic", own),
            Grant("referral", "write", "topic", f"{own}.dlq"),
            Grant(who, "read", "group", f"{who}.", "prefixed"),
        ]
        grants += [Grant(who, "read", "topic", e.agency_topic(agency)) for e in AGENCY_EVENTS]
    demo_senders: list[str] = access.get("demo", {}).get("senders", []) if demo else []
    grants += [Grant(sender, "write", "topic", intake.topic()) for sender in demo_senders]
    return sorted(set(grants))


def principals(grants: list[Grant]) -> list[str]:
    """Every principal that needs a credential: the admin and each one granted something."""
    return sorted({ADMIN} | {g.principal for g in grants})


# ---------------------------------------------------------------- the admin requests


class _ScramCredentialsResponseV0(Response):  # type: ignore[misc]  # untyped aiokafka
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _ScramCredentialsRequestV0(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _ScramCredentialsResponseV0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


_ScramStruct: TypeAlias = _ScramCredentialsRequestV0


class _AlterUserScramCredentials(Request[_ScramStruct]):  # type: ignore[misc]
    API_KEY = 51

    def __init__(self, upsertions: list[tuple[str, int, int, bytes, bytes, dict[int, bytes]]]):
        self._upsertions = upsertions

    def build(self, request_struct_class: type[_ScramStruct]) -> _ScramStruct:
        return request_struct_class([], self._upsertions, {})


def scram_upsertion(
    name: str, password: str, salt: bytes | None = None
) -> tuple[str, int, int, bytes, bytes, dict[int, bytes]]:
    """KIP-554: the client sends the salt and the salted password (PBKDF2-HMAC-SHA-512), never
    the password itself."""
    salt = salt or secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, SCRAM_ITERATIONS)
    return (name, SCRAM_SHA_512, SCRAM_ITERATIONS, salt, salted, {})


class AccessError(RuntimeError):
    """The broker refused a credential or a grant; the message names which and why."""


async def set_credentials(admin: AIOKafkaAdminClient, passwords: Mapping[str, str]) -> None:
    """Creates or replaces each principal's SCRAM-SHA-512 credential."""
    users = [scram_upsertion(name, password) for name, password in sorted(passwords.items())]
    response = await admin._send_request(_AlterUserScramCredentials(users))
    failed = [(user, code, message) for user, code, message, _ in response.results if code]
    if failed:
        raise AccessError(f"credentials refused: {failed}")


# KRaft commits a grant on the controller and answers; each broker's authorizer takes it up from
# the metadata log a moment later, and DescribeAcls is answered from that authorizer. How long
# create and revoke wait for every broker to show the change (a clean-clone CI once read a grant
# it had just created as missing).
GRANTS_VISIBLE_WITHIN_S = 15.0


async def create_grants(admin: AIOKafkaAdminClient, grants: list[Grant]) -> None:
    """Creates each grant, then waits until every broker's answer to DescribeAcls holds them."""
    for grant in grants:
        answer = await admin._send_request(CreateAclsRequest(*grant.binding()))
        refused = [(code, message) for code, message in answer.creation_responses if code]
        if refused:
            raise AccessError(f"grant {grant} refused: {refused}")
    await _until_visible(admin, present=set(grants), absent=set())


def _broker_ids(admin: AIOKafkaAdminClient) -> list[int]:
    return sorted(broker.nodeId for broker in admin._client.cluster.brokers())


async def _until_visible(
    admin: AIOKafkaAdminClient, *, present: set[Grant], absent: set[Grant]
) -> None:
    """Polls each broker until all of them hold `present` and none holds `absent`. A broker that
    does not answer (a rolling restart) counts as not there yet, until the deadline."""
    if not present and not absent:
        return
    within_s = GRANTS_VISIBLE_WITHIN_S
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        lagging: dict[int, str] = {}
        for broker in _broker_ids(admin):
            try:
                held = await current_grants(admin, broker)
            except (KafkaError, OSError, TimeoutError) as exc:
                lagging[broker] = f"did not answer ({type(exc).__name__})"
                continue
            missing, lingering = sorted(present - held), sorted(absent & held)
            if missing or lingering:
                lagging[broker] = (
                    f"{len(missing)} grant(s) missing {missing[:3]}, "
                    f"{len(lingering)} revoked grant(s) held {lingering[:3]}"
                )
        if not lagging:
            return
        if loop.time() >= deadline:
            shown = "; ".join(f"broker {b}: {why}" for b, why in lagging.items())
            raise AccessError(
                f"the controller accepted the change but after {within_s:.0f} s {shown}: check "
                "the brokers' metadata log (kafka-metadata-quorum.sh describe --status) and run "
                "apply again"
            )
        await asyncio.sleep(0.05)


def _named(codes: Mapping[str, int], code: int) -> str | None:
    return next((name for name, c in codes.items() if c == code), None)


async def current_grants(admin: AIOKafkaAdminClient, broker: int | None = None) -> set[Grant]:
    """The ALLOW bindings this tool can express, as one broker (any, by default) answers (any
    other binding, such as an operator's DENY, is neither read nor touched)."""
    request = DescribeAclsRequest(ANY, None, ANY, None, None, ANY, ANY)
    answer = await admin._send_request(request, broker)
    if answer.error_code:
        raise AccessError(f"grants could not be read: {answer.error_message}")
    found = set()
    for resource_code, name, pattern_code, acls in answer.resources:
        resource, pattern = _named(RESOURCE, resource_code), _named(PATTERN, pattern_code)
        for principal, host, operation_code, permission in acls:
            operation = _named(OPERATION, operation_code)
            if None in (resource, pattern, operation) or permission != ALLOW or host != "*":
                continue
            if principal.startswith("User:"):
                found.add(
                    Grant(
                        principal.removeprefix("User:"),
                        str(operation),
                        str(resource),
                        name,
                        str(pattern),
                    )
                )
    return found


async def revoke(admin: AIOKafkaAdminClient, grants: set[Grant]) -> None:
    """Deletes each grant, then waits until no broker's answer to DescribeAcls holds them."""
    for grant in sorted(grants):
        answer = await admin._send_request(DeleteAclsRequest(*grant.binding()))
        failed = [(code, message) for code, message, _ in answer.filter_responses if code]
        if failed:
            raise AccessError(f"grant {grant} could not be revoked: {failed}")
    await _until_visible(admin, present=set(), absent=set(grants))


async def apply(access: KafkaAccess, grants: list[Grant], passwords: Mapping[str, str]) -> None:
    """As the admin: every principal's credential from `passwords`, then every grant."""
    missing = [p for p in principals(grants) if p not in passwords]
    if missing:
        raise AccessError(f"no password for principals {missing}: add them to the passwords file")
    admin = AIOKafkaAdminClient(**access.client_options(), client_id="cmhl-kafka-access")
    await admin.start()
    try:
        # The admin's own credential is the one the brokers were set up with: left alone.
        await set_credentials(
            admin, {name: passwords[name] for name in principals(grants) if name != ADMIN}
        )
        # The declarations are the whole truth: what is missing is created, a grant taken out
        # of them is revoked, and what the brokers hold already is left alone.
        held = await current_grants(admin)
        await create_grants(admin, [g for g in grants if g not in held])
        await revoke(admin, held - set(grants))
    finally:
        await admin.close()


def load(declarations: Path, topics: Path, *, demo: bool = False) -> list[Grant]:
    return plan(
        tomllib.loads(declarations.read_text()), tomllib.loads(topics.read_text()), demo=demo
    )


def render_plan(grants: list[Grant]) -> str:
    body = {
        "generated_by": "python -m cmhl_servicekit.kafka_access plan",
        "principals": principals(grants),
        "grants": [asdict(g) for g in grants],
    }
    return json.dumps(body, indent=2) + "\n"


def read_plan(path: Path) -> list[Grant]:
    return [Grant(**g) for g in json.loads(path.read_text())["grants"]]


def main() -> None:
    deploy = Path(__file__).resolve().parents[4] / "deploy"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("plan", "apply"):
        command = commands.add_parser(name)
        command.add_argument("--declarations", type=Path, default=deploy / "kafka-access.toml")
        command.add_argument("--topics", type=Path, default=deploy / "topics.toml")
        command.add_argument("--with-demo", action="store_true", help="the demo's sender too")
        if name == "apply":
            command.add_argument("--bootstrap", required=True)
            command.add_argument("--passwords", type=Path, required=True)
            command.add_argument("--plan", type=Path, help="a plan from `plan` (default: TOML)")
    args = parser.parse_args()
    if args.command == "plan":
        sys.stdout.write(render_plan(load(args.declarations, args.topics, demo=args.with_demo)))
        return
    grants = (
        read_plan(args.plan)
        if args.plan
        else load(args.declarations, args.topics, demo=args.with_demo)
    )
    passwords = read_passwords(args.passwords)
    asyncio.run(apply(KafkaAccess.from_env(args.bootstrap), grants, passwords))
    sys.stdout.write(
        f"[kafka-access] {len(principals(grants))} principals, {len(grants)} grants applied\n"
    )


if __name__ == "__main__":
    main()
