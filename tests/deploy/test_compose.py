"""deploy/compose.yaml, checked without a Docker engine: compose-go (the library Docker Compose is
built on) validates it against the Compose Specification's JSON schema and resolves the model;
these tests then check the rules the system relies on."""

import json
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cmhl_servicekit.database_access import load as load_database_users
from cmhl_servicekit.settings import HttpSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KAFKA_POM = REPO / "deploy" / "local" / "kafka" / "pom.xml"
REALM_FILE = REPO / "deploy" / "local" / "keycloak" / "cmhl-realm.json"
Check = Callable[[str, Path], subprocess.CompletedProcess[str]]


def test_the_validator_rejects_what_the_specification_does_not_allow(
    run_check: Check, tmp_path: Path
) -> None:
    # Without this, a validator that accepted anything would make every other test pass.
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        "services:\n  web:\n    image: nginx\n    helthcheck: {test: [CMD, 'true']}\n"
    )
    result = run_check("compose", broken)
    assert result.returncode != 0
    assert "helthcheck" in result.stderr
    dangling = tmp_path / "dangling.yaml"
    dangling.write_text("services:\n  web:\n    image: nginx\n    depends_on: [db]\n")
    assert run_check("compose", dangling).returncode != 0


def test_every_service_runs_from_the_one_dockerfile(
    compose_model: dict[str, Any], service: str, port_of: Callable[[str], int]
) -> None:
    spec = compose_model["services"][service]
    assert spec["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert spec["build"]["args"] == {"SERVICE": service}
    assert spec["build"]["target"] == "service"
    [port] = spec["ports"]
    assert port["target"] == port_of(service)
    assert port["host_ip"] == "127.0.0.1", "published on the loopback only"


def test_services_start_after_what_they_use(
    compose_model: dict[str, Any],
    service: str,
    kafka_user: Callable[[str], bool],
    calls: Callable[[str], list[str]],
    settings_of: Callable[[str], type[HttpSettings]],
) -> None:
    """MongoDB and Keycloak for every service; Kafka and its topics for those whose settings
    name a broker; the services it calls (a `<name>_url` setting) for a service that calls any;
    the mail sink for a service that mails (an `smtp_host` setting)."""
    spec = compose_model["services"][service]
    conditions = {name: dep["condition"] for name, dep in spec["depends_on"].items()}
    expected = {
        "mongodb": "service_healthy",
        # Its database user exists before it signs in (ADR 0011).
        "database-access": "service_completed_successfully",
        # Started is enough: the keys are fetched at the first token, and refetched after.
        "keycloak": "service_started",
    }
    if kafka_user(service):
        expected |= {
            "kafka": "service_healthy",
            "topics": "service_completed_successfully",
            # Its principal exists and is granted its topics before it signs in (ADR 0010).
            "kafka-access": "service_completed_successfully",
        }
    expected |= {called: "service_healthy" for called in calls(service)}
    if "smtp_host" in settings_of(service).model_fields:  # a laptop's mail goes to Mailpit
        expected["mailpit"] = "service_started"
    assert conditions == expected
    assert spec["healthcheck"]["test"] == ["CMD", "python", "/app/container.py", "ready"]
    assert spec["read_only"] is True


def test_services_get_every_setting_they_require(
    compose_model: dict[str, Any],
    service: str,
    env_required_by: Callable[[str], set[str]],
    kafka_user: Callable[[str], bool],
    calls: Callable[[str], list[str]],
    port_of: Callable[[str], int],
) -> None:
    environment = compose_model["services"][service]["environment"]
    assert env_required_by(service) <= set(environment)
    prefix = f"CMHL_{service.upper()}_"
    if kafka_user(service):
        assert environment[prefix + "KAFKA_BOOTSTRAP"] == "kafka:9092"
    else:
        assert prefix + "KAFKA_BOOTSTRAP" not in environment
    # Its own database user (ADR 0011), the one deploy/docker/database-users.demo.json sets.
    uri = urllib.parse.urlsplit(environment[prefix + "MONGO_URI"])
    passwords = json.loads((DEPLOY / "docker" / "database-users.demo.json").read_text())
    assert (uri.hostname, uri.port) == ("mongodb", 27017)
    assert (uri.username, uri.password) == (service, passwords[service])
    assert dict(urllib.parse.parse_qsl(uri.query))["authSource"] == "admin"
    for called in calls(service):
        # The called service by its compose name, on the port it listens on there.
        called_port = compose_model["services"][called]["environment"].get(
            f"CMHL_{called.upper()}_HTTP_PORT", port_of(called)
        )
        assert environment[f"{prefix}{called.upper()}_URL"] == f"http://{called}:{called_port}"


def test_a_public_url_is_published_and_a_redirect_uri_of_its_client(
    compose_model: dict[str, Any],
    services: list[str],
    settings_of: Callable[[str], type[HttpSettings]],
) -> None:
    """A service with pages (a `public_url` setting) is reached by browsers at that URL, and the
    realm lets its OpenID Connect client come back there after the sign-in and the sign-out."""
    realm = json.loads(REALM_FILE.read_text())
    clients = {client["clientId"]: client for client in realm["clients"]}
    with_pages = [name for name in services if "public_url" in settings_of(name).model_fields]
    assert with_pages, "the workspace has pages"
    for name in with_pages:
        fields = settings_of(name).model_fields
        spec = compose_model["services"][name]
        public = spec["environment"][f"CMHL_{name.upper()}_PUBLIC_URL"]
        [port] = spec["ports"]
        assert public == f"http://localhost:{port['published']}", (
            "Secure cookies: http on localhost"
        )
        client = clients[fields["oidc_client_id"].default]
        assert f"{public}/auth/callback" in client["redirectUris"]
        assert f"{public}/signed-out" in client["attributes"]["post.logout.redirect.uris"]


def test_every_service_trusts_the_one_issuer_and_holds_no_token_secret(
    compose_model: dict[str, Any], services: list[str]
) -> None:
    settings = [
        (name, value)
        for spec in compose_model["services"].values()
        for name, value in (spec.get("environment") or {}).items()
    ]
    issuers = {value for name, value in settings if name.endswith("_AUTH_ISSUER")}
    assert issuers == {"http://localhost:8180/realms/cmhl"}
    assert len([name for name, _ in settings if name.endswith("_AUTH_ISSUER")]) == len(services)
    assert not [name for name, _ in settings if "SIGNING_KEY" in name or "API_KEYS" in name]
    keycloak = compose_model["services"]["keycloak"]
    # The issuer names the host's URL for Keycloak, which the containers reach by name.
    assert keycloak["environment"]["KC_HOSTNAME"] == "http://localhost:8180"
    assert keycloak["ports"][0]["published"] == "8180"


def test_kafka_is_the_official_image_in_kraft_mode_without_auto_creation(
    compose_model: dict[str, Any],
) -> None:
    kafka = compose_model["services"]["kafka"]
    local_version = re.search(r"<kafka.version>(.+)</kafka.version>", KAFKA_POM.read_text())
    assert local_version is not None
    assert kafka["image"] == f"apache/kafka:{local_version.group(1)}", "same Kafka as make up"
    env = kafka["environment"]
    assert len(env["CLUSTER_ID"]) == 22, "a KRaft cluster id: 16 bytes in base64url"
    # Its settings come from the script it runs: KRaft, no auto-creation, SASL and ACLs.
    script = (REPO / "deploy" / "docker" / "kafka-secured.sh").read_text()
    assert kafka["entrypoint"] == ["bash", "/etc/cmhl/kafka-secured.sh"]
    for setting in (
        "process.roles=broker,controller",
        "auto.create.topics.enable=false",
        "allow.everyone.if.no.acl.found=false",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
    ):
        assert f"\n{setting}\n" in script, setting
    assert "PLAINTEXT:PLAINTEXT" not in script
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_every_kafka_client_signs_in_as_its_own_principal(compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    for name, spec in services.items():
        env = spec.get("environment") or {}
        users = {k: v for k, v in env.items() if k.endswith("KAFKA_USERNAME")}
        if any(k.endswith("KAFKA_BOOTSTRAP") for k in env) or "--bootstrap" in (
            spec.get("command") or []
        ):
            assert users, f"{name} reaches Kafka without a principal"
        for key, user in users.items():
            protocol = env[key.replace("USERNAME", "SECURITY_PROTOCOL")]
            assert protocol in ("SASL_PLAINTEXT", "SASL_SSL")
            if name in (
                "referral",
                "followup",
                "training",
                "reporting",
                "placement",
                "notifications",
            ):
                assert user == name


def test_mongodb_is_a_replica_set_initiated_by_its_healthcheck(
    compose_model: dict[str, Any],
) -> None:
    mongodb = compose_model["services"]["mongodb"]
    assert mongodb["image"].startswith("mongo:")
    assert mongodb["command"][:2] == ["--replSet", "rs0"]
    check = " ".join(mongodb["healthcheck"]["test"])
    assert "rs.initiate" in check
    assert "myState === 1" in check


def test_mongodb_authenticates_and_the_database_access_job_creates_every_user(
    compose_model: dict[str, Any],
) -> None:
    """ADR 0011: authentication on (a replica set with a key file for its member), the
    administrator from the environment, and each declared user created before the services."""
    services = compose_model["services"]
    mongodb = services["mongodb"]
    assert "--keyFile" in mongodb["command"]
    assert mongodb["environment"]["MONGO_INITDB_ROOT_USERNAME"] == "admin"
    check = mongodb["healthcheck"]["test"]
    assert "process.env.MONGO_INITDB_ROOT_PASSWORD" in " ".join(check)
    assert "-p" not in check, "no password on a command line"
    script = (DEPLOY / "docker" / "mongo-secured.sh").read_text()
    assert "chmod 0400" in script
    assert "exec docker-entrypoint.sh mongod" in script
    job = services["database-access"]
    assert job["command"][:4] == ["python", "-m", "cmhl_servicekit.database_access", "apply"]
    assert job["depends_on"] == {"mongodb": {"condition": "service_healthy", "required": True}}
    sources = {v["source"]: v["target"] for v in job["volumes"]}
    passwords = json.loads((DEPLOY / "docker" / "database-users.demo.json").read_text())
    declared = {u.name for u in load_database_users(DEPLOY / "database-access.toml")}
    assert set(passwords) == declared
    assert sources["./database-access.toml"] in job["command"]
    assert sources["./docker/database-users.demo.json"] in job["command"]
    admin = urllib.parse.urlsplit(job["environment"]["CMHL_DATABASE_ADMIN_URI"])
    assert admin.username == "admin"


def test_the_topics_job_creates_deploy_topics_toml(compose_model: dict[str, Any]) -> None:
    topics = compose_model["services"]["topics"]
    assert topics["command"][:4] == ["python", "-m", "cmhl_servicekit.topics", "create"]
    [volume] = topics["volumes"]
    assert volume["source"] == "./topics.toml"
    source_index = topics["command"].index("--from") + 1
    assert topics["command"][source_index] == volume["target"]
    assert topics["restart"] == "no"
    assert "retention.ms=-1" in topics["command"], "the rebuild replays from the beginning"


def test_the_demo_seeder_is_an_optional_profile_with_flags_demo_py_has(
    compose_model: dict[str, Any],
) -> None:
    demo = compose_model["services"]["demo"]
    assert demo["profiles"] == ["demo"]
    assert demo["build"]["target"] == "demo"
    flags = [arg for arg in demo["command"] if arg.startswith("--")]
    help_text = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "local" / "demo.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert all(flag in help_text for flag in flags), flags
    assert {dep: d["condition"] for dep, d in demo["depends_on"].items()} == {
        "referral": "service_healthy",
        "training": "service_healthy",
        "reporting": "service_healthy",
        "keycloak": "service_healthy",
    }
    profiled = {name for name, spec in compose_model["services"].items() if spec.get("profiles")}
    assert profiled == {"demo"}, "everything else starts with a plain `up`"


def test_keycloak_fills_every_placeholder_of_the_realm_file(compose_model: dict[str, Any]) -> None:
    """Keycloak's import resolves ${VARIABLE}s from its environment; one left unset would
    import literally as a client secret or a password."""
    wanted = set(re.findall(r"\$\{([A-Z0-9_]+)\}", REALM_FILE.read_text()))
    keycloak = compose_model["services"]["keycloak"]
    assert wanted <= set(keycloak["environment"])
    assert any("cmhl-realm.json" in str(v) for v in keycloak["volumes"])
