"""docs/operations.md covers every operation the issue names, and every alert it ships."""

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
GUIDE = (REPO / "docs" / "operations.md").read_text()
ALERTS = REPO / "deploy" / "k8s" / "alerts" / "cmhl-alerts.yaml"


def rules() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_alert_is_well_formed_and_documented() -> None:
    documented = set(re.findall(r"^### (CMHL\w+)$", GUIDE, re.M))
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names))
    assert set(names) == documented
    for rule in rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"
        assert rule["expr"].count("(") == rule["expr"].count(")")


def test_the_guide_covers_every_operation_with_its_command() -> None:
    for heading, command in {
        "## Deploy": "kubectl apply -k",
        "### On one Docker host (compose)": "docker compose -f deploy/compose.yaml up",
        "## Scale": "kubectl -n cmhl get hpa",
        "## Rotate keys": "rollout restart",
        "## Rebuild the reporting views": "python -m cmhl_reporting.rebuild",
        "## Re-drive dead letters": "python -m cmhl_servicekit.dlq redrive",
        "## Back up and restore": "mongorestore",
        "## Alerts": "cmhl-alerts.yaml",
        "## Sign-in and identity": "auth_claims",
    }.items():
        section = GUIDE.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
        assert command in section, heading
    for key in ("Pseudonym key", "Encryption key", "Entra ID or Okta", "Machine clients"):
        assert f"**{key}**" in GUIDE


def test_every_path_the_guide_names_exists() -> None:
    for path in re.findall(r"`((?:deploy|docs|libs|services|tests)/[\w./{},-]+?)`", GUIDE):
        if "{" in path or "<" in path:
            continue
        assert (REPO / path.rstrip("/")).exists(), path
