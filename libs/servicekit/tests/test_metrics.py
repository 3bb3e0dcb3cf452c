"""The metrics' own rules: routes by template, reasons by code, probes that fail or hang never
fail a scrape. tests/integration/test_metrics.py scrapes real services under load."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from prometheus_client.parser import text_string_to_metric_families

from cmhl_servicekit import metrics as metrics_module
from cmhl_servicekit.metrics import (
    UNMATCHED,
    HttpMetrics,
    ServiceMetrics,
    metrics_router,
    reason_code,
    timers_probe,
)
from cmhl_servicekit.timers import InMemoryTimerStore, Timer


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _app(metrics: ServiceMetrics) -> FastAPI:
    app = FastAPI()

    @app.get("/people/{person_id}")
    async def person(person_id: str) -> dict[str, str]:
        if person_id == "missing":
            raise HTTPException(404)
        if person_id == "broken":
            raise RuntimeError("a bug")
        return {"id": person_id}

    app.include_router(metrics_router(metrics))
    app.add_middleware(HttpMetrics, metrics=metrics)
    return app


async def test_requests_are_counted_by_route_template_never_by_path() -> None:
    metrics = ServiceMetrics("test")
    transport = httpx.ASGITransport(app=_app(metrics), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for person in ("Ada Lovelace", "Grace Hopper", "missing", "broken"):
            await client.get(f"/people/{person}")
        await client.get("/Ada/Lovelace/1815-12-10")
        text = (await client.get("/metrics")).text
    samples = _samples(text)
    route = "/people/{person_id}"
    counted = "cmhl_http_requests_total"
    assert samples[(counted, (("method", "GET"), ("route", route), ("status", "200")))] == 2
    assert samples[(counted, (("method", "GET"), ("route", route), ("status", "404")))] == 1
    assert samples[(counted, (("method", "GET"), ("route", route), ("status", "500")))] == 1
    # A path no route matched could be anything: it is counted under one label.
    assert samples[(counted, (("method", "any"), ("route", UNMATCHED), ("status", "404")))] == 1
    timed = "cmhl_http_request_duration_seconds_count"
    assert samples[(timed, (("method", "GET"), ("route", route)))] == 4
    for value in ("Ada", "Lovelace", "Grace", "1815"):
        assert value not in text


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("invalid event: person.given_name: Field required; narrative: too long", "invalid_event"),
        ("ValueError", "valueerror"),
        ("agency_mismatch: the submission names columbia-pd", "agency_mismatch"),
        (":::", "other"),
        ("x" * 80, "x" * 40),
    ],
)
def test_a_dead_letters_reason_is_labelled_by_its_code(reason: str, code: str) -> None:
    assert reason_code(reason) == code


async def test_a_failing_or_hanging_probe_never_fails_the_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics_module, "PROBE_SECONDS", 0.05)
    metrics = ServiceMetrics("test")

    async def broken() -> None:
        raise ConnectionError("database away")

    async def hanging() -> None:
        await asyncio.sleep(10)

    async def working() -> None:
        metrics.outbox_backlog.set(7)

    for name, probe in (("broken", broken), ("hanging", hanging), ("working", working)):
        metrics.probe(name, probe)
    samples = _samples((await metrics.render()).decode())
    assert samples[("cmhl_outbox_backlog", ())] == 7
    failures = "cmhl_metrics_probe_failures_total"
    assert samples[(failures, (("probe", "broken"),))] == 1
    assert samples[(failures, (("probe", "hanging"),))] == 1
    assert (failures, (("probe", "working"),)) not in samples


async def test_timers_report_pending_due_and_how_late_the_oldest_due_one_is() -> None:
    metrics = ServiceMetrics("test")
    store = InMemoryTimerStore()
    now = datetime.now(UTC)
    await store.schedule(
        [
            Timer(f"t{i}", "due", f"s{i}", now + timedelta(minutes=offset), now)
            for i, offset in enumerate((-30, -5, 60))
        ]
    )
    await timers_probe(metrics, store, "example")()
    samples = _samples((await metrics.render()).decode())
    store_label = (("store", "example"),)
    assert samples[("cmhl_timers_pending", store_label)] == 3
    assert samples[("cmhl_timers_due", store_label)] == 2
    assert 29 * 60 < samples[("cmhl_timers_oldest_due_seconds", store_label)] < 31 * 60


def test_projected_events_are_timed_from_their_occurrence() -> None:
    metrics = ServiceMetrics("test")
    now = datetime.now(UTC)
    metrics.projected([now - timedelta(seconds=2), now - timedelta(seconds=40)])
    assert metrics.registry.get_sample_value("cmhl_projection_delay_seconds_count") == 2
    assert (
        metrics.registry.get_sample_value("cmhl_projection_delay_seconds_bucket", {"le": "5.0"})
        == 1
    )
    assert (
        metrics.registry.get_sample_value("cmhl_projection_last_applied_timestamp_seconds") or 0
    ) >= now.timestamp()


async def test_metrics_are_not_served_through_a_proxy() -> None:
    """The ingress forwards the internet's requests with X-Forwarded-For; Prometheus scrapes the
    pod directly, without it."""
    transport = httpx.ASGITransport(app=_app(ServiceMetrics("test")))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/metrics")).status_code == 200
        for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
            assert (
                await client.get("/metrics", headers={header: "203.0.113.9"})
            ).status_code == 404


async def test_a_made_up_method_is_counted_as_other_not_as_a_new_series() -> None:
    metrics = ServiceMetrics("test")
    transport = httpx.ASGITransport(app=_app(metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for method in ("BREW", "X-ANYTHING-1", "X-ANYTHING-2"):
            assert (await client.request(method, "/people/someone")).status_code == 405
    route = (("method", "other"), ("route", "/people/{person_id}"), ("status", "405"))
    samples = _samples((await metrics.render()).decode())
    assert samples[("cmhl_http_requests_total", route)] == 3
    assert not any("BREW" in str(key) for key in samples)
