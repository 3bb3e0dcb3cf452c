"""deploy/compose.yaml, checked without a Docker engine: compose-go (the library Docker Compose is
built on) validates it against the Compose Specification's JSON schema and resolves the model;
these tests then check the rules the system relies on."""

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
KAFKA_POM = REPO / "deploy" / "local" / "kafka" / "pom.xml"
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


def test_services_start_after_kafka_mongodb_the_topics_and_keycloak(
    compose_model: dict[str, Any], service: str
) -> None:
    spec = compose_model["services"][service]
    conditions = {name: dep["condition"] for name, dep in spec["depends_on"].items()}
    assert conditions == {
        "kafka": "service_healthy",
        "mongodb": "service_healthy",
        "topics": "service_completed_successfully",
        # Started is enough: the keys are fetched at the first token, and refetched after.
        "keycloak": "service_started",
    }
    assert spec["healthcheck"]["test"] == ["CMD", "python", "/app/container.py", "ready"]
    assert spec["read_only"] is True


def test_services_get_every_setting_they_require(
    compose_model: dict[str, Any], service: str, env_required_by: Callable[[str], set[str]]
) -> None:
    environment = compose_model["services"][service]["environment"]
    assert env_required_by(service) <= set(environment)
    prefix = f"CMHL_{service.upper()}_"
    assert environment[prefix + "KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert environment[prefix + "MONGO_URI"].startswith("mongodb://mongodb:27017/")


def test_every_service_trusts_the_one_issuer_and_holds_no_token_secret(
    compose_model: dict[str, Any],
) -> None:
    settings = [
        (name, value)
        for spec in compose_model["services"].values()
        for name, value in (spec.get("environment") or {}).items()
    ]
    issuers = {value for name, value in settings if name.endswith("_AUTH_ISSUER")}
    assert issuers == {"http://localhost:8180/realms/cmhl"}
    assert len([name for name, _ in settings if name.endswith("_AUTH_ISSUER")]) == 5
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
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert len(env["CLUSTER_ID"]) == 22, "a KRaft cluster id: 16 bytes in base64url"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_mongodb_is_a_replica_set_initiated_by_its_healthcheck(
    compose_model: dict[str, Any],
) -> None:
    mongodb = compose_model["services"]["mongodb"]
    assert mongodb["image"].startswith("mongo:")
    assert mongodb["command"][:2] == ["--replSet", "rs0"]
    check = " ".join(mongodb["healthcheck"]["test"])
    assert "rs.initiate" in check
    assert "myState === 1" in check


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
    realm_file = Path(__file__).resolve().parents[2] / "deploy/local/keycloak/cmhl-realm.json"
    wanted = set(re.findall(r"\$\{([A-Z0-9_]+)\}", realm_file.read_text()))
    keycloak = compose_model["services"]["keycloak"]
    assert wanted <= set(keycloak["environment"])
    assert any("cmhl-realm.json" in str(v) for v in keycloak["volumes"])
