"""deploy/k8s, checked without a cluster: each overlay rendered by kustomize's own library (as
`kubectl apply -k` does), every object validated against the Kubernetes API's OpenAPI schemas in
strict mode (kubernetes-validate: unknown fields fail), then the platform's rules."""

import base64
import copy
import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from cmhl_servicekit.topics import declared_topics

REPO = Path(__file__).resolve().parents[2]
# The oldest Kubernetes minor we support and the newest the validator ships.
K8S_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())
# Custom resources have no schema in the Kubernetes API; the ones we use are checked against the
# fields of their CRD that we rely on (External Secrets Operator, external-secrets.io/v1).
EXTERNAL_SECRET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "external-secrets.io/v1"},
        "kind": {"const": "ExternalSecret"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["secretStoreRef", "target", "data"],
            "properties": {
                "refreshInterval": {"type": "string"},
                "secretStoreRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["kind", "name"],
                    "properties": {
                        "kind": {"enum": ["SecretStore", "ClusterSecretStore"]},
                        "name": {"type": "string"},
                    },
                },
                "target": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]},
                    },
                },
                "data": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["secretKey", "remoteRef"],
                        "properties": {
                            "secretKey": {"type": "string"},
                            "remoteRef": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["key"],
                                "properties": {"key": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        },
    },
}
Objects = list[dict[str, Any]]


def of_kind(objects: Objects, kind: str) -> Objects:
    return [o for o in objects if o["kind"] == kind]


def named(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def validate(obj: dict[str, Any]) -> None:
    if obj["kind"] == "ExternalSecret":
        jsonschema.validate(obj, EXTERNAL_SECRET_SCHEMA)
        return
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


def test_every_rendered_object_is_valid_for_the_kubernetes_api(
    rendered: dict[str, Objects], overlay: str
) -> None:
    for obj in rendered[overlay]:
        try:
            validate(obj)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            pytest.fail(f"{overlay}: {obj['kind']}/{obj['metadata']['name']}: {exc.message}")


def test_the_validation_catches_a_typo_and_a_wrong_type(rendered: dict[str, Objects]) -> None:
    deployment = of_kind(rendered["prod"], "Deployment")[0]
    typo = copy.deepcopy(deployment)
    container(typo)["readinessProbe"]["httpGet"]["pth"] = "/health/ready"
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "three"
    for broken in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            validate(broken)
    secret = copy.deepcopy(of_kind(rendered["prod"], "ExternalSecret")[0])
    secret["spec"]["data"][0]["remoteRef"]["kee"] = "x"
    with pytest.raises(jsonschema.ValidationError):
        validate(secret)


def test_the_namespace_enforces_the_restricted_pod_security_standard(
    rendered: dict[str, Objects], overlay: str
) -> None:
    [namespace] = of_kind(rendered[overlay], "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    name = namespace["metadata"]["name"]
    for obj in rendered[overlay]:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == name, obj["metadata"]["name"]


def test_every_service_has_a_deployment_service_hpa_pdb_and_ingress_host(
    rendered: dict[str, Objects], overlay: str, service: str, port_of: Callable[[str], int]
) -> None:
    objects = rendered[overlay]
    deployment = named(objects, "Deployment", service)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    [port] = container(deployment)["ports"]
    assert port == {"name": "http", "containerPort": port_of(service), "protocol": "TCP"}
    svc = named(objects, "Service", service)
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    hpa = named(objects, "HorizontalPodAutoscaler", service)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": service,
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    pdb = named(objects, "PodDisruptionBudget", service)
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    [ingress] = of_kind(objects, "Ingress")
    backends = {
        rule["host"].split(".")[0]: path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends[service] == service


def test_hpas_stop_at_the_largest_partition_count(rendered: dict[str, Objects]) -> None:
    # A consumer group gives each partition to one member: more pods than partitions sit idle.
    declarations = tomllib.loads((REPO / "deploy" / "topics.toml").read_text())
    most = max(declared_topics(declarations).values())
    for overlay, objects in rendered.items():
        for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
            assert hpa["spec"]["maxReplicas"] <= most, (overlay, hpa["metadata"]["name"])


def test_every_deployment_has_probes_resources_and_a_locked_down_container(
    rendered: dict[str, Objects], overlay: str
) -> None:
    for deployment in of_kind(rendered[overlay], "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        main = container(deployment)
        assert main["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
        assert main["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(main["resources"][kind])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert main["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert pod["automountServiceAccountToken"] is False


def test_every_pod_meets_the_restricted_pod_security_standard(
    rendered: dict[str, Objects], overlay: str
) -> None:
    # The namespace enforces it at admission; checking here fails the build instead of the apply.
    for obj in rendered[overlay]:
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert {"cpu", "memory"} <= set(c["resources"]["limits"])
        assert all(set(v) & {"emptyDir", "configMap", "secret"} for v in pod.get("volumes", []))


def test_deployments_get_every_setting_their_service_requires(
    rendered: dict[str, Objects],
    overlay: str,
    service: str,
    env_required_by: Callable[[str], set[str]],
) -> None:
    env = {e["name"]: e for e in container(named(rendered[overlay], "Deployment", service))["env"]}
    assert env_required_by(service) <= set(env)
    assert env[f"CMHL_{service.upper()}_HTTP_HOST"]["value"] == "0.0.0.0"  # noqa: S104


def key_refs(objects: Objects, ref: str) -> set[tuple[str, str]]:
    """(object name, key) of every `secretKeyRef` or `configMapKeyRef` in a pod template."""
    refs = set()
    for obj in objects:
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        for c in obj["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                if target := e.get("valueFrom", {}).get(ref):
                    refs.add((target["name"], target["key"]))
    return refs


def test_every_referenced_key_exists(rendered: dict[str, Objects], overlay: str) -> None:
    objects = rendered[overlay]
    config = {(o["metadata"]["name"], k) for o in of_kind(objects, "ConfigMap") for k in o["data"]}
    assert key_refs(objects, "configMapKeyRef") <= config
    secrets = {
        (o["metadata"]["name"], k)
        for o in of_kind(objects, "Secret")
        for k in (o.get("data") or {}) | (o.get("stringData") or {})
    } | {
        (o["spec"]["target"]["name"], d["secretKey"])
        for o in of_kind(objects, "ExternalSecret")
        for d in o["spec"]["data"]
    }
    assert key_refs(objects, "secretKeyRef") <= secrets


def test_prod_ships_no_secret_values(rendered: dict[str, Objects]) -> None:
    objects = rendered["prod"]
    assert of_kind(objects, "Secret") == []
    assert {o["spec"]["target"]["name"] for o in of_kind(objects, "ExternalSecret")} == {
        name for name, _ in key_refs(objects, "secretKeyRef")
    }
    text = json.dumps(objects)
    assert "demo-only" not in text
    assert "not-a-secret" not in text
    for deployment in of_kind(objects, "Deployment"):
        for e in container(deployment)["env"]:
            if re.search(r"_KEYS?$", e["name"]):
                assert "valueFrom" in e, f"{e['name']} must come from a Secret"


def test_dev_secrets_are_obviously_fake(rendered: dict[str, Objects]) -> None:
    [keys] = [
        s
        for s in of_kind(rendered["dev"], "Secret")
        if s["metadata"]["name"].startswith("cmhl-keys")
    ]
    for key, value in keys["data"].items():
        plain = base64.b64decode(value).decode()
        if key.endswith("-api-keys"):  # only SHA-256 hashes of keys are configured, never keys
            assert all(re.fullmatch("[0-9a-f]{64}", h) for h in json.loads(plain)), key
        elif key == "encryption-key":  # base64 of 32 bytes
            assert base64.b64decode(plain).startswith(b"demo-only"), key
        else:
            assert plain.startswith("demo-only"), key


def test_network_policies_deny_by_default_and_admit_only_the_ingress_controller(
    rendered: dict[str, Objects], overlay: str
) -> None:
    policies = {
        p["metadata"]["name"]: p["spec"] for p in of_kind(rendered[overlay], "NetworkPolicy")
    }
    deny = policies["default-deny-all"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    ingress_rules = [(name, rule) for name, p in policies.items() for rule in p.get("ingress", [])]
    assert [name for name, _ in ingress_rules] == ["http-from-ingress-controller"]
    [(_, rule)] = ingress_rules
    [peer] = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    assert rule["ports"] == [{"protocol": "TCP", "port": "http"}]


def test_only_service_pods_and_the_topics_job_reach_kafka_and_mongodb(
    rendered: dict[str, Objects], overlay: str
) -> None:
    objects = rendered[overlay]
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(objects, "NetworkPolicy")}
    reach: dict[int, dict[str, str]] = {}
    for spec in policies.values():
        for rule in spec.get("egress", []):
            for port in rule.get("ports", []):
                reach.setdefault(port["port"], spec["podSelector"].get("matchLabels", {}))
    assert reach[9092] == {"cmhl.io/kafka-client": "true"}
    assert reach[27017] == {"cmhl.io/mongodb-client": "true"}
    assert set(reach) == {53, 9092, 27017}, "no other egress"
    for kind, label in (("Deployment", "cmhl.io/kafka-client"), ("Job", "cmhl.io/kafka-client")):
        for obj in of_kind(objects, kind):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert labels.get(label) == "true", obj["metadata"]["name"]
    job_labels = of_kind(objects, "Job")[0]["spec"]["template"]["metadata"]["labels"]
    assert "cmhl.io/mongodb-client" not in job_labels, "the topics Job needs Kafka only"


def test_the_topics_job_creates_exactly_the_declared_topics(
    rendered: dict[str, Objects], overlay: str
) -> None:
    objects = rendered[overlay]
    job = named(objects, "Job", "cmhl-topics")
    pod = job["spec"]["template"]["spec"]
    [volume] = pod["volumes"]
    plan = json.loads(
        named(objects, "ConfigMap", volume["configMap"]["name"])["data"]["topics.json"]
    )
    declarations = tomllib.loads((REPO / "deploy" / "topics.toml").read_text())
    assert plan["topics"] == declared_topics(declarations), (
        "deploy/k8s/base/topics/topics.json is out of date: run `uv run python -m "
        "cmhl_servicekit.topics plan > deploy/k8s/base/topics/topics.json`"
    )
    [main] = pod["containers"]
    assert main["command"] == ["python", "-m", "cmhl_servicekit.topics", "create"]
    assert "--config=retention.ms=-1" in main["args"], "the rebuild replays from the beginning"
    args = dict(arg.removeprefix("--").split("=", 1) for arg in main["args"])
    assert args["from"].startswith(main["volumeMounts"][0]["mountPath"] + "/")
    if overlay == "prod":
        assert (args["replication-factor"], args["min-insync-replicas"]) == ("3", "2")
