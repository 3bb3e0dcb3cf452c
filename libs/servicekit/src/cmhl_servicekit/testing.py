"""Pytest plugin: finds the real Kafka broker and MongoDB-wire database for integration tests.

Order: environment variables pointing at running servers (what `make test` and `.ci/run` set);
else testcontainers when a Docker engine answers; else a failure under CI (a skipped integration
test there is a failing test) or a skip locally, saying how to start the stack."""

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_servicekit.auth import Role
from cmhl_servicekit.kafka import KafkaAccess
from cmhl_servicekit.oidc import SignIn

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from playwright.async_api import Browser

KAFKA_ENV = "CMHL_TEST_KAFKA_BOOTSTRAP"
MONGO_ENV = "CMHL_TEST_MONGO_URI"
SMTP_ENV = "CMHL_TEST_SMTP"
HOW_TO_START = (
    "Start the local stack with `make test` (it sets {var}), or run "
    "`uv run python deploy/local/stack.py up --free-ports --state-dir /tmp/cmhl-test` and export "
    "the variables in its test.env."
)


def _missing(what: str, var: str) -> None:
    message = f"{what} is not available: {var} is not set and no Docker engine answers. "
    message += HOW_TO_START.format(var=var)
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _docker_available() -> bool:
    # Without an engine's socket, the Docker client fails inside its constructor and leaves its
    # socket to the garbage collector, which pytest then reports as an unraisable warning in
    # whichever test is running: so it is asked only when there is an engine to ask.
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        with contextlib.closing(docker.from_env()) as client:
            client.ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    # No container fallback: Kafka refuses anonymous clients (ADR 0010), and the stack's broker
    # is the one with the principals and grants (deploy/local/stack.py up).
    if bootstrap := os.environ.get(KAFKA_ENV):
        yield bootstrap
        return
    _missing("Kafka", KAFKA_ENV)


def kafka_test_access(bootstrap: str) -> KafkaAccess:
    """How tests sign in to Kafka: as the stack's admin principal (test.env), so a test may
    read and write any topic and consumer group, as a test of the whole system must."""
    return KafkaAccess(
        bootstrap,
        os.environ.get("CMHL_TEST_KAFKA_USERNAME", ""),
        os.environ.get("CMHL_TEST_KAFKA_PASSWORD", ""),
        os.environ.get("CMHL_TEST_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),  # type: ignore[arg-type]
    )


def kafka_principal_access(bootstrap: str, principal: str) -> KafkaAccess:
    """A named principal of the stack (a service, an agency), with its own password."""
    stored = json.loads(Path(os.environ["CMHL_TEST_KAFKA_PRINCIPALS"]).read_text())
    return kafka_test_access(bootstrap).as_user(principal, stored["kafka_principals"][principal])


def stack_admin(state_dir: Path) -> KafkaAccess:
    """The admin principal of a stack that deploy/local/stack.py started in `state_dir` (a
    test's own stack, which has its own passwords)."""
    stack = json.loads((state_dir / "stack.json").read_text())
    creds = json.loads((state_dir / "credentials.json").read_text())
    return KafkaAccess(
        f"127.0.0.1:{stack['kafka_port']}",
        "admin",
        creds["keys"]["kafka_admin_password"],
        "SASL_PLAINTEXT",
    )


def stack_mongo_uri(state_dir: Path) -> str:
    """The database administrator's URI of a stack that deploy/local/stack.py started in
    `state_dir` (ADR 0011: FerretDB takes SASL PLAIN; the administrator is PostgreSQL's superuser
    role, which may read and write every service's database, as a test of the whole system must)."""
    stack = json.loads((state_dir / "stack.json").read_text())
    creds = json.loads((state_dir / "credentials.json").read_text())
    password = creds["keys"]["database_password"]
    return f"mongodb://ferretdb:{password}@127.0.0.1:{stack['mongo_port']}/?authMechanism=PLAIN"


def database_user_uri(user: str, password: str | None = None) -> str:
    """The test database's URI (CMHL_TEST_MONGO_URI) signed in as one of the services' database
    users (ADR 0011), with its own password from the stack's credentials (test.env names the
    file) unless `password` is given; with `user` "" the URI signs in as no one."""
    admin = urllib.parse.urlsplit(os.environ[MONGO_ENV])
    host = admin.netloc.rpartition("@")[2]
    if user:
        if password is None:
            stored = json.loads(Path(os.environ["CMHL_TEST_DATABASE_USERS"]).read_text())
            password = stored["database_users"][user]
        host = f"{urllib.parse.quote(user)}:{urllib.parse.quote(password, safe='')}@{host}"
        return urllib.parse.urlunsplit(admin._replace(netloc=host))
    # No one: without the sign-in options too, which a driver refuses without a user.
    kept = [
        (key, value)
        for key, value in urllib.parse.parse_qsl(admin.query)
        if key not in ("authMechanism", "authSource")
    ]
    return urllib.parse.urlunsplit(admin._replace(netloc=host, query=urllib.parse.urlencode(kept)))


@contextlib.contextmanager
def signed_in_to(state_dir: Path) -> Iterator[KafkaAccess]:
    """While a test uses a stack of its own, its Kafka clients (probes, the apps it builds with
    infra_settings) sign in with that stack's admin credential, not the shared stack's."""
    admin = stack_admin(state_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CMHL_TEST_KAFKA_USERNAME", admin.username)
        patch.setenv("CMHL_TEST_KAFKA_PASSWORD", admin.password)
        patch.setenv("CMHL_TEST_KAFKA_SECURITY_PROTOCOL", admin.security_protocol)
        patch.setenv("CMHL_TEST_KAFKA_PRINCIPALS", str(state_dir / "credentials.json"))
        patch.setenv("CMHL_TEST_DATABASE_USERS", str(state_dir / "credentials.json"))
        yield admin


@pytest.fixture
def spans() -> Iterator["InMemorySpanExporter"]:
    """Traces on for one test, every finished span kept in memory (tracing.py); off after."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from cmhl_servicekit import tracing

    exporter = InMemorySpanExporter()
    tracing.install(tracing.tracer_provider("test", exporter, batch=False))
    try:
        yield exporter
    finally:
        tracing.uninstall()


@pytest.fixture(scope="session")
def kafka_access(kafka_bootstrap: str) -> KafkaAccess:
    return kafka_test_access(kafka_bootstrap)


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    if uri := os.environ.get(MONGO_ENV):
        yield uri
        return
    if _docker_available():
        from testcontainers.community.mongodb import MongoDbContainer

        with MongoDbContainer() as container:
            yield container.get_connection_url()
        return
    _missing("MongoDB", MONGO_ENV)


@dataclass(frozen=True)
class MailSink:
    """The local stack's SMTP sink (deploy/local/mailsink.py): where to send, where mail lands."""

    host: str
    port: int
    folder: Path

    def messages_to(self, address: str) -> list["EmailMessage"]:
        """The mails kept for this address, oldest first."""
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            message = BytesParser(policy=email_policy.default).parsebytes(path.read_bytes())
            if address in str(message.get("To", "")):
                found.append(message)
        return found


@pytest.fixture(scope="session")
def mail_sink() -> MailSink:
    where, folder = os.environ.get(SMTP_ENV), os.environ.get("CMHL_TEST_MAIL_DIR")
    if not where or not folder:
        message = f"The SMTP sink is not available: {SMTP_ENV} is not set. "
        message += HOW_TO_START.format(var=SMTP_ENV)
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    host, port = where.rsplit(":", 1)
    return MailSink(host, int(port), Path(folder))


@pytest.fixture
async def mongo_db(mongo_uri: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """A fresh database per test, on a client bound to this test's event loop."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        with contextlib.suppress(Exception):
            await client.drop_database(name)
        await client.close()


TEST_AUDIT_DATABASE = f"test_audit_{uuid.uuid4().hex[:12]}"
READ_COMMANDS = ("find", "aggregate", "count")


class ReadRecorder(monitoring.CommandListener):
    """Keeps every read command a client sends, so a test can explain the very queries a
    repository makes instead of a copy of them."""

    def __init__(self) -> None:
        self.reads: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in READ_COMMANDS:
            command = {
                k: v
                for k, v in event.command.items()
                if k not in {"lsid", "$db", "$clusterTime", "$readPreference"}
            }
            self.reads.append(command)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def recorded_db(
    mongo_uri: str,
) -> AsyncIterator[tuple[AsyncDatabase[dict[str, Any]], ReadRecorder]]:
    """A fresh database whose client records every read it sends."""
    recorder = ReadRecorder()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_uri, tz_aware=True, event_listeners=[recorder]
    )
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name], recorder
    finally:
        with contextlib.suppress(Exception):
            await client.drop_database(name)
        await client.close()


def _plan_nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _plan_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _plan_nodes(value)


async def scans_in_plan(db: AsyncDatabase[dict[str, Any]], command: dict[str, Any]) -> list[str]:
    """What in the database's plan for `command` reads a whole collection: PostgreSQL's
    sequential scans under FerretDB, COLLSCAN stages on MongoDB. Empty when indexes serve it."""
    explained = await db.command("explain", command)
    nodes = list(_plan_nodes(explained.get("queryPlanner", {})))
    if "ferretdbVersion" in explained.get("serverInfo", {}):
        scans = [
            f"Seq Scan on {n.get('Relation Name')}"
            for n in nodes
            if n.get("Node Type") == "Seq Scan"
        ]
        if not any("Index Name" in n for n in nodes) and not scans:
            scans.append(f"no plan from the database: {explained.get('queryPlanner')}")
        return scans
    return [f"COLLSCAN of {command}" for n in nodes if n.get("stage") == "COLLSCAN"]


# How long a plan that scans is asked again (see assert_reads_use_indexes).
STATISTICS_WAIT = 20.0


async def assert_reads_use_indexes(
    db: AsyncDatabase[dict[str, Any]], reads: list[dict[str, Any]]
) -> None:
    """Every recorded read is served by an index; the message names each one that is not.

    PostgreSQL (under FerretDB) plans by the statistics its autovacuum gathers a second or two
    after a bulk load; until then a range looks unselective. So a plan that scans is asked
    again for up to `STATISTICS_WAIT` seconds before it counts as a failure."""
    assert reads, "no read was recorded"
    deadline = asyncio.get_running_loop().time() + STATISTICS_WAIT
    pending = list(reads)
    while True:
        failures = {}
        for command in pending:
            if scans := await scans_in_plan(db, command):
                failures[json.dumps(command, default=str)] = (command, scans)
        if not failures or asyncio.get_running_loop().time() > deadline:
            break
        pending = [command for command, _ in failures.values()]
        await asyncio.sleep(1)
    report = {text: scans for text, (_, scans) in failures.items()}
    assert not failures, f"reads that scan: {json.dumps(report, indent=1)}"
    recorded = len(reads)
    try:
        arrays = [
            f"{collection}.{field}"
            # A copy: the look-ups below go through the recording client too, and are not kept.
            for collection, selector in map(read_selector, reads[:recorded])
            for field in sorted(filtered_fields(selector))
            if await db[collection].find_one({field: {"$type": "array"}}, {"_id": 1}) is not None
        ]
    finally:
        del reads[recorded:]
    # FerretDB on PostgreSQL indexes an array field as one value, and its prefilter for an
    # equality or range on such a field keeps every row holding an array: a plan that names the
    # index still reads the whole collection. So every field a read filters on holds scalars.
    assert not arrays, f"reads that filter on a field holding arrays: {sorted(set(arrays))}"


def read_selector(command: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The collection a recorded read names, and its selector (an aggregation's first `$match`)."""
    if "aggregate" in command:
        first = (command.get("pipeline") or [{}])[0]
        return command["aggregate"], first.get("$match", {})
    if "count" in command:
        return command["count"], command.get("query") or {}
    return command["find"], command.get("filter") or {}


def filtered_fields(selector: dict[str, Any]) -> set[str]:
    """The fields a query selector compares, through `$and`, `$or` and `$nor`."""
    fields: set[str] = set()
    for key, value in selector.items():
        if key in ("$and", "$or", "$nor"):
            for part in value:
                fields |= filtered_fields(part)
        elif not key.startswith("$"):
            fields.add(key)
    return fields


class KafkaProbe:
    """Publishes raw records and collects what appears on topics, for black-box assertions."""

    def __init__(self, bootstrap: str, access: KafkaAccess | None = None) -> None:
        self.bootstrap = bootstrap
        self.access = access or kafka_test_access(bootstrap)
        self._producer = AIOKafkaProducer(
            **self.access.client_options(), acks="all", enable_idempotence=True
        )

    async def start(self) -> None:
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()  # a refused start leaves no connection to the GC
            raise

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        await self._producer.send_and_wait(topic, value, key=key, headers=headers)

    async def collect(
        self,
        topics: list[str],
        match: Callable[["ConsumerRecord[bytes, bytes]"], bool],
        *,
        expect: int,
        timeout: float = 30.0,
        settle: float = 0.0,
        distinct: Callable[["ConsumerRecord[bytes, bytes]"], Hashable] | None = None,
    ) -> list["ConsumerRecord[bytes, bytes]"]:
        """Reads the topics from the beginning until `expect` matching records arrived (then
        keeps reading `settle` seconds more, to catch unwanted extras) or the timeout passed.
        With `distinct`, records are counted by that key: repeats of one event count once."""
        consumer = AIOKafkaConsumer(
            *topics,
            **self.access.client_options(),
            group_id=f"test-probe-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: list[ConsumerRecord[bytes, bytes]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        settle_until: float | None = None
        try:
            while loop.time() < deadline:
                arrived = len({distinct(r) for r in found}) if distinct else len(found)
                if arrived >= expect and settle_until is None:
                    settle_until = loop.time() + settle
                if settle_until is not None and loop.time() >= settle_until:
                    break
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    found.extend(r for r in records if match(r))
        finally:
            await consumer.stop()
        return found


@pytest.fixture
async def kafka_probe(kafka_bootstrap: str) -> AsyncIterator[KafkaProbe]:
    probe = KafkaProbe(kafka_bootstrap)
    await probe.start()
    try:
        yield probe
    finally:
        await probe.stop()


async def eventually(
    check: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.2
) -> Any:
    """Polls an async check until it returns a truthy value; fails with the last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


OIDC_ENV = "CMHL_TEST_OIDC_ISSUER"
# The password of the users tests create in the provider's realm: new for every test run.
TEST_USER_PASSWORD = secrets.token_urlsafe(18)


def infra_settings(kafka_bootstrap: str, mongo_uri: str) -> dict[str, Any]:
    """Settings every service needs in a test: the real servers and a fresh database."""
    access = kafka_test_access(kafka_bootstrap)
    return {
        "kafka_bootstrap": kafka_bootstrap,
        "kafka_username": access.username,
        "kafka_password": access.password,
        "kafka_security_protocol": access.security_protocol,
        "mongo_uri": mongo_uri,
        "mongo_database": f"test_{uuid.uuid4().hex[:12]}",
        # One per test run, shared by the services a test starts, as in a deployment.
        "audit_database": TEST_AUDIT_DATABASE,
        "http_port": 1,
        "auth_issuer": identity_provider().issuer,
        # Tests sign in with the stack's password-grant client, as the local services do.
        "auth_refused_clients": [],
        # Own consumer groups: a test reads the topics from the start, undisturbed by others.
        "consumer_group_prefix": f"test-{uuid.uuid4().hex[:12]}",
    }


class TestIdentityProvider:
    """The stack's real OpenID Connect provider (Keycloak), as tests use it: a user per
    (subject, roles, CMHC) a test names, created through the admin API on first use, signed in
    with the password grant; an agency's or facility's client, created likewise, signed in with
    client credentials. Tokens are fetched when a request is sent and renewed before they expire."""

    __test__ = False  # a helper, not a test class, wherever a test module imports it

    def __init__(self, issuer: str, client_id: str, admin: str, admin_password: str) -> None:
        self.issuer = issuer.rstrip("/")
        self.base, _, self.realm = self.issuer.rpartition("/realms/")
        self.client_id = client_id
        self._admin = SignIn(f"{self.base}/realms/master", "admin-cli", admin, admin_password)
        self._sign_ins: dict[Hashable, SignIn] = {}
        self._http = httpx.Client(timeout=60)

    def close(self) -> None:
        self._http.close()

    def forget(self, key: Hashable) -> None:
        """Drops a cached sign-in whose credentials a test changed in the provider."""
        self._sign_ins.pop(key, None)

    def admin_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._http.request(
            method,
            f"{self.base}/admin/realms/{self.realm}{path}",
            headers=self._admin.headers(self._http),
            **kwargs,
        )

    def person(self, subject: str, roles: tuple[Role, ...], cmhc_id: str | None) -> SignIn:
        key = ("person", subject, roles, cmhc_id)
        if key not in self._sign_ins:
            suffix = hashlib.sha256(repr(key).encode()).hexdigest()[:8]
            username = f"test-{subject.lower()}-{suffix}"
            attributes = {"staff_id": [subject], **({"cmhc": [cmhc_id]} if cmhc_id else {})}
            created = self.admin_api(
                "POST",
                "/users",
                json={"username": username, "enabled": True, "attributes": attributes},
            )
            if created.status_code not in (201, 409):  # 409: an earlier test run made it
                raise AssertionError(f"cannot create a test user: {created.text}")
            user_id = self.admin_api(
                "GET", "/users", params={"exact": "true", "username": username}
            ).json()[0]["id"]
            # Like the demo users: exempt from the second factor the realm sets up for every
            # new user (the mfa_exempt role below, and no pending TOTP set-up).
            self.admin_api(
                "PUT", f"/users/{user_id}", json={"requiredActions": []}
            ).raise_for_status()
            self.admin_api(
                "PUT",
                f"/users/{user_id}/reset-password",
                json={"type": "password", "value": TEST_USER_PASSWORD, "temporary": False},
            ).raise_for_status()
            grant = [
                self.admin_api("GET", f"/roles/{name}").json()
                for name in [*(str(r) for r in roles), "mfa_exempt"]
            ]
            self.admin_api("POST", f"/users/{user_id}/role-mappings/realm", json=grant)
            self._sign_ins[key] = SignIn(self.issuer, self.client_id, username, TEST_USER_PASSWORD)
        return self._sign_ins[key]

    def machine(self, kind: str, bound_to: str) -> SignIn:
        """The client of one agency (kind "agency") or facility ("facility")."""
        key = ("machine", kind, bound_to)
        if key not in self._sign_ins:
            client_id = f"test-{kind}-{bound_to}"
            secret = hashlib.sha256(f"{client_id}-{uuid.uuid4()}".encode()).hexdigest()
            representation = {
                "clientId": client_id,
                "publicClient": False,
                "secret": secret,
                "serviceAccountsEnabled": True,
                "standardFlowEnabled": False,
                "directAccessGrantsEnabled": False,
                "defaultClientScopes": ["cmhl-api"],
                "protocolMappers": [
                    {
                        "name": kind,
                        "protocol": "openid-connect",
                        "protocolMapper": "oidc-hardcoded-claim-mapper",
                        "config": {
                            "claim.name": kind,
                            "claim.value": bound_to,
                            "jsonType.label": "String",
                            "access.token.claim": "true",
                        },
                    }
                ],
            }
            found = self.admin_api("GET", "/clients", params={"clientId": client_id}).json()
            if found:
                self.admin_api("PUT", f"/clients/{found[0]['id']}", json=representation)
            else:
                self.admin_api("POST", "/clients", json=representation).raise_for_status()
            self._sign_ins[key] = SignIn(self.issuer, client_id, client_secret=secret)
        return self._sign_ins[key]


_provider: TestIdentityProvider | None = None


def identity_provider() -> TestIdentityProvider:
    global _provider
    if _provider is None:
        issuer = os.environ.get(OIDC_ENV)
        if not issuer:
            _missing("The OpenID Connect provider", OIDC_ENV)
        _provider = TestIdentityProvider(
            str(issuer),
            os.environ.get("CMHL_TEST_OIDC_CLIENT", "cmhl-test"),
            os.environ.get("CMHL_TEST_OIDC_ADMIN", "admin"),
            os.environ.get("CMHL_TEST_OIDC_ADMIN_PASSWORD", ""),
        )
    return _provider


class BearerHeaders(Mapping[str, str]):
    """An Authorization header whose token is fetched when a request reads it, so a module-level
    `LIAISON = bearer(...)` always sends a fresh token from the real provider."""

    def __init__(self, sign_in: Callable[[], SignIn]) -> None:
        self._sign_in = sign_in

    def __getitem__(self, name: str) -> str:
        if name != "Authorization":
            raise KeyError(name)
        return f"Bearer {self._sign_in().token()}"

    def __iter__(self) -> Iterator[str]:
        return iter(["Authorization"])

    def __len__(self) -> int:
        return 1

    def __or__(self, other: Mapping[str, str]) -> dict[str, str]:
        return dict(self) | dict(other)


def bearer(subject: str, *roles: Role, cmhc_id: str | None = None) -> BearerHeaders:
    """A person's token: `subject` is their staff id (a liaison's id)."""
    return BearerHeaders(lambda: identity_provider().person(subject, roles, cmhc_id))


def agency_bearer(agency_id: str) -> BearerHeaders:
    """A token of the agency's records-system client (client credentials)."""
    return BearerHeaders(lambda: identity_provider().machine("agency", agency_id))


def facility_bearer(facility_id: str) -> BearerHeaders:
    """A token of the facility's client (client credentials)."""
    return BearerHeaders(lambda: identity_provider().machine("facility", facility_id))


async def skip_history(app: FastAPI) -> None:
    """Positions the app's (fresh) consumer groups at the end of their topics, so a test's app
    reads only what is sent from now on, not every earlier test's events."""
    broker = app.state.runtime.broker
    access = kafka_test_access(",".join(broker._connection_kwargs["bootstrap_servers"]))
    for subscriber in broker.subscribers:
        await start_at_end(access, subscriber.group_id, subscriber.topic_names_for_subscribe)


async def start_at_end(access: KafkaAccess, group_id: str, topics: list[str]) -> None:
    """Commits a (fresh) consumer group's offsets at the end of its topics."""
    admin = AIOKafkaAdminClient(**access.client_options())
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], p["partition"])
        for topic in described
        for p in topic["partitions"]
    ]
    consumer = AIOKafkaConsumer(
        **access.client_options(), group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(dict(await consumer.end_offsets(partitions)))
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def running_app(app: FastAPI, *, from_now: bool = False) -> AsyncIterator[httpx.AsyncClient]:
    """Runs the app's lifespan (broker, database, background loops) and a client in one loop.

    `from_now`: consume only events sent after this call (see `skip_history`)."""
    if from_now:
        await skip_history(app)
    async with (
        # Shutdown lets a consumer finish its batch: a test app reading every topic from the
        # start of a long test run may be mid-way through a large one (reporting's catch-up
        # claims unique people for five period kinds per referral).
        LifespanManager(app, startup_timeout=60, shutdown_timeout=180),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        await _joined(app)
        yield client


async def _joined(app: FastAPI, timeout: float = 60.0) -> None:
    """Waits until every consumer of the app has its partitions: a test that sends and stops
    at once would otherwise stop a consumer in the middle of joining its group."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for subscriber in app.state.runtime.broker.subscribers:
        while not subscriber.consumer or not subscriber.consumer.assignment():
            if loop.time() > deadline:
                raise AssertionError(f"{subscriber.group_id} got no partitions in {timeout}s")
            await asyncio.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceProcess:
    """A service run as its own process (`python -m <module>`), for tests that kill it.

    Settings become the environment the service reads (`<prefix><NAME>`), so the process is
    configured exactly as in production; its output goes to a log file the test can show."""

    def __init__(self, module: str, env_prefix: str, settings: dict[str, Any], log: Path) -> None:
        self._module = module
        self._env = os.environ | {
            f"{env_prefix}{name.upper()}": value if isinstance(value, str) else json.dumps(value)
            for name, value in settings.items()
        }
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as out:
            self._process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", self._module], env=self._env, stdout=out, stderr=out
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as in a crash or an OOM kill."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
        self._process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def service_processes(
    module: str, env_prefix: str, settings: dict[str, Any], log_dir: Path, count: int = 1
) -> Iterator[list[ServiceProcess]]:
    """`count` replicas of a service sharing the same settings (database, consumer groups),
    each on its own HTTP port; all are killed when the block ends, whatever happens."""
    replicas = [
        ServiceProcess(
            module, env_prefix, settings | {"http_port": free_port()}, log_dir / f"{module}-{n}.log"
        )
        for n in range(count)
    ]
    try:
        for replica in replicas:
            replica.start()
        yield replicas
    finally:
        for replica in replicas:
            replica.kill()


# Under CI, an integration or e2e test that skipped is a failure: the infrastructure is missing.
_skipped_integration: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and any(marker in report.keywords for marker in ("integration", "e2e")):
        _skipped_integration.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _provider is not None:
        _provider.close()
    if os.environ.get("CI") and _skipped_integration:
        print(f"\nCI: {len(_skipped_integration)} integration/e2e tests were skipped:")  # noqa: T201
        for nodeid in _skipped_integration:
            print(f"  {nodeid}")  # noqa: T201
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@contextlib.asynccontextmanager
async def headless_chromium() -> AsyncIterator["Browser"]:
    """Debian's Chromium driven by Playwright (Playwright's own browser download is not used),
    without the background connections a closed network refuses."""
    from playwright.async_api import async_playwright  # a test-only dependency

    executable = os.environ.get("CMHL_CHROMIUM") or shutil.which("chromium")
    if not executable:
        pytest.fail(
            "chromium is missing: `python deploy/local/stack.py install --for-tests` installs it"
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            yield browser
        finally:
            await browser.close()
