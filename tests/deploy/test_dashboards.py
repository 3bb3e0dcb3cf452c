"""The Grafana dashboards under deploy/grafana: valid dashboard JSON whose every query reads a
metric the services export (a renamed metric breaks this test, not the operator's night)."""

import json
import re
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from cmhl_servicekit.metrics import ServiceMetrics

DASHBOARDS = sorted((Path(__file__).resolve().parents[2] / "deploy" / "grafana").glob("*.json"))
SUFFIXES = ("_bucket", "_count", "_sum")


def exported_metrics() -> set[str]:
    """Every series name a service exports, FastStream's included, and Prometheus's `up`."""
    metrics = ServiceMetrics("any")
    metrics.kafka_middleware()  # registers FastStream's metrics in the registry
    names = {"up"}
    for line in generate_latest(metrics.registry).decode().splitlines():
        if match := re.match(r"# TYPE (\S+) (\S+)", line):
            name, kind = match.groups()
            names.add(name)
            if kind == "counter":
                names.add(name.removesuffix("_total") + "_total")
            if kind == "histogram":
                names |= {name + suffix for suffix in SUFFIXES}
    return names


def test_there_is_a_dashboard() -> None:
    assert DASHBOARDS


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_queries_a_metric_the_services_export(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    exported = exported_metrics()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in dashboard["panels"]:
        assert panel["title"]
        assert panel["datasource"]["type"] == "prometheus"
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert expr.count("(") == expr.count(")"), expr
            read = set(re.findall(r"\b((?:cmhl|faststream)_[a-z0-9_]+|up)\s*[{\[]", expr))
            assert read, f"{panel['title']}: no metric in {expr}"
            assert read <= exported, f"{panel['title']}: {read - exported} is not exported"
