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
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest

from cmhl_servicekit.settings import HttpSettings
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


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) selects these labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        found = {
            "In": key in labels and labels[key] in (values or []),
            "NotIn": key not in labels or labels[key] not in (values or []),
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not found:
            return False
    return True


def workloads(objects: Objects) -> dict[str, dict[str, str]]:
    """Deployment and Job name -> the labels of its pods."""
    return {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in objects
        if o["kind"] in ("Deployment", "Job")
    }


def pods_selected(objects: Objects, selector: dict[str, Any]) -> set[str]:
    return {name for name, labels in workloads(objects).items() if selects(selector, labels)}


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


def test_every_deployment_is_scraped_by_prometheus_on_its_http_port(
    rendered: dict[str, Objects], overlay: str
) -> None:
    for deployment in of_kind(rendered[overlay], "Deployment"):
        template = deployment["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        [port] = [p["containerPort"] for p in container(deployment)["ports"]]
        assert annotations == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics",
        }, deployment["metadata"]["name"]


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
    kafka_user: Callable[[str], bool],
    calls: Callable[[str], list[str]],
) -> None:
    env = {e["name"]: e for e in container(named(rendered[overlay], "Deployment", service))["env"]}
    assert env_required_by(service) <= set(env)
    prefix = f"CMHL_{service.upper()}_"
    assert env[f"{prefix}HTTP_HOST"]["value"] == "0.0.0.0"  # noqa: S104
    assert (prefix + "KAFKA_BOOTSTRAP" in env) == kafka_user(service)
    for called in calls(service):
        # The called service's Service in this namespace, on its port.
        [port] = named(rendered[overlay], "Service", called)["spec"]["ports"]
        assert env[f"{prefix}{called.upper()}_URL"]["value"] == f"http://{called}:{port['port']}"


def test_a_public_url_is_the_ingress_host_of_its_service_over_tls(
    rendered: dict[str, Objects],
    services: list[str],
    settings_of: Callable[[str], type[HttpSettings]],
) -> None:
    """A service with pages (a `public_url` setting) names where browsers reach it in prod: its
    Ingress host, with TLS (the cookies are Secure)."""
    objects = rendered["prod"]
    [ingress] = of_kind(objects, "Ingress")
    host_of = {
        path["backend"]["service"]["name"]: rule["host"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    tls_hosts = {host for tls in ingress["spec"]["tls"] for host in tls["hosts"]}
    with_pages = [name for name in services if "public_url" in settings_of(name).model_fields]
    assert with_pages, "the workspace has pages"
    for name in with_pages:
        env = {e["name"]: e for e in container(named(objects, "Deployment", name))["env"]}
        assert env[f"CMHL_{name.upper()}_PUBLIC_URL"]["value"] == f"https://{host_of[name]}"
        assert host_of[name] in tls_hosts


def secret_volumes(objects: Objects) -> set[str]:
    """Secrets mounted as volumes in a pod template (the brokers' CA, the principals' folder)."""
    return {
        v["secret"]["secretName"]
        for obj in objects
        if obj["kind"] in ("Deployment", "Job")
        for v in obj["spec"]["template"]["spec"].get("volumes", [])
        if "secret" in v
    }


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
    } | secret_volumes(objects)
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
        elif not plain.startswith("demo-only"):  # a key given as base64 of 32 bytes
            raw = base64.b64decode(plain, validate=True)
            assert len(raw) == 32, key
            assert raw.startswith(b"demo-only"), key


def test_network_policies_deny_by_default_and_admit_only_the_ingress_controller_and_callers(
    rendered: dict[str, Objects],
    overlay: str,
    services: list[str],
    calls: Callable[[str], list[str]],
) -> None:
    objects = rendered[overlay]
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(objects, "NetworkPolicy")}
    deny = policies["default-deny-all"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    ingress_rules = [
        (name, spec, rule) for name, spec in policies.items() for rule in spec.get("ingress", [])
    ]
    from_outside = [
        (name, rule)
        for name, _, rule in ingress_rules
        if any(set(peer) != {"podSelector"} for peer in rule["from"])
    ]
    # From outside the namespace: the ingress controller, and the operators' Prometheus.
    assert sorted(name for name, _ in from_outside) == [
        "http-from-ingress-controller",
        "metrics-from-monitoring",
    ]
    for name, rule in from_outside:
        [peer] = rule["from"]
        namespace = "ingress-nginx" if name == "http-from-ingress-controller" else "monitoring"
        assert peer["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": namespace
        }
        assert rule["ports"] == [{"protocol": "TCP", "port": "http"}]
    # Inside the namespace a service admits, on its HTTP port, only the services that call it
    # (a `<name>_url` setting).
    admitted = set()
    for name, spec, rule in ingress_rules:
        if name in ("http-from-ingress-controller", "metrics-from-monitoring"):
            continue
        assert rule["ports"] == [{"protocol": "TCP", "port": "http"}], name
        targets = pods_selected(objects, spec["podSelector"])
        for peer in rule["from"]:
            admitted |= {
                (source, target)
                for source in pods_selected(objects, peer["podSelector"])
                for target in targets
            }
    assert admitted == {(name, called) for name in services for called in calls(name)}


def test_pods_reach_only_what_their_settings_name(
    rendered: dict[str, Objects],
    overlay: str,
    kafka_user: Callable[[str], bool],
    calls: Callable[[str], list[str]],
    settings_of: Callable[[str], type[HttpSettings]],
) -> None:
    """Egress: DNS for every pod; Kafka for the topics and grants Jobs and the services whose
    settings name a broker; MongoDB for the database users Job; MongoDB and the token issuer for
    every service; the mail relay for a service that mails (an `smtp_host` setting); and the
    services a service calls, on their HTTP port.
    Nothing else."""
    objects = rendered[overlay]
    issuer = urlsplit(named(objects, "ConfigMap", "cmhl-platform")["data"]["auth-issuer"])
    issuer_port = issuer.port or (443 if issuer.scheme == "https" else 80)
    platform = named(objects, "ConfigMap", "cmhl-platform")["data"]
    smtp_port = int(platform["smtp-port"])
    destinations = {
        53: "dns",
        9092: "kafka",
        27017: "mongodb",
        issuer_port: "issuer",
        smtp_port: "smtp",
    }
    reach: dict[str, set[str]] = {name: set() for name in workloads(objects)}
    for policy in of_kind(objects, "NetworkPolicy"):
        spec = policy["spec"]
        sources = pods_selected(objects, spec["podSelector"])
        for rule in spec.get("egress", []):
            assert rule.get("to"), "every egress names its peers"
            assert rule.get("ports"), "every egress names its ports"
            reached = set()
            for port in rule["ports"]:
                if port["port"] == "http":  # the HTTP port of the pods it selects
                    assert all(set(peer) == {"podSelector"} for peer in rule["to"])
                    reached |= {
                        f"http:{target}"
                        for peer in rule["to"]
                        for target in pods_selected(objects, peer["podSelector"])
                    }
                else:
                    assert port["port"] in destinations, f"no other egress: {port}"
                    reached.add(destinations[port["port"]])
            for source in sources:
                reach[source] |= reached
    for obj in of_kind(objects, "Job"):
        # The topics and Kafka grants Jobs reach Kafka only; the database users Job MongoDB only.
        job = obj["metadata"]["name"]
        needs = "mongodb" if job == "cmhl-database-access" else "kafka"
        assert reach[job] == {"dns", needs}, f"{job}: {needs} only"
    for obj in of_kind(objects, "Deployment"):
        service = obj["metadata"]["name"]
        expected = {"dns", "mongodb", "issuer"} | {f"http:{called}" for called in calls(service)}
        if kafka_user(service):
            expected.add("kafka")
        if "smtp_host" in settings_of(service).model_fields:
            expected.add("smtp")
        assert reach[service] == expected, service
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(objects, "NetworkPolicy")}
    assert policies["kafka-clients"]["podSelector"] == {
        "matchLabels": {"cmhl.io/kafka-client": "true"}
    }
    assert policies["mongodb-clients"]["podSelector"] == {
        "matchLabels": {"cmhl.io/mongodb-client": "true"}
    }


def test_the_topics_job_creates_exactly_the_declared_topics(
    rendered: dict[str, Objects], overlay: str
) -> None:
    objects = rendered[overlay]
    job = named(objects, "Job", "cmhl-topics")
    pod = job["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if "configMap" in v]
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
