"""The stack's Prometheus (started by `make up`, as an operator's would be) scrapes every
service's /metrics and evaluates the alert rules Kubernetes uses."""

import asyncio
import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

SERVICES = (
    "referral",
    "followup",
    "training",
    "reporting",
    "placement",
    "notifications",
    "workspace",
)


async def test_prometheus_scrapes_every_service_and_loads_the_alert_rules(
    system: dict[str, Any],
) -> None:
    prometheus = f"http://127.0.0.1:{system['stack']['prometheus_port']}"
    async with httpx.AsyncClient(base_url=prometheus, timeout=10) as client:
        deadline = time.monotonic() + 90
        health: dict[str, str] = {}
        while time.monotonic() < deadline:
            targets = (await client.get("/api/v1/targets")).json()["data"]["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in targets}
            if all(health.get(name) == "up" for name in SERVICES):
                break
            await asyncio.sleep(2)
        assert {name: health.get(name) for name in SERVICES} == dict.fromkeys(SERVICES, "up")

        groups = (await client.get("/api/v1/rules")).json()["data"]["groups"]
        names = {rule["name"] for group in groups for rule in group["rules"]}
        assert {"CMHLServiceDown", "CMHLOutboxBacklog", "CMHLTimersLate"} <= names
        assert all(group["rules"] for group in groups)
        # A service's own series, as scraped.
        answer = await client.get(
            "/api/v1/query", params={"query": 'count(cmhl_http_requests_total{job="referral"})'}
        )
        assert answer.json()["data"]["result"], "referral's request counter is scraped"
