"""The alert rules load and behave: `promtool check rules` and `promtool test rules` (the tests in
deploy/k8s/alerts/cmhl-alerts.test.yaml fire each alert on the series that should wake someone).
promtool comes with Debian's `prometheus` package, which the stack installs (`make test`)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "alerts"

pytestmark = pytest.mark.integration


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is missing: `make test` installs Debian's prometheus package"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_the_rules_are_valid_prometheus_rules() -> None:
    checked = subprocess.run(
        [_promtool(), "check", "rules", str(ALERTS / "cmhl-alerts.yaml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_each_alert_on_the_services_metrics_fires_when_it_should() -> None:
    tested = subprocess.run(
        [_promtool(), "test", "rules", "cmhl-alerts.test.yaml"],
        cwd=ALERTS,
        capture_output=True,
        text=True,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_on_a_services_metric_has_a_rule_test() -> None:
    import yaml

    rules = yaml.safe_load((ALERTS / "cmhl-alerts.yaml").read_text())["groups"]
    tests = yaml.safe_load((ALERTS / "cmhl-alerts.test.yaml").read_text())["tests"]
    on_own_metrics = {
        rule["alert"]
        for group in rules
        for rule in group["rules"]
        if "cmhl_" in rule["expr"] or rule["expr"].startswith("up{")
    }
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert on_own_metrics <= tested
